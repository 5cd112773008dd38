package measure

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/dsnscale/dsnscale/faults"
)

func init() { mustRegister(failoverReown{}) }

var (
	figReown      = Figure{"failover_reown_seconds", UnitSeconds, "from a control-plane replica taken down (cp-node-kill, cp-node-stop) until every DSN whose session it ended is back in session with a survivor, serving the current revision"}
	figReownDSNs  = Figure{"failover_reowned_dsns", UnitCount, "DSNs whose session ended after the replica went down: its DSNs, and any whose bus connection went through it"}
	figReownNever = Figure{"failover_unreowned_dsns", UnitCount, "of those, DSNs never back in session at the current revision"}
)

// replicaDownKinds are the faults that take a replica of a replicated control plane down.
var replicaDownKinds = []string{"cp-node-kill", "cp-node-stop"}

// failoverReown follows the DSNs a lost replica served: from the first replica taken down in
// the window, each DSN that leaves its session afterwards must be taken over by a survivor
// (back in session, forwarding, at the revision current then).
type failoverReown struct{}

func (failoverReown) Name() string { return "failover-reown" }

func (failoverReown) Description() string {
	return "from a control-plane replica taken down until every DSN whose session it ended is served by a survivor at the current revision"
}

func (failoverReown) Figures() []Figure { return []Figure{figReown, figReownDSNs, figReownNever} }

func (failoverReown) FindsAnomalies() {}

func (failoverReown) Measure(_ context.Context, in *Input) (Result, error) {
	var first *faults.Injection
	for _, kind := range replicaDownKinds {
		for _, inj := range in.InjectionsIn(kind) {
			if first == nil || inj.Start.Before(first.Start) {
				first = &inj
			}
		}
	}
	if first == nil {
		why := "no replica was taken down (cp-node-kill, cp-node-stop) in the window"
		return Result{Values: []Value{missing(figReown, "%s", why), missing(figReownDSNs, "%s", why), missing(figReownNever, "%s", why)}}, nil
	}
	horizon := in.Horizon
	if horizon.IsZero() {
		horizon = in.End
	}
	cur := newTimesByRevision(in.Revisions.All())
	var recs []Recovery
	var never []string
	var last time.Duration
	for _, id := range in.Timeline.DSNs() {
		changes, applies, _ := in.Timeline.History(id)
		down, up, problem := recoveredAt(changes, applies, cur, first.Start, horizon)
		if down.IsZero() {
			continue // its session went on: a survivor's DSN
		}
		r := Recovery{DSN: id, Fault: first.Seq, Down: down, Recovered: up, Problem: problem}
		if up.IsZero() {
			never = append(never, id)
		} else {
			d := up.Sub(first.Start)
			r.After = &d
			last = max(last, d)
		}
		recs = append(recs, r)
	}
	sort.Strings(never)
	res := Result{Details: recs, Values: []Value{value(figReownDSNs, float64(len(recs))), value(figReownNever, float64(len(never)))}}
	switch {
	case len(recs) == 0:
		res.Values = append(res.Values, missing(figReown, "no DSN left its session after the replica went down at %s", first.Start.UTC().Format(time.RFC3339Nano)))
	case len(never) > 0:
		res.Values = append(res.Values, missing(figReown, "%s never back in session at the current revision (%s)",
			plural(len(never), "DSN", "DSNs"), firstN(never, 5)))
		res.Anomalies = append(res.Anomalies, Anomaly{Kind: AnomalyLost,
			Summary: fmt.Sprintf("%s of %s whose session ended with a lost replica never came back at the current revision",
				countOf(len(never), "DSN", "DSNs"), count(float64(len(recs)))),
			Count: float64(len(never)), Of: float64(len(recs)), DSNs: limit(never, maxAnomalyDSNs)})
	default:
		res.Values = append(res.Values, value(figReown, last.Seconds()))
	}
	return res, nil
}
