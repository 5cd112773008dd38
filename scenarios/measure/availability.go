package measure

import (
	"context"
	"sort"
	"time"
)

func init() { mustRegister(availability{}) }

var (
	figStatic    = Figure{"static_stability_availability", UnitPercent, "share of DSN-seconds in the window spent forwarding traffic with a config"}
	figDataPlane = Figure{"dataplane_availability", UnitPercent, "share of DSN-seconds in the window spent forwarding traffic, with or without a config"}
)

// availability integrates, over the window, how many DSNs were forwarding traffic (and with a
// config): static stability means DSNs keep serving their last config whatever happens to the
// control plane.
type availability struct{}

func (availability) Name() string { return "availability" }

func (availability) Description() string {
	return "static-stability availability: share of DSN-seconds serving a valid config"
}

func (availability) Figures() []Figure { return []Figure{figStatic, figDataPlane} }

// serving returns how long the DSN forwarded traffic in [start, end), and how long it did so with
// a config.
func serving(changes []StateChange, applies []Apply, start, end time.Time) (forwarding, withConfig time.Duration) {
	st := StatusAt(changes, applies, start)
	dataPlane, rev := st.DataPlane, st.Revision
	last := start.Round(0)
	account := func(until time.Time) {
		until = until.Round(0) // records may or may not carry a monotonic reading: use neither
		if dataPlane {
			d := until.Sub(last)
			forwarding += d
			if rev > 0 {
				withConfig += d
			}
		}
		last = until
	}
	i := sort.Search(len(changes), func(i int) bool { return changes[i].At.After(start) })
	j := sort.Search(len(applies), func(j int) bool { return applies[j].At.After(start) })
	for i < len(changes) || j < len(applies) {
		var at time.Time
		isState := j >= len(applies) || (i < len(changes) && !changes[i].At.After(applies[j].At))
		if isState {
			at = changes[i].At
		} else {
			at = applies[j].At
		}
		if !at.Before(end) {
			break
		}
		account(at)
		if isState {
			dataPlane = changes[i].DataPlane
			i++
		} else {
			rev = applies[j].Revision
			j++
		}
	}
	account(end)
	return forwarding, withConfig
}

func (availability) Measure(_ context.Context, in *Input) (Result, error) {
	// All on the wall clock (see serving): on the monotonic clock, the span would differ from
	// the wall-clock sum of a DSN that served throughout by however much the wall clock was
	// slewed meanwhile (a few nanoseconds over a minute), and that DSN would count as not serving.
	start, end := in.Start.Round(0), in.End.Round(0)
	span := end.Sub(start)
	if span <= 0 || len(in.DSNs) == 0 {
		return Result{Values: []Value{missing(figStatic, "empty window or fleet"), missing(figDataPlane, "empty window or fleet")}}, nil
	}
	// Sum in whole nanoseconds so that a fleet that served throughout is exactly 100%.
	var anyTotal, cfgTotal time.Duration
	var worst []string
	for _, id := range in.DSNs {
		changes, applies, _ := in.Timeline.History(id)
		a, c := serving(changes, applies, start, end)
		anyTotal += a
		cfgTotal += c
		if c < span {
			worst = append(worst, id)
		}
	}
	whole := float64(span) * float64(len(in.DSNs))
	res := Result{Values: []Value{value(figStatic, 100*float64(cfgTotal)/whole), value(figDataPlane, 100*float64(anyTotal)/whole)}}
	if len(worst) > 0 {
		res.Notes = append(res.Notes, plural(len(worst), "DSN was", "DSNs were")+" not serving a config for part of the window: "+firstN(worst, 10))
	}
	return res, nil
}
