package measure

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/faults"
	"github.com/dsnscale/dsnscale/loadgen"
)

// TestNothingToMeasureIsMissing checks that a value with nothing to measure says why instead
// of reading 0: an empty fleet (one that never registered), a storm with no restart, a window
// with no change, no request and no load, a control plane the harness does not watch.
func TestNothingToMeasureIsMissing(t *testing.T) {
	emptyFleet := func() *Input {
		return &Input{Window: Window{Start: at(0), End: at(60)}, Timeline: NewTimeline(nil), Revisions: &Revisions{},
			Requests: &Requests{}, CP: &CPEvents{}}
	}
	quiet := func() *Input {
		ids := []string{"a", "b"}
		tl := NewTimeline(ids)
		for _, id := range ids {
			serve(tl, id, 1, 1)
		}
		return &Input{Window: Window{Start: at(10), End: at(60)}, DSNs: ids, Timeline: tl, Revisions: &Revisions{},
			Requests: &Requests{}, CP: &CPEvents{}}
	}
	for _, tc := range []struct {
		name, measurement string
		in                func() *Input
		missing           map[string]string // value -> part of the reason
	}{
		{"lost DSNs of an empty fleet", "lost-dsns", emptyFleet, map[string]string{"lost_dsns": "no DSNs"}},
		{"watch of an empty fleet", "watch-correctness", emptyFleet, map[string]string{
			"watch_gaps": "no DSNs", "watch_duplicates": "no DSNs", "watch_regressions": "no DSNs", "watch_violation_dsns": "no DSNs"}},
		{"no-config of an empty fleet", "no-config", emptyFleet, map[string]string{"dsns_served_without_config": "no DSNs", "dsns_lost_config": "no DSNs"}},
		{"convergence of an empty fleet", "convergence", func() *Input {
			in := emptyFleet()
			in.Revisions.Add(Mark{Revision: 2, At: at(5), Source: SourceWrite})
			return in
		}, map[string]string{"convergence_incomplete_changes": "no DSNs", "convergence_full_seconds": "no DSNs"}},
		{"convergence with no change", "convergence", quiet, map[string]string{"convergence_incomplete_changes": "no intent change"}},
		{"storm with no restart", "storm-recovery", quiet, map[string]string{"storm_unrecovered_dsns": "no DSN was restarted", "storm_recovery_seconds": "no DSN was restarted"}},
		{"API with no request and no load", "api-latency", quiet, map[string]string{
			"api_errors": "no northbound request", "api_server_errors": "no northbound request", "api_generator_limited": "no load ran"}},
		{"crashes of a control plane the harness did not start", "cp-health", quiet, map[string]string{"cp_crashes": "did not start the control plane"}},
		{"drops of a control plane whose metrics were never read", "cp-drops", quiet, map[string]string{"cp_dropped_items": "not read"}},
		{"telemetry sent in a step", "telemetry", func() *Input {
			in := quiet()
			in.Step, in.Telemetry = "storm", TelemetryCounts{Known: true, Batches: 10, Events: 5}
			return in
		}, map[string]string{"telemetry_events_sent": "whole run", "telemetry_batches_sent": "whole run"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := values(t, measureOne(t, tc.measurement, tc.in()))
			for name, why := range tc.missing {
				assert.Contains(t, v[name].Missing, why, "%s must be missing, not %v", name, v[name].Value)
				assert.Zero(t, v[name].Value, "a missing value carries no number")
			}
		})
	}
}

func TestAPILatencyGeneratorLimitedAcrossSteps(t *testing.T) {
	rq := &Requests{}
	rq.Record(&loadgen.Result{Start: at(11), End: at(12), Class: loadgen.ClassOK})
	rq.Record(&loadgen.Result{Start: at(12), End: at(13), Class: loadgen.Class5xx})
	rq.AddSummary("baseline", loadgen.Summary{Started: 100, Planned: 100})
	rq.AddSummary("storm", loadgen.Summary{Started: 500, Planned: 500, LateStarts: 32, GeneratorLimited: true,
		LimitReasons:  []string{"32 of 500 iterations (6.4%) started more than 10ms late"},
		ErrorsByClass: map[loadgen.ErrorClass]int64{loadgen.Class5xx: 1},
		ErrorSamples:  []loadgen.ErrorSample{{Op: "update/Policy", Class: loadgen.Class5xx, Status: 503, Detail: "no leader", End: at(13)}}})
	in := &Input{Window: Window{Start: at(10), End: at(60)}, Requests: rq}

	res := measureOne(t, "api-latency", in)
	v := values(t, res)
	assert.Equal(t, 1.0, v["api_generator_limited"].Value, "the whole run is limited when one of its steps was")
	kinds := map[string]Anomaly{}
	for _, a := range res.Anomalies {
		kinds[a.Kind] = a
	}
	require.Contains(t, kinds, AnomalyGeneratorLimited)
	assert.Equal(t, "step storm: load generator limited: 32 of 500 iterations (6.4%) started more than 10ms late", kinds[AnomalyGeneratorLimited].Summary)
	require.Contains(t, kinds, AnomalyFailed)
	assert.Equal(t, 1.0, kinds[AnomalyFailed].Count)
	assert.Equal(t, 2.0, kinds[AnomalyFailed].Of)
	assert.Equal(t, []string{"step storm: 1 5xx", "step storm, " + at(13).UTC().Format("15:04:05.000") + ": update/Policy: 503 (no leader)"},
		kinds[AnomalyFailed].Examples, "the counts by class, then what the first failures were")

	in.Step = "baseline"
	v = values(t, measureOne(t, "api-latency", in))
	assert.Equal(t, 0.0, v["api_generator_limited"].Value)
	assert.Empty(t, v["api_generator_limited"].Missing)
}

