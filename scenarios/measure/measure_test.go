package measure

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/faults"
	"github.com/dsnscale/dsnscale/loadgen"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func at(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }

// serve puts a DSN in session and forwarding at revision rev at time sec.
func serve(tl *Timeline, id string, sec float64, rev uint64) {
	tl.State(id, at(sec), "serving", true, true)
	tl.Applied(id, at(sec), rev)
}

func values(t *testing.T, r Result) map[string]Value {
	t.Helper()
	out := map[string]Value{}
	for _, v := range r.Values {
		out[v.Name] = v
	}
	return out
}

func measureOne(t *testing.T, name string, in *Input) Result {
	t.Helper()
	m, ok := Default.Lookup(name)
	require.True(t, ok, name)
	res, err := m.Measure(context.Background(), in)
	require.NoError(t, err)
	got := map[string]bool{}
	for _, v := range res.Values {
		got[v.Name] = true
	}
	for _, f := range m.Figures() {
		assert.True(t, got[f.Name], "%s does not report %s", name, f.Name)
	}
	return res
}

func TestRegistry(t *testing.T) {
	var r Registry
	require.NoError(t, r.Register(convergence{}))
	require.ErrorIs(t, r.Register(convergence{}), ErrDuplicate)
	_, fig, ok := Default.Producer("storm_recovery_seconds")
	require.True(t, ok)
	assert.Equal(t, UnitSeconds, fig.Unit)
}

func TestConvergence(t *testing.T) {
	ids := []string{"a", "b", "c", "d"}
	tl := NewTimeline(ids)
	revs := &Revisions{}
	for _, id := range ids {
		serve(tl, id, 0, 1)
	}
	revs.Add(Mark{Revision: 5, At: at(10), Source: SourceWrite, Description: "update policy"})
	revs.Add(Mark{Revision: 5, At: at(10.05), Source: SourcePoll})
	// a, b, c apply at 10.1, 10.2, 10.5; d skips to 6 at 12.
	tl.Applied("a", at(10.1), 5)
	tl.Applied("b", at(10.2), 5)
	tl.Applied("c", at(10.5), 5)
	revs.Add(Mark{Revision: 6, At: at(11), Source: SourcePoll})
	tl.Applied("a", at(11.1), 6)
	tl.Applied("d", at(12), 6)

	in := &Input{Window: Window{Start: at(5), End: at(20), Horizon: at(30)}, DSNs: ids, Timeline: tl, Revisions: revs}
	changes := Changes(in)
	require.Len(t, changes, 2)
	c := changes[0]
	assert.Equal(t, uint64(5), c.Revision)
	assert.Equal(t, at(10), c.At, "the earliest time wins")
	assert.Equal(t, SourceWrite, c.Source)
	assert.Equal(t, 200*time.Millisecond, *c.To50)
	assert.Equal(t, 2*time.Second, *c.To90, "ceil(0.9*4) = 4th DSN")
	assert.Equal(t, 2*time.Second, *c.To100)
	assert.Equal(t, []string{"d", "c", "b"}, c.Stragglers)
	// Revision 6: only a and d.
	assert.Equal(t, 2, changes[1].Reached)
	assert.NotNil(t, changes[1].To50)
	assert.Nil(t, changes[1].To90)
	assert.ElementsMatch(t, []string{"b", "c"}, changes[1].Stragglers)

	v := values(t, measureOne(t, "convergence", in))
	assert.InDelta(t, 1.0, v["convergence_p50_seconds"].Value, 1e-9, "max over changes: rev 6 reached 50% after 1s")
	assert.Contains(t, v["convergence_full_seconds"].Missing, "1 change never reached")
	assert.Equal(t, 2.0, v["convergence_changes"].Value)
	assert.Equal(t, 1.0, v["convergence_incomplete_changes"].Value)

	empty := &Input{Window: Window{Start: at(100), End: at(200)}, DSNs: ids, Timeline: tl, Revisions: revs}
	v = values(t, measureOne(t, "convergence", empty))
	assert.Contains(t, v["convergence_p99_seconds"].Missing, "no intent change")
}

