package measure

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"
)

func init() { mustRegister(convergence{}) }

var (
	figConv50   = Figure{"convergence_p50_seconds", UnitSeconds, "slowest time for an intent change to reach 50% of the fleet"}
	figConv90   = Figure{"convergence_p90_seconds", UnitSeconds, "slowest time for an intent change to reach 90% of the fleet"}
	figConv99   = Figure{"convergence_p99_seconds", UnitSeconds, "slowest time for an intent change to reach 99% of the fleet"}
	figConv100  = Figure{"convergence_full_seconds", UnitSeconds, "slowest time for an intent change to reach every DSN"}
	figChanges  = Figure{"convergence_changes", UnitCount, "intent changes committed in the window"}
	figIncomple = Figure{"convergence_incomplete_changes", UnitCount, "changes that never reached every DSN by the end of the run"}
)

// convergence follows each intent change committed in the window until every DSN has applied it
// (or the run ends).
type convergence struct{}

func (convergence) Name() string { return "convergence" }

func (convergence) Description() string {
	return "for each intent change, time until 50/90/99/100% of DSNs applied it, and the stragglers"
}

func (convergence) Figures() []Figure {
	return []Figure{figConv50, figConv90, figConv99, figConv100, figChanges, figIncomple}
}

func (convergence) FindsAnomalies() {}

// Change is how the fleet converged on one intent change. The To* times are nil when that
// share of the fleet never applied the change before the end of observation.
type Change struct {
	Revision    uint64         `json:"revision"`
	At          time.Time      `json:"at"`
	Source      string         `json:"source"`
	Description string         `json:"description,omitempty"`
	Targets     int            `json:"targets"`
	Reached     int            `json:"reached"`
	To50        *time.Duration `json:"to50,omitempty"`
	To90        *time.Duration `json:"to90,omitempty"`
	To99        *time.Duration `json:"to99,omitempty"`
	To100       *time.Duration `json:"to100,omitempty"`
	// Stragglers are the DSNs that never applied the change, or else the slowest few.
	Stragglers []string `json:"stragglers,omitempty"`
	// NeverReached counts DSNs that never applied it.
	NeverReached int `json:"neverReached"`
}

// maxChanges bounds how many changes one window follows; more are sampled evenly, keeping every
// change the harness made itself.
const maxChanges = 2000

// maxStragglers bounds the stragglers listed per change.
const maxStragglers = 10

// Changes computes the convergence of every change committed in the window, in revision order.
func Changes(in *Input) []Change {
	marks := sampleMarks(in.Revisions.Between(in.Start, in.End), maxChanges)
	if len(marks) == 0 {
		return nil
	}
	horizon := in.Horizon
	if horizon.IsZero() {
		horizon = in.End
	}
	applies := make([][]Apply, len(in.DSNs))
	for i, id := range in.DSNs {
		_, applies[i], _ = in.Timeline.History(id)
	}
	n := len(in.DSNs)
	out := make([]Change, 0, len(marks))
	type reach struct {
		id  string
		lat time.Duration
	}
	for _, m := range marks {
		c := Change{Revision: m.Revision, At: m.At, Source: m.Source, Description: m.Description, Targets: n}
		var reached []reach
		var never []string
		for i, id := range in.DSNs {
			t, ok := FirstAtOrPast(applies[i], m.Revision, m.At)
			if !ok || t.After(horizon) {
				never = append(never, id)
				continue
			}
			reached = append(reached, reach{id, t.Sub(m.At)})
		}
		sort.Slice(reached, func(i, j int) bool { return reached[i].lat < reached[j].lat })
		c.Reached, c.NeverReached = len(reached), len(never)
		at := func(share float64) *time.Duration {
			k := int(math.Ceil(share * float64(n)))
			if n == 0 || k > len(reached) {
				return nil
			}
			d := reached[max(k, 1)-1].lat
			return &d
		}
		c.To50, c.To90, c.To99, c.To100 = at(0.5), at(0.9), at(0.99), at(1)
		if len(never) > 0 {
			c.Stragglers = never[:min(len(never), maxStragglers)]
		} else {
			for i := len(reached) - 1; i >= 0 && len(c.Stragglers) < min(3, len(reached)); i-- {
				c.Stragglers = append(c.Stragglers, reached[i].id)
			}
		}
		out = append(out, c)
	}
	return out
}

