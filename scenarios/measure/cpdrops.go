package measure

import (
	"context"
	"fmt"
	"strings"
)

func init() { mustRegister(cpDrops{}) }

var (
	figCPDropped  = Figure{"cp_dropped_items", UnitCount, "items the control plane counted as dropped in the window (its *_dropped_total counters: full queues, slow consumers)"}
	figCPRefused  = Figure{"cp_refused_items", UnitCount, "items the control plane refused in the window (its *_rejected_total and *_invalid_total counters)"}
	figCPRolledUp = Figure{"cp_rolled_up_items", UnitCount, "items the control plane kept only in aggregate in the window (its *_rolled_up_total and *_aggregated_total counters)"}
)

// cpDrops reads what the control plane itself counted as dropped, refused or rolled up, from
// the counters its metrics endpoint publishes (see LossCounters), so that a report shows losses
// the harness cannot see from outside, such as events a full ingest queue dropped.
type cpDrops struct{}

func (cpDrops) Name() string { return "cp-drops" }

func (cpDrops) Description() string {
	return "what the control plane counted as dropped, refused or rolled up (its *_dropped_total, *_rejected_total, ... counters)"
}

func (cpDrops) Figures() []Figure { return []Figure{figCPDropped, figCPRefused, figCPRolledUp} }

func (cpDrops) FindsAnomalies() {}

func (cpDrops) Measure(_ context.Context, in *Input) (Result, error) {
	var res Result
	if ok, why := in.Counters.Read(); !ok {
		for _, f := range []Figure{figCPDropped, figCPRefused, figCPRolledUp} {
			res.Values = append(res.Values, missing(f, "%s", why))
		}
		return res, nil
	}
	totals := map[string]float64{}
	seen := map[string]bool{}
	for _, key := range in.Counters.Keys() {
		name, _, _ := strings.Cut(key, "{")
		lc, ok := lossCounter(name)
		if !ok {
			continue // a counter backend-impact reads
		}
		seen[lc.Anomaly] = true
		inc := in.Counters.Increase(key, in.Start, in.End)
		totals[lc.Anomaly] += inc
		if inc > 0 {
			res.Anomalies = append(res.Anomalies, Anomaly{
				Kind:    lc.Anomaly,
				Summary: fmt.Sprintf("the control plane counted %s %s: %s", count(inc), lc.What, key),
				Count:   inc,
			})
		}
	}
	for _, f := range []struct {
		fig  Figure
		kind string
	}{{figCPDropped, AnomalyDropped}, {figCPRefused, AnomalyRefused}, {figCPRolledUp, AnomalyRolledUp}} {
		if !seen[f.kind] {
			var suffixes []string
			for _, lc := range LossCounters {
				if lc.Anomaly == f.kind {
					suffixes = append(suffixes, "*"+lc.Suffix)
				}
			}
			res.Values = append(res.Values, missing(f.fig, "the control plane publishes no %s counter", strings.Join(suffixes, " or ")))
			continue
		}
		res.Values = append(res.Values, value(f.fig, totals[f.kind]))
	}
	return res, nil
}