func TestStormRecovery(t *testing.T) {
	ids := []string{"a", "b", "c"}
	tl := NewTimeline(ids)
	revs := &Revisions{}
	revs.Add(Mark{Revision: 3, At: at(0), Source: SourceWrite})
	for _, id := range ids {
		serve(tl, id, 1, 3)
	}
	// The storm at t=10 restarts a and b. a comes back at 13 and is current; b comes back at
	// 12 with its cache (rev 3) but revision 4 was committed at 11, so it recovers only when it
	// applies 4 at 15.
	revs.Add(Mark{Revision: 4, At: at(11), Source: SourcePoll})
	tl.Applied("c", at(11.2), 4)
	for _, id := range []string{"a", "b"} {
		tl.State(id, at(10.1), "restarting", false, false)
		tl.State(id, at(10.5), "booting", false, false)
		tl.Applied(id, at(10.6), 3)
		tl.State(id, at(10.6), "admitting", true, false)
	}
	tl.Applied("a", at(12.9), 4)
	tl.State("a", at(13), "serving", true, true)
	tl.State("b", at(12), "serving", true, true)
	tl.Applied("b", at(15), 4)
	inj := []faults.Injection{{Seq: 1, Kind: "dsn-restart", Start: at(10), End: at(10.05), DSNs: []string{"a", "b"}}}
	in := &Input{Window: Window{Step: "storm", Start: at(5), End: at(20), Horizon: at(30)}, DSNs: ids, Timeline: tl, Revisions: revs, Injections: inj}

	recs := Recoveries(in)
	require.Len(t, recs, 2)
	assert.Equal(t, at(13), recs[0].Recovered)
	assert.Equal(t, at(10.1), recs[0].Down)
	assert.Equal(t, at(15), recs[1].Recovered)
	v := values(t, measureOne(t, "storm-recovery", in))
	assert.InDelta(t, 5.0, v["storm_recovery_seconds"].Value, 1e-9)
	assert.Equal(t, 2.0, v["storm_restarted_dsns"].Value)
	assert.Equal(t, 0.0, v["storm_unrecovered_dsns"].Value)

	// Cut observation before b recovers: it is unrecovered and the figure is missing.
	in.Horizon = at(14)
	v = values(t, measureOne(t, "storm-recovery", in))
	assert.Contains(t, v["storm_recovery_seconds"].Missing, "1 restarted DSN never served the current revision again (b)")
	assert.Equal(t, 1.0, v["storm_unrecovered_dsns"].Value)

	// No restart in the window.
	in.Window = Window{Start: at(20), End: at(30)}
	v = values(t, measureOne(t, "storm-recovery", in))
	assert.Contains(t, v["storm_recovery_seconds"].Missing, "no DSN was restarted")
}

func TestAvailabilityNoConfigAndLost(t *testing.T) {
	ids := []string{"a", "b"}
	tl := NewTimeline(ids)
	// a serves rev 2 from t=0 to the end. b boots at 0 forwarding with no config, gets rev 2 at
	// 2, crashes at 6, comes back at 8 with no cache (forwarding without config), gets rev 2
	// at 9, then is down from 14.
	serve(tl, "a", 0, 2)
	tl.State("b", at(0), "admitting", true, false)
	tl.Applied("b", at(2), 2)
	tl.State("b", at(2), "serving", true, true)
	tl.State("b", at(6), "crashed", false, false)
	tl.Applied("b", at(8), 0)
	tl.State("b", at(8), "admitting", true, false)
	tl.Applied("b", at(9), 2)
	tl.State("b", at(9), "serving", true, true)
	tl.State("b", at(14), "off", false, false)
	in := &Input{Window: Window{Start: at(0), End: at(10)}, DSNs: ids, Timeline: tl, Revisions: &Revisions{}}

	v := values(t, measureOne(t, "availability", in))
	// a: 10s with config. b: with config 2-6 and 9-10 = 5s; forwarding 0-6 and 8-10 = 8s.
	assert.InDelta(t, 100*15.0/20, v["static_stability_availability"].Value, 1e-9)
	assert.InDelta(t, 100*18.0/20, v["dataplane_availability"].Value, 1e-9)

	v = values(t, measureOne(t, "no-config", in))
	assert.Equal(t, 1.0, v["dsns_served_without_config"].Value)
	assert.Equal(t, 1.0, v["dsns_lost_config"].Value)
	in.Window = Window{Start: at(1), End: at(7)}
	v = values(t, measureOne(t, "no-config", in))
	assert.Equal(t, 1.0, v["dsns_served_without_config"].Value, "b was still without config at 1")
	assert.Equal(t, 0.0, v["dsns_lost_config"].Value)

	in.Window = Window{Start: at(0), End: at(12)}
	assert.Equal(t, 0.0, values(t, measureOne(t, "lost-dsns", in))["lost_dsns"].Value)
	in.Window = Window{Start: at(0), End: at(20)}
	res := measureOne(t, "lost-dsns", in)
	assert.Equal(t, 1.0, values(t, res)["lost_dsns"].Value)
	assert.Equal(t, []Lost{{DSN: "b", State: "off", Revision: 2}}, res.Details)
}