func sampleMarks(marks []Mark, limit int) []Mark {
	if len(marks) <= limit {
		return marks
	}
	var own, polled []Mark
	for _, m := range marks {
		if m.Source == SourceWrite {
			own = append(own, m)
		} else {
			polled = append(polled, m)
		}
	}
	keep := own
	if room := limit - len(own); room > 0 {
		step := float64(len(polled)) / float64(room)
		for i := 0; i < room; i++ {
			keep = append(keep, polled[int(float64(i)*step)])
		}
	}
	sort.Slice(keep, func(i, j int) bool { return keep[i].Revision < keep[j].Revision })
	return keep
}

func (convergence) Measure(_ context.Context, in *Input) (Result, error) {
	all := in.Revisions.Between(in.Start, in.End)
	changes := Changes(in)
	res := Result{Details: changes}
	if len(all) > len(changes) {
		res.Notes = append(res.Notes, plural(len(all), "change was", "changes were")+" committed; "+plural(len(changes), "was", "were")+" followed (sampled evenly)")
	}
	res.Values = append(res.Values, value(figChanges, float64(len(all))))
	why := ""
	switch {
	case len(in.DSNs) == 0:
		why = noFleet
	case len(changes) == 0:
		why = "no intent change was committed in the window"
	}
	if why != "" {
		for _, f := range []Figure{figConv50, figConv90, figConv99, figConv100, figIncomple} {
			res.Values = append(res.Values, missing(f, "%s", why))
		}
		return res, nil
	}
	incomplete := 0
	stragglers := map[string]bool{}
	var examples []string
	for _, c := range changes {
		if c.To100 != nil {
			continue
		}
		incomplete++
		for _, id := range c.Stragglers {
			stragglers[id] = true
		}
		if len(examples) < maxAnomalyExamples {
			examples = append(examples, fmt.Sprintf("revision %d (%s): %s of %s never applied it",
				c.Revision, c.Source, count(float64(c.NeverReached)), count(float64(c.Targets))))
		}
	}
	if incomplete > 0 {
		res.Anomalies = append(res.Anomalies, Anomaly{
			Kind: AnomalyIncomplete,
			Summary: fmt.Sprintf("%s of %s followed never reached every DSN by the end of the run",
				countOf(incomplete, "intent change", "intent changes"), count(float64(len(changes)))),
			Count: float64(incomplete), Of: float64(len(changes)), DSNs: limit(sortedKeys(stragglers), maxAnomalyDSNs), Examples: examples,
		})
	}
	for _, q := range []struct {
		f   Figure
		get func(Change) *time.Duration
	}{
		{figConv50, func(c Change) *time.Duration { return c.To50 }},
		{figConv90, func(c Change) *time.Duration { return c.To90 }},
		{figConv99, func(c Change) *time.Duration { return c.To99 }},
		{figConv100, func(c Change) *time.Duration { return c.To100 }},
	} {
		var worst time.Duration
		never := 0
		for _, c := range changes {
			d := q.get(c)
			if d == nil {
				never++
				continue
			}
			worst = max(worst, *d)
		}
		if never > 0 {
			res.Values = append(res.Values, missing(q.f, "%s never reached that share of the fleet", plural(never, "change", "changes")))
			continue
		}
		res.Values = append(res.Values, value(q.f, worst.Seconds()))
	}
	res.Values = append(res.Values, value(figIncomple, float64(incomplete)))
	return res, nil
}
