package engine

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/wire"
	"github.com/dsnscale/dsnscale/simdsn/record"
	"github.com/dsnscale/dsnscale/simdsn/stage"
	"github.com/dsnscale/dsnscale/simdsn/trafficmap"
)

const testMap = `apiVersion: dsnscale/v1
kind: TrafficMap
name: test
heartbeat: 10s
sites:
  - name: s1
    racks: [{name: r1, dsns: 4}]
groups:
  - name: g
    count: 4
    labels: {role: web}
    traffic:
      connectionsPerSecond: 100
      activeFlows: 1000
      endpoints: 8
      flows:
        - {probability: 0.5, to: {labels: {app: web}}, protocol: tcp, port: 443}
        - {probability: 0.5, to: {labels: {app: db}}, protocol: tcp, port: 5432}
    telemetry: {series: 12, interval: 10s}
`

// sim is one engine on a fake bus, inside a synctest bubble.
type sim struct {
	t      *testing.T
	fb     *fakeBus
	eng    *Engine
	col    *record.Collector
	cancel context.CancelFunc
	done   chan struct{}
}

func newSim(t *testing.T, n int, cacheDir string) *sim {
	t.Helper()
	reg := stage.Default()
	m, err := trafficmap.Parse("test.yaml", []byte(testMap), reg)
	require.NoError(t, err)
	ps, err := m.Place(n, "d")
	require.NoError(t, err)
	var specs []DSNSpec
	for _, p := range ps {
		specs = append(specs, DSNSpec{ID: p.ID, Group: p.Group, Unit: p.Rack, Labels: p.Labels})
	}
	fb := newFakeBus()
	col := record.NewCollector(time.Now)
	eng, err := New(Config{Bus: fb, Stages: reg, Map: m, Records: col.Writer(), CacheDir: cacheDir, Seed: 7}, specs)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	s := &sim{t: t, fb: fb, eng: eng, col: col, cancel: cancel, done: make(chan struct{})}
	go func() {
		_ = eng.Run(ctx)
		close(s.done)
	}()
	return s
}

func (s *sim) stop() {
	s.cancel()
	<-s.done
}

func (s *sim) do(c Command) { require.NoError(s.t, s.eng.Do(c)) }

func (s *sim) dsn(id string) record.DSNReport {
	r, ok := s.col.DSN(id)
	require.True(s.t, ok)
	return r
}

func policyObj(t *testing.T, name string, rev uint64, ports ...string) model.Object {
	o := model.Object{APIVersion: model.APIVersion, Kind: model.KindPolicy,
		Metadata: model.Metadata{Name: name, Tenant: "t1", ResourceVersion: u64(rev)}}
	require.NoError(t, o.EncodeSpec(model.PolicySpec{Selector: model.Selector{MatchLabels: map[string]string{"role": "web"}},
		Rules: []model.Rule{{Action: model.ActionAllow, Ports: ports}}}))
	return o
}

func snapshotBytes(t *testing.T, rev uint64, objs ...model.Object) []byte {
	b, err := json.Marshal(wire.Snapshot{Group: "g1", Revision: rev, Objects: objs})
	require.NoError(t, err)
	return b
}

func admitted(rev uint64) *wire.Admission {
	return &wire.Admission{Status: wire.Admitted, SessionID: "s-1", Revision: rev, HeartbeatIntervalMs: 10000}
}

func snapAdmission(rev uint64) *wire.Admission {
	a := admitted(rev)
	a.Snapshot = &wire.SnapshotRef{Bucket: wire.SnapshotBucket, Object: "group-g1", Revision: rev}
	return a
}

func acks(t *testing.T, fb *fakeBus) []wire.Ack {
	var out []wire.Ack
	for _, m := range fb.messages(".ack") {
		var a wire.Ack
		require.NoError(t, json.Unmarshal(m.data, &a))
		out = append(out, a)
	}
	return out
}