func TestWatchCorrectness(t *testing.T) {
	ids := []string{"a", "b"}
	tl := NewTimeline(ids)
	serve(tl, "a", 0, 3)
	tl.Applied("a", at(1), 2) // went back within a session
	tl.Watch("b", WatchIssue{At: at(2), Kind: WatchGap, Revision: 7, Previous: 4})
	tl.Watch("b", WatchIssue{At: at(3), Kind: WatchDuplicate, Revision: 4, Previous: 4})
	serve(tl, "b", 0, 4)
	tl.State("b", at(4), "restarting", false, false)
	tl.Applied("b", at(5), 3) // a restart that loads an older cache is not a watch regression
	in := &Input{Window: Window{Start: at(0), End: at(10)}, DSNs: ids, Timeline: tl}
	v := values(t, measureOne(t, "watch-correctness", in))
	assert.Equal(t, 1.0, v["watch_gaps"].Value)
	assert.Equal(t, 1.0, v["watch_duplicates"].Value)
	assert.Equal(t, 1.0, v["watch_regressions"].Value)
	assert.Equal(t, 2.0, v["watch_violation_dsns"].Value)
}

func TestAPILatency(t *testing.T) {
	r := &Requests{}
	for i := range 100 {
		class := loadgen.ClassOK
		if i%10 == 0 {
			class = loadgen.Class5xx
		}
		end := at(float64(i) / 10)
		r.Record(&loadgen.Result{Intended: end.Add(-time.Duration(i+1) * time.Millisecond), End: end, Class: class})
	}
	r.Record(&loadgen.Result{Intended: at(1), End: at(1.5), Interrupt: true})
	r.AddSummary("storm", loadgen.Summary{GeneratorLimited: true, LimitReasons: []string{"late starts"}})
	in := &Input{Window: Window{Step: "storm", Start: at(0), End: at(5)}, Requests: r}
	res := measureOne(t, "api-latency", in)
	v := values(t, res)
	assert.Equal(t, 50.0, v["api_requests"].Value)
	assert.Equal(t, 5.0, v["api_errors"].Value)
	assert.InDelta(t, 10.0, v["api_error_percent"].Value, 1e-9)
	assert.Equal(t, 5.0, v["api_server_errors"].Value)
	assert.InDelta(t, 0.025, v["api_latency_p50_seconds"].Value, 1e-9)
	assert.InDelta(t, 0.050, v["api_latency_p99_seconds"].Value, 1e-9)
	assert.Equal(t, 1.0, v["api_generator_limited"].Value)
	assert.Contains(t, res.Notes, "generator limited: late starts")
}

