package measure

import (
	"context"
	"fmt"
	"sort"
	"time"
)

func init() { mustRegister(noConfig{}) }

var (
	figNoConfig   = Figure{"dsns_served_without_config", UnitCount, "DSNs that forwarded traffic with no config at some time in the window (first boot included)"}
	figLostConfig = Figure{"dsns_lost_config", UnitCount, "DSNs that forwarded traffic with no config after they had had one"}
)

// noConfig finds DSNs that forwarded traffic with no config applied: at first boot that is how a
// new DSN starts; after it has had a config it means the DSN lost it (static stability broken).
type noConfig struct{}

func (noConfig) Name() string { return "no-config" }

func (noConfig) Description() string {
	return "DSNs that served with no config, and those that lost a config they had"
}

func (noConfig) Figures() []Figure { return []Figure{figNoConfig, figLostConfig} }

func (noConfig) FindsAnomalies() {}

// servedWithout reports whether the DSN forwarded with revision 0 during [start, end), and
// whether it did so after once having a config. Events at the same instant are taken together
// before the DSN's condition is judged: a DSN that enters a forwarding state at the very instant
// it loads its cache did not forward without a config.
func servedWithout(changes []StateChange, applies []Apply, start, end time.Time) (ever, afterConfig bool) {
	st := StatusAt(changes, applies, start)
	dataPlane, rev := st.DataPlane, st.Revision
	hadConfig := false
	for _, a := range applies {
		if a.At.After(start) {
			break
		}
		hadConfig = hadConfig || a.Revision > 0
	}
	check := func() {
		if dataPlane && rev == 0 {
			ever = true
			afterConfig = afterConfig || hadConfig
		}
	}
	i := sort.Search(len(changes), func(i int) bool { return changes[i].At.After(start) })
	j := sort.Search(len(applies), func(j int) bool { return applies[j].At.After(start) })
	// The condition at start holds only if it lasts: judge it at the next instant.
	pending := dataPlane && rev == 0
	for i < len(changes) || j < len(applies) {
		var at time.Time
		switch {
		case j >= len(applies):
			at = changes[i].At
		case i >= len(changes):
			at = applies[j].At
		case changes[i].At.Before(applies[j].At):
			at = changes[i].At
		default:
			at = applies[j].At
		}
		if !at.Before(end) {
			break
		}
		if pending && at.After(start) {
			check()
		}
		for ; i < len(changes) && changes[i].At.Equal(at); i++ {
			dataPlane = changes[i].DataPlane
		}
		for ; j < len(applies) && applies[j].At.Equal(at); j++ {
			rev = applies[j].Revision
			hadConfig = hadConfig || rev > 0
		}
		// A condition that starts now counts only once time passes in it: at the next event or
		// at the end of the window.
		pending = dataPlane && rev == 0
		start = at
	}
	if pending && end.After(start) {
		check()
	}
	return ever, afterConfig
}

func (noConfig) Measure(_ context.Context, in *Input) (Result, error) {
	if len(in.DSNs) == 0 {
		return Result{Values: []Value{missing(figNoConfig, noFleet), missing(figLostConfig, noFleet)}}, nil
	}
	var without, lostCfg []string
	for _, id := range in.DSNs {
		changes, applies, _ := in.Timeline.History(id)
		a, b := servedWithout(changes, applies, in.Start, in.End)
		if a {
			without = append(without, id)
		}
		if b {
			lostCfg = append(lostCfg, id)
		}
	}
	res := Result{
		Values:  []Value{value(figNoConfig, float64(len(without))), value(figLostConfig, float64(len(lostCfg)))},
		Details: map[string][]string{"servedWithoutConfig": without, "lostConfig": lostCfg},
	}
	if len(lostCfg) > 0 {
		res.Notes = append(res.Notes, "served without the config they had: "+firstN(lostCfg, 10))
		res.Anomalies = append(res.Anomalies, Anomaly{
			Kind:    AnomalyLost,
			Summary: fmt.Sprintf("%s of %s forwarded traffic with no config after having one (static stability broken)", countOf(len(lostCfg), "DSN", "DSNs"), count(float64(len(in.DSNs)))),
			Count:   float64(len(lostCfg)), Of: float64(len(in.DSNs)), DSNs: limit(lostCfg, maxAnomalyDSNs),
		})
	}
	return res, nil
}
