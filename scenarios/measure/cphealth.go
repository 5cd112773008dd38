package measure

import (
	"context"
	"time"
)

func init() { mustRegister(cpHealth{}) }

var (
	figCPCrashes = Figure{"cp_crashes", UnitCount, "times the control plane stopped without a fault stopping it"}
	figCPDown    = Figure{"cp_unavailable_seconds", UnitSeconds, "time the control plane's API failed its health probe (deliberate downtime included)"}
	figCPKills   = Figure{"cp_kills", UnitCount, "times a fault killed the control plane"}
)

// cpHealth reports whether the control plane crashed on its own, and how long its API was
// unavailable, from the harness's probes of the public API and the control plane's process.
type cpHealth struct{}

func (cpHealth) Name() string { return "cp-health" }

func (cpHealth) Description() string {
	return "control-plane crashes (exits no fault caused) and API unavailability from health probes"
}

func (cpHealth) Figures() []Figure { return []Figure{figCPCrashes, figCPDown, figCPKills} }

func (cpHealth) Measure(_ context.Context, in *Input) (Result, error) {
	var res Result
	crashes, kills, watched := 0, 0, false
	for _, e := range in.CP.Events() {
		watched = watched || e.Kind == CPStarted
		if e.At.Before(in.Start) || e.At.After(in.End) {
			continue
		}
		switch e.Kind {
		case CPExited:
			crashes++
			res.Notes = append(res.Notes, "control plane exited at "+e.At.UTC().Format(time.RFC3339)+": "+e.Detail)
		case CPKilled:
			kills++
		}
	}
	var down time.Duration
	var prev *Probe
	probes := in.CP.Probes()
	for i := range probes {
		p := &probes[i]
		if p.At.Before(in.Start) {
			prev = p
			continue
		}
		if p.At.After(in.End) {
			break
		}
		if prev != nil && !prev.OK {
			from := prev.At
			if from.Before(in.Start) {
				from = in.Start
			}
			down += p.At.Sub(from)
		}
		prev = p
	}
	if prev != nil && !prev.OK && prev.At.Before(in.End) {
		from := prev.At
		if from.Before(in.Start) {
			from = in.Start
		}
		down += in.End.Sub(from)
	}
	res.Values = []Value{value(figCPCrashes, float64(crashes)), value(figCPDown, down.Seconds()), value(figCPKills, float64(kills))}
	if len(probes) == 0 {
		res.Values[1] = missing(figCPDown, "the control plane's API was not probed")
	}
	if !watched {
		res.Values[0] = missing(figCPCrashes, "the harness did not start the control plane, so it cannot see it crash")
	}
	return res, nil
}