func TestWatchAnomaliesCountDSNs(t *testing.T) {
	var ids []string
	for i := range 6 {
		ids = append(ids, fmt.Sprintf("d%d", i))
	}
	tl := NewTimeline(ids)
	for _, id := range ids {
		serve(tl, id, 1, 3)
	}
	// Five duplicates on four DSNs, one gap.
	for i, id := range []string{"d0", "d1", "d2", "d3", "d3"} {
		tl.Watch(id, WatchIssue{At: at(float64(20 + i)), Kind: WatchDuplicate, Revision: 3, Previous: 3})
	}
	tl.Watch("d5", WatchIssue{At: at(30), Kind: WatchGap, Revision: 7, Previous: 4})
	// Leftovers an admission overtook are counted apart and are no violation.
	tl.Watch("d4", WatchIssue{At: at(31), Kind: WatchOvertaken, Revision: 3, Previous: 1})
	tl.Watch("d4", WatchIssue{At: at(32), Kind: WatchOvertaken, Revision: 3, Previous: 1})
	in := &Input{Window: Window{Start: at(10), End: at(60)}, DSNs: ids, Timeline: tl}
	res := measureOne(t, "watch-correctness", in)
	v := values(t, res)
	assert.Equal(t, 5.0, v["watch_duplicates"].Value)
	assert.Equal(t, 2.0, v["watch_overtaken"].Value)
	assert.Equal(t, 5.0, v["watch_violation_dsns"].Value, "d4 had only leftovers")
	require.Len(t, res.Anomalies, 2)
	gap, dup := res.Anomalies[0], res.Anomalies[1]
	assert.Equal(t, AnomalyLost, gap.Kind)
	assert.Equal(t, AnomalyDuplicated, dup.Kind)
	assert.Equal(t, "5 watch duplicates on 4 DSNs (changes a DSN received again)", dup.Summary)
	assert.Equal(t, []string{"d0", "d1", "d2", "d3"}, dup.DSNs)
	assert.Equal(t, "d0 at +10s: revision 3 after 3", dup.Examples[0])
	assert.Equal(t, "1 watch gap on 1 DSN (changes a DSN never received)", gap.Summary)
}

func TestLostDSNsAnomaly(t *testing.T) {
	ids := []string{"a", "b", "c"}
	tl := NewTimeline(ids)
	serve(tl, "a", 1, 2)
	serve(tl, "b", 1, 2)
	tl.State("b", at(5), "crashed", false, false)
	in := &Input{Window: Window{Start: at(0), End: at(10)}, DSNs: ids, Timeline: tl}
	res := measureOne(t, "lost-dsns", in)
	assert.Equal(t, 2.0, values(t, res)["lost_dsns"].Value)
	require.Len(t, res.Anomalies, 1)
	assert.Equal(t, "2 DSNs of 3 not in session and forwarding at the end (1 crashed, 1 unknown)", res.Anomalies[0].Summary)
	assert.Equal(t, []string{"b", "c"}, res.Anomalies[0].DSNs)
}

func TestTelemetryShortfallIsAnAnomalyOnceSettled(t *testing.T) {
	// The event search finds a few more events each time it is asked, stands still for a
	// while, finds some more, then stops short.
	totals := []int{500, 600, 600, 600, 640, 643, 643}
	asked := 0
	api := apiFunc(func(path string) (int, []byte) {
		if strings.HasPrefix(path, EventsPath) {
			n := totals[min(asked, len(totals)-1)]
			asked++
			return 200, fmt.Appendf(nil, `{"total": %d}`, n)
		}
		return 404, nil
	})
	waits := 0
	in := &Input{Window: Window{Start: at(0), End: at(60)}, API: api, Telemetry: TelemetryCounts{Known: true, Batches: 10, Samples: -1, Events: 1237},
		Wait: func(context.Context, time.Duration) error { waits++; return nil }}
	res := measureOne(t, "telemetry", in)
	v := values(t, res)
	assert.Equal(t, 643.0, v["telemetry_events_found"].Value, "asked again until the count stopped growing")
	assert.Equal(t, 5+4, waits, "asked until four readings in a row found nothing more")
	lost := eventAnomalies(res)
	require.Len(t, lost, 1)
	assert.Equal(t, "telemetry events: 643 found again of 1,237 sent (594 not found by the end of the run)", lost[0].Summary)
	assert.Equal(t, 594.0, lost[0].Count)
	assert.Equal(t, 1237.0, lost[0].Of)

	// Everything found: no anomaly, and no waiting.
	totals, asked, waits = []int{1237}, 0, 0
	res = measureOne(t, "telemetry", in)
	for _, a := range res.Anomalies {
		assert.NotContains(t, a.Summary, "telemetry events")
	}
	assert.Zero(t, waits)
}

