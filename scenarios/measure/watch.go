package measure

import (
	"context"
	"fmt"
	"sort"
	"time"
)

func init() { mustRegister(watchCorrectness{}) }

var (
	figWatchGaps = Figure{"watch_gaps", UnitCount, "changes a DSN received that did not follow its applied revision"}
	figWatchDups = Figure{"watch_duplicates", UnitCount, "pushes a DSN received in its session for a revision it already had"}
	figWatchOver = Figure{"watch_overtaken", UnitCount, "pushes at or below the revision of a DSN's admission that arrived after it: sent to the session the DSN had left before the control plane had its Hello, or a straggler resend of what the admission brought (leftovers, not duplicates)"}
	figWatchRegr = Figure{"watch_regressions", UnitCount, "times a DSN's applied revision went back within a session"}
	figWatchDSNs = Figure{"watch_violation_dsns", UnitCount, "DSNs with any gap, duplicate or regression"}
)

// watchCorrectness checks the stream of changes every DSN received: no gaps, no duplicates and
// revisions that never go back. Gaps and duplicates are what the DSNs report; regressions are
// also found in their applied revisions (outside restarts, where a DSN loads its cache).
type watchCorrectness struct{}

func (watchCorrectness) Name() string { return "watch-correctness" }

func (watchCorrectness) Description() string {
	return "on every DSN: no gaps, no duplicates, revisions never go back"
}

func (watchCorrectness) Figures() []Figure {
	return []Figure{figWatchGaps, figWatchDups, figWatchOver, figWatchRegr, figWatchDSNs}
}

func (watchCorrectness) FindsAnomalies() {}

// Violation is one watch problem on one DSN.
type Violation struct {
	DSN string `json:"dsn"`
	WatchIssue
}

// regressions finds applies in [start, end) whose revision is below the previous one while the
// DSN stayed up; a state change out of session and data plane (a restart or crash) resets it.
func regressions(changes []StateChange, applies []Apply, in *Input) []WatchIssue {
	var out []WatchIssue
	var prev uint64
	i := 0
	for _, a := range applies {
		for i < len(changes) && !changes[i].At.After(a.At) {
			if !changes[i].Session && !changes[i].DataPlane {
				prev = 0
			}
			i++
		}
		if a.Revision < prev && !a.At.Before(in.Start) && a.At.Before(in.End) {
			out = append(out, WatchIssue{At: a.At, Kind: WatchRegression, Revision: a.Revision, Previous: prev})
		}
		prev = max(prev, a.Revision)
	}
	return out
}

func (watchCorrectness) Measure(_ context.Context, in *Input) (Result, error) {
	if len(in.DSNs) == 0 {
		var res Result
		for _, f := range []Figure{figWatchGaps, figWatchDups, figWatchOver, figWatchRegr, figWatchDSNs} {
			res.Values = append(res.Values, missing(f, noFleet))
		}
		return res, nil
	}
	counts := map[string]int{}
	var found []Violation
	bad := map[string]bool{}
	for _, id := range in.DSNs {
		changes, applies, issues := in.Timeline.History(id)
		reportedRegr := false
		for _, is := range issues {
			if is.At.Before(in.Start) || !is.At.Before(in.End) {
				continue
			}
			counts[is.Kind]++
			if is.Kind == WatchOvertaken {
				continue // counted, but a leftover, not a violation
			}
			reportedRegr = reportedRegr || is.Kind == WatchRegression
			found = append(found, Violation{DSN: id, WatchIssue: is})
			bad[id] = true
		}
		if !reportedRegr {
			for _, is := range regressions(changes, applies, in) {
				counts[is.Kind]++
				found = append(found, Violation{DSN: id, WatchIssue: is})
				bad[id] = true
			}
		}
	}
	sort.SliceStable(found, func(i, j int) bool { return found[i].At.Before(found[j].At) })
	const keep = 200
	res := Result{
		Values: []Value{
			value(figWatchGaps, float64(counts[WatchGap])),
			value(figWatchDups, float64(counts[WatchDuplicate])),
			value(figWatchOver, float64(counts[WatchOvertaken])),
			value(figWatchRegr, float64(counts[WatchRegression])),
			value(figWatchDSNs, float64(len(bad))),
		},
		Details: found[:min(len(found), keep)],
	}
	if len(found) > keep {
		res.Notes = append(res.Notes, "only the first 200 violations are listed")
	}
	res.Anomalies = watchAnomalies(found, in)
	return res, nil
}

// watchAnomalies gives one anomaly per kind of violation found, with the DSNs that had it.
func watchAnomalies(found []Violation, in *Input) []Anomaly {
	var out []Anomaly
	for _, k := range []struct{ kind, anomaly, one, many, note string }{
		{WatchGap, AnomalyLost, "watch gap", "watch gaps", "changes a DSN never received"},
		{WatchDuplicate, AnomalyDuplicated, "watch duplicate", "watch duplicates", "changes a DSN received again"},
		{WatchRegression, AnomalyRegressed, "watch regression", "watch regressions", "applied revisions that went back"},
	} {
		n := 0
		dsns := map[string]bool{}
		var examples []string
		for _, v := range found {
			if v.Kind != k.kind {
				continue
			}
			n++
			dsns[v.DSN] = true
			if len(examples) < maxAnomalyExamples {
				examples = append(examples, fmt.Sprintf("%s at +%s: revision %d after %d", v.DSN, v.At.Sub(in.Start).Round(time.Millisecond), v.Revision, v.Previous))
			}
		}
		if n == 0 {
			continue
		}
		out = append(out, Anomaly{
			Kind:    k.anomaly,
			Summary: fmt.Sprintf("%s on %s (%s)", countOf(n, k.one, k.many), countOf(len(dsns), "DSN", "DSNs"), k.note),
			Count:   float64(n), DSNs: limit(sortedKeys(dsns), maxAnomalyDSNs), Examples: examples,
		})
	}
	return out
}