func stages(r record.DSNReport) []string {
	var out []string
	for _, tr := range r.Transitions {
		out = append(out, tr.Stage)
	}
	return out
}

func TestBootSnapshotServe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSim(t, 1, "")
		defer s.stop()
		snap := snapshotBytes(t, 5, policyObj(t, "web", 4, "443"))
		s.fb.hello = func(h wire.Hello) (*wire.Admission, time.Duration) {
			assert.Equal(t, uint64(0), h.AppliedRevision)
			assert.Equal(t, "web", h.Labels["role"])
			assert.NotEmpty(t, h.BootID)
			return snapAdmission(5), 50 * time.Millisecond
		}
		s.fb.fetch = func(bucket, object string) ([]byte, error, time.Duration) {
			assert.Equal(t, "group-g1", object)
			return snap, nil, 200 * time.Millisecond
		}
		s.do(Command{Op: OpStart})
		time.Sleep(10 * time.Second)
		synctest.Wait()
		r := s.dsn("d0")
		assert.Equal(t, "serving", r.State)
		assert.Equal(t, uint64(5), r.AppliedRevision)
		assert.Equal(t, []string{"boot", "load", "connect", "admit", "fetch", "apply", "serve"}, stages(r))
		assert.Equal(t, []wire.Ack{{DSN: "d0", SessionID: "s-1", Revision: 5}}, acks(t, s.fb))
		// It forwarded with no config from admission until the snapshot was applied.
		assert.Positive(t, r.NoConfigServing)
		assert.Less(t, r.NoConfigServing, time.Second)

		// A minute of serving: heartbeats every 10 s and telemetry with the data-plane counters.
		time.Sleep(60 * time.Second)
		synctest.Wait()
		hbs := s.fb.messages(".heartbeat")
		assert.GreaterOrEqual(t, len(hbs), 6)
		for i := 1; i < len(hbs); i++ {
			assert.InDelta(t, 10*time.Second, hbs[i].at.Sub(hbs[i-1].at), float64(5*time.Millisecond))
		}
		tel := s.fb.messages(".telemetry")
		require.GreaterOrEqual(t, len(tel), 6)
		var b wire.TelemetryBatch
		require.NoError(t, json.Unmarshal(tel[len(tel)-1].data, &b))
		assert.Equal(t, "d0", b.DSN)
		assert.Len(t, b.Samples, 12)
		v := samples(b)
		allowed, denied := v["dsn_flows_allowed_total"], v["dsn_flows_denied_total"]
		assert.InDelta(t, 0.5, allowed/(allowed+denied), 0.05, "port 443 is allowed, 5432 denied")
		assert.InDelta(t, 100*65, allowed+denied, 1500)
		assert.Equal(t, 5.0, v["dsn_config_revision"])
		assert.Equal(t, allowed, v[`dsn_policy_flows_total{action=allow,decision=t1/web#0}`])
	})
}

func samples(b wire.TelemetryBatch) map[string]float64 {
	out := map[string]float64{}
	for _, s := range b.Samples {
		key := s.Name
		if len(s.Labels) > 0 {
			key += "{" + strings.ReplaceAll(model.SortedLabels(s.Labels), ",", ",") + "}"
		}
		out[key] = s.Value
	}
	return out
}

func TestRestartDuringSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSim(t, 1, "")
		defer s.stop()
		snap := snapshotBytes(t, 5, policyObj(t, "web", 4, "443"))
		var mu sync.Mutex
		fetches := 0
		s.fb.hello = func(wire.Hello) (*wire.Admission, time.Duration) { return snapAdmission(5), 10 * time.Millisecond }
		s.fb.fetch = func(string, string) ([]byte, error, time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			fetches++
			if fetches == 1 {
				return snap, nil, 20 * time.Second // slow: the restart comes first
			}
			return snap, nil, 100 * time.Millisecond
		}
		s.do(Command{Op: OpStart})
		time.Sleep(5 * time.Second)
		synctest.Wait()
		require.Equal(t, "syncing", s.dsn("d0").State)
		s.do(Command{Op: OpInject, Injection: "i1", Misbehaviour: "restart"})
		time.Sleep(30 * time.Second)
		synctest.Wait()
		r := s.dsn("d0")
		assert.Equal(t, "serving", r.State)
		assert.Equal(t, uint64(5), r.AppliedRevision)
		assert.Equal(t, []string{"boot", "load", "connect", "admit", "fetch", "restarting", "boot", "load", "connect", "admit", "fetch", "apply", "serve"}, stages(r))
		// The first fetch's answer came after the restart and was ignored: one apply only.
		var revs []uint64
		for _, a := range r.Applied {
			revs = append(revs, a.Revision)
		}
		assert.Equal(t, []uint64{5}, revs)
		assert.Equal(t, 2, fetches)
		assert.Len(t, acks(t, s.fb), 1)
	})
}

func TestControlPlaneGoneDuringSnapshotDownload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSim(t, 1, "")
		defer s.stop()
		snap3 := snapshotBytes(t, 3, policyObj(t, "web", 3, "443"))
		snap9 := snapshotBytes(t, 9, policyObj(t, "web", 9, "443", "5432"))
		rev := uint64(3)
		s.fb.hello = func(h wire.Hello) (*wire.Admission, time.Duration) {
			return snapAdmission(rev), 10 * time.Millisecond
		}
		s.fb.fetch = func(string, string) ([]byte, error, time.Duration) {
			if rev == 3 {
				return snap3, nil, 10 * time.Millisecond
			}
			return snap9, nil, 8 * time.Second
		}
		s.do(Command{Op: OpStart})
		time.Sleep(10 * time.Second)
		synctest.Wait()
		require.Equal(t, uint64(3), s.dsn("d0").AppliedRevision)

		// Revision 9 needs a new snapshot; the control plane dies while it downloads.
		rev = 9
		s.fb.push(0, wire.Push{Type: wire.PushResync, Snapshot: &wire.SnapshotRef{Bucket: wire.SnapshotBucket, Object: "group-g1", Revision: 9}})
		time.Sleep(2 * time.Second)
		synctest.Wait()
		require.Equal(t, "fetch", s.dsn("d0").Stage)
		s.fb.setUp(false)
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		r := s.dsn("d0")
		assert.Equal(t, "admitting", r.State)
		assert.Equal(t, uint64(3), r.AppliedRevision, "it keeps serving what it had")
		assert.Equal(t, time.Duration(0), r.NoConfigServing-noConfigBefore(r))
		s.fb.setUp(true)
		time.Sleep(time.Minute)
		synctest.Wait()
		r = s.dsn("d0")
		assert.Equal(t, "serving", r.State)
		assert.Equal(t, uint64(9), r.AppliedRevision)
		last := acks(t, s.fb)
		assert.Equal(t, uint64(9), last[len(last)-1].Revision)
	})
}

// noConfigBefore is the no-config time before the first config arrived (the boot itself).
func noConfigBefore(r record.DSNReport) time.Duration {
	if len(r.Applied) == 0 {
		return r.NoConfigServing
	}
	var first time.Time
	for _, tr := range r.Transitions {
		if tr.To == "admitting" {
			first = tr.At
			break
		}
	}
	return r.Applied[0].At.Sub(first)
}