type apiFunc func(path string) (int, []byte)

func (f apiFunc) Get(_ context.Context, path string) (int, []byte, error) {
	s, b := f(path)
	return s, b, nil
}

func TestStormUnrecoveredAnomaly(t *testing.T) {
	ids := []string{"a", "b"}
	tl := NewTimeline(ids)
	revs := &Revisions{}
	revs.Add(Mark{Revision: 3, At: at(0), Source: SourceWrite})
	for _, id := range ids {
		serve(tl, id, 1, 3)
		tl.State(id, at(10.1), "restarting", false, false)
	}
	serve(tl, "a", 12, 3)
	in := &Input{Window: Window{Start: at(5), End: at(30)}, DSNs: ids, Timeline: tl, Revisions: revs,
		Injections: []faults.Injection{{Kind: restartFaultID, Start: at(10), DSNs: ids}}}
	res := measureOne(t, "storm-recovery", in)
	assert.Equal(t, 1.0, values(t, res)["storm_unrecovered_dsns"].Value)
	require.Len(t, res.Anomalies, 1)
	assert.Equal(t, AnomalyLost, res.Anomalies[0].Kind)
	assert.Equal(t, "1 DSN of 2 restarted never served the current revision again", res.Anomalies[0].Summary)
	assert.Equal(t, []string{"b"}, res.Anomalies[0].DSNs)
}

func TestEveryAnomalyFinderIsRegistered(t *testing.T) {
	var names []string
	for _, m := range Default.AnomalyFinders() {
		names = append(names, m.Name())
	}
	assert.Equal(t, []string{"acked-writes", "api-latency", "convergence", "cp-drops", "failover-reown", "lost-dsns", "no-config", "storm-recovery", "telemetry", "watch-correctness"}, names)
}

func TestRolledUpEventsAreAccountedForNotLost(t *testing.T) {
	// The control plane stored 300 documents; 900 more events live only in series counts, 400
	// of them counted after the last periodic reading.
	const key = "dsnscale_ingest_events_rolled_up_total"
	counters := &Counters{}
	counters.Add(at(-1), map[string]float64{key: 100}) // before the run: not this run's
	counters.Add(at(30), map[string]float64{key: 600})
	api := apiFunc(func(path string) (int, []byte) {
		switch {
		case strings.HasPrefix(path, EventsPath):
			return 200, []byte(`{"total": 300}`)
		case path == MetricsPath:
			return 200, []byte("# TYPE " + key + " counter\n" + key + " 1000\n")
		}
		return 404, nil
	})
	in := &Input{Window: Window{Start: at(0), End: at(60)}, API: api, Counters: counters,
		Telemetry: TelemetryCounts{Known: true, Batches: 10, Samples: -1, Events: 1200}}
	res := measureOne(t, "telemetry", in)
	v := values(t, res)
	assert.Equal(t, 300.0, v["telemetry_events_found"].Value)
	assert.Equal(t, 900.0, v["telemetry_events_rolled_up"].Value)
	assert.Equal(t, 0.0, v["telemetry_events_lost"].Value)
	for _, a := range res.Anomalies {
		assert.NotContains(t, a.Summary, "telemetry events")
	}

	// 50 more sent than found or rolled up: those are lost, and only those.
	in.Telemetry.Events = 1250
	res = measureOne(t, "telemetry", in)
	assert.Equal(t, 50.0, values(t, res)["telemetry_events_lost"].Value)
	lost := eventAnomalies(res)
	require.Len(t, lost, 1)
	assert.Equal(t, "telemetry events: 300 found again and 900 rolled up into series of 1,250 sent (50 neither by the end of the run)", lost[0].Summary)
	assert.Equal(t, 50.0, lost[0].Count)
}

// eventAnomalies are the anomalies of res about telemetry events.
func eventAnomalies(res Result) []Anomaly {
	var out []Anomaly
	for _, a := range res.Anomalies {
		if strings.HasPrefix(a.Summary, "telemetry events") {
			out = append(out, a)
		}
	}
	return out
}