func TestResourcesAndCPHealth(t *testing.T) {
	rs := &Resources{}
	for i := range 10 {
		rs.Add(ComponentHarness, Sample{At: at(float64(i)), CPUSeconds: float64(i) * 0.5, RSSBytes: int64(100 + i*10)})
	}
	rs.SetNote(ComponentControlPlane, "external: not sampled")
	cp := &CPEvents{}
	cp.Add(CPEvent{At: at(1), Kind: CPStarted})
	cp.Add(CPEvent{At: at(3), Kind: CPKilled})
	cp.Add(CPEvent{At: at(6), Kind: CPExited, Detail: "signal: segmentation fault"})
	for i := range 10 {
		cp.Probe(Probe{At: at(float64(i)), OK: i < 3 || i >= 5})
	}
	in := &Input{Window: Window{Start: at(2), End: at(8)}, Resources: rs, CP: cp}
	res := measureOne(t, "resources", in)
	v := values(t, res)
	assert.InDelta(t, 3.0, v["harness_cpu_seconds"].Value, 1e-9, "from the sample at 2 (1.0) to the one at 8 (4.0)")
	assert.Equal(t, 180.0, v["harness_peak_rss_bytes"].Value)
	assert.Equal(t, "external: not sampled", v["cp_cpu_seconds"].Missing)

	v = values(t, measureOne(t, "cp-health", in))
	assert.Equal(t, 1.0, v["cp_crashes"].Value)
	assert.Equal(t, 1.0, v["cp_kills"].Value)
	assert.InDelta(t, 2.0, v["cp_unavailable_seconds"].Value, 1e-9)
}

// fakeAPI answers the telemetry read endpoints as a control plane would, or not at all.
type fakeAPI struct {
	answers map[string]string // path prefix -> JSON body; missing means 404
}

func (f fakeAPI) Get(_ context.Context, path string) (int, []byte, error) {
	for p, body := range f.answers {
		if len(path) >= len(p) && path[:len(p)] == p {
			return http.StatusOK, []byte(body), nil
		}
	}
	return http.StatusNotFound, []byte(`{"code":404}`), nil
}

func TestTelemetry(t *testing.T) {
	in := &Input{Window: Window{Start: at(0), End: at(60)}, Telemetry: TelemetryCounts{Known: true, Batches: 24, Samples: 1200, Events: 30}, API: fakeAPI{}}
	res := measureOne(t, "telemetry", in)
	v := values(t, res)
	assert.Equal(t, 1200.0, v["telemetry_samples_sent"].Value)
	assert.Equal(t, 24.0, v["telemetry_batches_sent"].Value)
	assert.Equal(t, "not available: GET /api/v1/metrics/query answered 404", v["telemetry_batches_found"].Missing)
	assert.Equal(t, "not available: GET /api/v1/events answered 404", v["telemetry_events_found"].Missing)

	in.API = fakeAPI{answers: map[string]string{
		MetricsQueryPath: `{"status":"success","data":{"resultType":"matrix","result":[` +
			`{"metric":{"dsn":"a"},"values":[[1,"3"],[11,"4"]]},{"metric":{"dsn":"b"},"values":[[2,"5"]]}]}}`,
		EventsPath: `{"total": 30, "items": []}`,
	}}
	in.Telemetry.Samples = -1
	v = values(t, measureOne(t, "telemetry", in))
	assert.Equal(t, "the fleet counts telemetry messages, not the samples in them", v["telemetry_samples_sent"].Missing)
	assert.Equal(t, 3.0, v["telemetry_batches_found"].Value, "one probe sample per batch, counted across series")
	assert.Equal(t, 30.0, v["telemetry_events_found"].Value)
}

func TestRevisions(t *testing.T) {
	r := &Revisions{}
	for i, rev := range []uint64{5, 3, 9, 3} {
		r.Add(Mark{Revision: rev, At: at(float64(10 - i)), Source: SourcePoll})
	}
	assert.Equal(t, uint64(9), r.Latest())
	all := r.All()
	require.Len(t, all, 3)
	assert.Equal(t, at(7), all[0].At, "revision 3 keeps its earliest time")
	assert.Equal(t, uint64(9), r.At(at(8.5)))
	assert.Equal(t, uint64(0), r.At(at(6)))
	assert.Equal(t, fmt.Sprint([]uint64{3, 9}), fmt.Sprint([]uint64{r.Between(at(7), at(9))[0].Revision, r.Between(at(7), at(9))[1].Revision}))
}

