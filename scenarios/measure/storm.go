package measure

import (
	"context"
	"fmt"
	"sort"
	"time"
)

func init() { mustRegister(stormRecovery{}) }

var (
	figStorm       = Figure{"storm_recovery_seconds", UnitSeconds, "from the restart fault until every restarted DSN serves the current revision again"}
	figStorm50     = Figure{"storm_recovery_p50_seconds", UnitSeconds, "median time for a restarted DSN to serve the current revision again"}
	figStorm99     = Figure{"storm_recovery_p99_seconds", UnitSeconds, "99th percentile of the time for a restarted DSN to serve the current revision again"}
	figStormDSNs   = Figure{"storm_restarted_dsns", UnitCount, "DSNs restarted by restart faults in the window"}
	figStormUnrec  = Figure{"storm_unrecovered_dsns", UnitCount, "restarted DSNs that never served the current revision again"}
	restartFaultID = "dsn-restart"
)

// stormRecovery follows the DSNs of each dsn-restart fault in the window from the fault until
// they are back in session with the control plane and have applied the revision current at that
// moment.
type stormRecovery struct{}

func (stormRecovery) Name() string { return "storm-recovery" }

func (stormRecovery) Description() string {
	return "from a restart fault until every restarted DSN serves the current revision again"
}

func (stormRecovery) Figures() []Figure {
	return []Figure{figStorm, figStorm50, figStorm99, figStormDSNs, figStormUnrec}
}

func (stormRecovery) FindsAnomalies() {}

// Recovery is one restarted DSN's way back.
type Recovery struct {
	DSN       string         `json:"dsn"`
	Fault     int            `json:"fault"` // the injection's Seq
	Down      time.Time      `json:"down,omitzero"`
	Recovered time.Time      `json:"recovered,omitzero"`
	After     *time.Duration `json:"after,omitempty"` // from the fault's start
	Problem   string         `json:"problem,omitempty"`
}

// recoveredAt replays a DSN's events after from and returns the first time it was in session,
// forwarding traffic and at the current revision. down is when it was first seen out of session
// (the restart taking effect).
func recoveredAt(changes []StateChange, applies []Apply, cur timesByRevision, from, horizon time.Time) (down, up time.Time, problem string) {
	i := sort.Search(len(changes), func(i int) bool { return !changes[i].At.Before(from) })
	for ; i < len(changes); i++ {
		if !changes[i].Session {
			down = changes[i].At
			break
		}
	}
	if down.IsZero() || down.After(horizon) {
		return time.Time{}, time.Time{}, "the restart was never seen: the DSN did not leave its session"
	}
	// Events after down, in time order: state changes and applies.
	type ev struct {
		at  time.Time
		key int // 0 state, 1 apply
		idx int
	}
	var evs []ev
	for j := i; j < len(changes); j++ {
		evs = append(evs, ev{changes[j].At, 0, j})
	}
	for j := sort.Search(len(applies), func(j int) bool { return !applies[j].At.Before(down) }); j < len(applies); j++ {
		evs = append(evs, ev{applies[j].At, 1, j})
	}
	sort.SliceStable(evs, func(a, b int) bool { return evs[a].at.Before(evs[b].at) })
	st := StatusAt(changes, applies, down)
	for _, e := range evs {
		if e.at.After(horizon) {
			break
		}
		if e.key == 0 {
			c := changes[e.idx]
			st.State, st.DataPlane, st.Session = c.State, c.DataPlane, c.Session
		} else {
			st.Revision = applies[e.idx].Revision
		}
		if st.Session && st.DataPlane && st.Revision >= cur.current(e.at) && st.Revision > 0 {
			return down, e.at, ""
		}
	}
	return down, time.Time{}, "never back in session at the current revision"
}

// Recoveries computes the recovery of every DSN restarted by a restart fault in the window.
func Recoveries(in *Input) []Recovery {
	horizon := in.Horizon
	if horizon.IsZero() {
		horizon = in.End
	}
	cur := newTimesByRevision(in.Revisions.All())
	var out []Recovery
	for _, inj := range in.InjectionsIn(restartFaultID) {
		for _, id := range inj.DSNs {
			changes, applies, _ := in.Timeline.History(id)
			down, up, problem := recoveredAt(changes, applies, cur, inj.Start, horizon)
			r := Recovery{DSN: id, Fault: inj.Seq, Down: down, Recovered: up, Problem: problem}
			if !up.IsZero() {
				d := up.Sub(inj.Start)
				r.After = &d
			}
			out = append(out, r)
		}
	}
	return out
}

func (stormRecovery) Measure(_ context.Context, in *Input) (Result, error) {
	recs := Recoveries(in)
	res := Result{Details: recs}
	res.Values = append(res.Values, value(figStormDSNs, float64(len(recs))))
	if len(recs) == 0 {
		for _, f := range []Figure{figStorm, figStorm50, figStorm99, figStormUnrec} {
			res.Values = append(res.Values, missing(f, "no DSN was restarted by a %s fault in the window", restartFaultID))
		}
		return res, nil
	}
	var secs []float64
	var never []string
	for _, r := range recs {
		if r.After == nil {
			never = append(never, r.DSN)
			continue
		}
		secs = append(secs, r.After.Seconds())
	}
	sort.Float64s(secs)
	sort.Strings(never)
	if len(never) > 0 {
		res.Values = append(res.Values, missing(figStorm, "%s never served the current revision again (%s)",
			plural(len(never), "restarted DSN", "restarted DSNs"), firstN(never, 5)))
	} else {
		res.Values = append(res.Values, value(figStorm, secs[len(secs)-1]))
	}
	if len(secs) > 0 {
		res.Values = append(res.Values, value(figStorm50, quantile(secs, 0.5)), value(figStorm99, quantile(secs, 0.99)))
	} else {
		res.Values = append(res.Values, missing(figStorm50, "no restarted DSN recovered"), missing(figStorm99, "no restarted DSN recovered"))
	}
	res.Values = append(res.Values, value(figStormUnrec, float64(len(never))))
	if len(never) > 0 {
		var ex []string
		for _, r := range recs {
			if r.After == nil && len(ex) < maxAnomalyExamples {
				ex = append(ex, r.DSN+": "+r.Problem)
			}
		}
		res.Anomalies = append(res.Anomalies, Anomaly{
			Kind: AnomalyLost,
			Summary: fmt.Sprintf("%s of %s restarted never served the current revision again",
				countOf(len(never), "DSN", "DSNs"), count(float64(len(recs)))),
			Count: float64(len(never)), Of: float64(len(recs)), DSNs: limit(never, maxAnomalyDSNs), Examples: ex,
		})
	}
	return res, nil
}