func TestRetryAfterHonoured(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSim(t, 1, "")
		defer s.stop()
		var hellos []time.Time
		s.fb.hello = func(wire.Hello) (*wire.Admission, time.Duration) {
			hellos = append(hellos, time.Now())
			if len(hellos) <= 3 {
				return &wire.Admission{Status: wire.Retry, Reason: "busy", RetryAfterMs: 7000}, 5 * time.Millisecond
			}
			a := admitted(0)
			a.UpToDate = true
			return a, 5 * time.Millisecond
		}
		s.do(Command{Op: OpStart})
		time.Sleep(40 * time.Second)
		synctest.Wait()
		require.Len(t, hellos, 4)
		for i := 1; i < len(hellos); i++ {
			gap := hellos[i].Sub(hellos[i-1])
			assert.GreaterOrEqual(t, gap, 7*time.Second, "hello %d came %v after the previous one", i, gap)
			assert.LessOrEqual(t, gap, 7*time.Second+7*time.Second/10+10*time.Millisecond)
		}
		assert.Equal(t, "serving", s.dsn("d0").State)
	})
}

func TestStaticStabilityWhileBusDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		s := newSim(t, 1, dir)
		defer s.stop()
		snap := snapshotBytes(t, 5, policyObj(t, "web", 5, "443"))
		s.fb.hello = func(h wire.Hello) (*wire.Admission, time.Duration) {
			if h.AppliedRevision == 5 {
				a := admitted(5)
				a.UpToDate = true
				return a, 5 * time.Millisecond
			}
			return snapAdmission(5), 5 * time.Millisecond
		}
		s.fb.fetch = func(string, string) ([]byte, error, time.Duration) { return snap, nil, 10 * time.Millisecond }
		s.do(Command{Op: OpStart})
		time.Sleep(10 * time.Second)
		synctest.Wait()
		require.Equal(t, "serving", s.dsn("d0").State)
		before := lastAllowed(t, s.fb)

		s.fb.setUp(false)
		s.fb.mu.Lock()
		s.fb.connects = nil
		s.fb.mu.Unlock()
		time.Sleep(3 * time.Minute)
		synctest.Wait()
		r := s.dsn("d0")
		assert.Equal(t, "admitting", r.State)
		assert.Equal(t, uint64(5), r.AppliedRevision)
		// Reconnects back off exponentially with jitter, capped at 30 s.
		s.fb.mu.Lock()
		conns := append([]time.Time(nil), s.fb.connects...)
		s.fb.mu.Unlock()
		require.Greater(t, len(conns), 5)
		assert.Less(t, len(conns), 30)
		for i := 2; i < len(conns); i++ {
			assert.LessOrEqual(t, conns[i].Sub(conns[i-1]), 30*time.Second+time.Millisecond)
		}
		assert.Greater(t, conns[5].Sub(conns[4]), conns[1].Sub(conns[0]))

		s.fb.setUp(true)
		time.Sleep(time.Minute)
		synctest.Wait()
		r = s.dsn("d0")
		assert.Equal(t, "serving", r.State)
		assert.Equal(t, uint64(5), r.AppliedRevision)
		assert.Len(t, r.Applied, 1, "no config was lost or reapplied")
		// Flows kept being decided with revision 5 while the bus was down.
		after := lastAllowed(t, s.fb)
		assert.InDelta(t, 100*0.5*240, after-before, 1500)

		// A restart reloads the config from the cache file and serves it before any hello.
		s.do(Command{Op: OpInject, Injection: "r", Misbehaviour: "restart"})
		time.Sleep(30 * time.Second)
		synctest.Wait()
		r = s.dsn("d0")
		assert.Equal(t, "serving", r.State)
		require.GreaterOrEqual(t, len(r.Applied), 3)
		assert.Equal(t, "cache", r.Applied[len(r.Applied)-1].Detail)
		assert.Equal(t, uint64(5), r.Applied[len(r.Applied)-1].Revision)
		assert.Equal(t, time.Duration(0), r.NoConfigServing-noConfigBefore(r))
	})
}

func lastAllowed(t *testing.T, fb *fakeBus) float64 {
	tel := fb.messages(".telemetry")
	require.NotEmpty(t, tel)
	var b wire.TelemetryBatch
	require.NoError(t, json.Unmarshal(tel[len(tel)-1].data, &b))
	return samples(b)["dsn_flows_allowed_total"]
}