func TestNoConfigIgnoresSameInstantEvents(t *testing.T) {
	tl := NewTimeline([]string{"a"})
	serve(tl, "a", 0, 2)
	// A restart: the state and the loss of the in-memory config are reported at one instant,
	// and so are the cache load and the forwarding state that follows it.
	tl.State("a", at(5), "restarting", false, false)
	tl.Applied("a", at(5), 0)
	tl.State("a", at(6), "booting", false, false)
	tl.State("a", at(8), "admitting", true, false)
	tl.Applied("a", at(8), 2)
	tl.State("a", at(9), "serving", true, true)
	in := &Input{Window: Window{Start: at(1), End: at(20)}, DSNs: []string{"a"}, Timeline: tl}
	v := values(t, measureOne(t, "no-config", in))
	assert.Equal(t, 0.0, v["dsns_served_without_config"].Value)
	assert.Equal(t, 0.0, v["dsns_lost_config"].Value)

	// Had the cache been empty, it would have forwarded without its config from 8 on.
	tl2 := NewTimeline([]string{"a"})
	serve(tl2, "a", 0, 2)
	tl2.State("a", at(5), "restarting", false, false)
	tl2.Applied("a", at(5), 0)
	tl2.State("a", at(8), "admitting", true, false)
	tl2.Applied("a", at(8.5), 2)
	in.Timeline = tl2
	v = values(t, measureOne(t, "no-config", in))
	assert.Equal(t, 1.0, v["dsns_lost_config"].Value)
}

func TestFailoverReown(t *testing.T) {
	ids := []string{"a", "b", "c"}
	tl := NewTimeline(ids)
	revs := &Revisions{}
	revs.Add(Mark{Revision: 3, At: at(0), Source: SourceWrite})
	for _, id := range ids {
		serve(tl, id, 1, 3)
	}
	// A replica is killed at 10. a (a survivor's) keeps its session. b and c were the dead
	// replica's: they leave their sessions at 10.2 and keep forwarding. Revision 4 comes at 11.
	// b is taken over at 12 and applies 4 at 14; c is taken over at 13 with 4 applied at 12.5.
	revs.Add(Mark{Revision: 4, At: at(11), Source: SourcePoll})
	tl.Applied("a", at(11.1), 4)
	for _, id := range []string{"b", "c"} {
		tl.State(id, at(10.2), "admitting", true, false)
	}
	tl.State("b", at(12), "serving", true, true)
	tl.Applied("b", at(14), 4)
	tl.Applied("c", at(12.5), 4)
	tl.State("c", at(13), "serving", true, true)
	inj := []faults.Injection{{Seq: 1, Kind: "cp-node-kill", Start: at(10), End: at(10.1)}}
	in := &Input{Window: Window{Step: "failover", Start: at(5), End: at(20), Horizon: at(30)}, DSNs: ids, Timeline: tl, Revisions: revs, Injections: inj}
	v := values(t, measureOne(t, "failover-reown", in))
	assert.InDelta(t, 4.0, v["failover_reown_seconds"].Value, 1e-9, "b is the last, current at 14")
	assert.Equal(t, 2.0, v["failover_reowned_dsns"].Value, "a kept its session")
	assert.Equal(t, 0.0, v["failover_unreowned_dsns"].Value)

	// Observation cut at 13.5: b never came back current; the figure is missing, not 3.
	in.Horizon = at(13.5)
	res := measureOne(t, "failover-reown", in)
	v = values(t, res)
	assert.Contains(t, v["failover_reown_seconds"].Missing, "1 DSN never back in session at the current revision (b)")
	assert.Equal(t, 1.0, v["failover_unreowned_dsns"].Value)
	require.Len(t, res.Anomalies, 1)

	// A graceful stop counts the same; no replica down in the window: missing.
	in.Horizon = at(30)
	in.Injections[0].Kind = "cp-node-stop"
	assert.InDelta(t, 4.0, values(t, measureOne(t, "failover-reown", in))["failover_reown_seconds"].Value, 1e-9)
	in.Window = Window{Start: at(20), End: at(30)}
	assert.Contains(t, values(t, measureOne(t, "failover-reown", in))["failover_reown_seconds"].Missing, "no replica was taken down")
}
