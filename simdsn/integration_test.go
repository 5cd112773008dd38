package simdsn_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane"
	"github.com/dsnscale/dsnscale/controlplane/client"
	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/wire"
	"github.com/dsnscale/dsnscale/simdsn"
	"github.com/dsnscale/dsnscale/simdsn/bus"
	"github.com/dsnscale/dsnscale/simdsn/dataplane"
	"github.com/dsnscale/dsnscale/simdsn/internal/simtest"
	"github.com/dsnscale/dsnscale/simdsn/record"
	"github.com/dsnscale/dsnscale/simdsn/stage"
	"github.com/dsnscale/dsnscale/simdsn/trafficmap"
)

const itMap = `apiVersion: dsnscale/v1
kind: TrafficMap
name: it
heartbeat: 10s
sites:
  - name: s1
    racks: [{name: r1, dsns: 250}, {name: r2, dsns: 250}]
groups:
  - name: web
    count: 500
    labels: {role: web}
    traffic:
      connectionsPerSecond: 50
      activeFlows: 1000
      endpoints: 16
      flows:
        - {probability: 0.6, to: {labels: {app: web}}, protocol: tcp, port: 443}
        - {probability: 0.3, to: {labels: {app: db}}, protocol: tcp, port: 5432}
        - {probability: 0.1, to: {labels: {app: web}}, protocol: tcp, port: 22}
    telemetry: {series: 12, interval: 1s}
`

// startCP starts the reference control plane with security on; sec is what the fleet needs.
func startCP(t *testing.T, perDSN bool) (*controlplane.Server, *client.Client, *bus.Security) {
	t.Helper()
	return simtest.SecureCP(t, perDSN)
}

func policy(t *testing.T, rules ...model.Rule) *model.Object {
	o := &model.Object{APIVersion: model.APIVersion, Kind: model.KindPolicy, Metadata: model.Metadata{Name: "web", Tenant: "t1"}}
	require.NoError(t, o.EncodeSpec(model.PolicySpec{Selector: model.Selector{MatchLabels: map[string]string{"role": "web"}}, Rules: rules}))
	return o
}

func allow(app, port string) model.Rule {
	return model.Rule{Action: model.ActionAllow, To: model.Peer{Labels: map[string]string{"app": app}}, Protocol: "tcp", Ports: []string{port}}
}

// counters follows every DSN's latest allowed/denied counters from the telemetry on the bus.
type counters struct {
	mu     sync.Mutex
	latest map[string]sample
}

type sample struct {
	at              int64
	rev             float64
	allowed, denied float64
}

func watchTelemetry(t *testing.T, cp *controlplane.Server) *counters {
	nc := simtest.BusConn(t, cp)
	c := &counters{latest: map[string]sample{}}
	_, err := nc.Subscribe(wire.AllTelemetry, func(m *nats.Msg) {
		var b wire.TelemetryBatch
		if json.Unmarshal(m.Data, &b) != nil {
			return
		}
		s := sample{at: b.TimeUnixNano}
		for _, x := range b.Samples {
			switch x.Name {
			case "dsn_flows_allowed_total":
				s.allowed = x.Value
			case "dsn_flows_denied_total":
				s.denied = x.Value
			case "dsn_config_revision":
				s.rev = x.Value
			}
		}
		c.mu.Lock()
		c.latest[b.DSN] = s
		c.mu.Unlock()
	})
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	return c
}

func (c *counters) snapshot() map[string]sample {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]sample, len(c.latest))
	for k, v := range c.latest {
		out[k] = v
	}
	return out
}

// split measures the allowed share of flows between two snapshots, over DSNs that reported
// revision rev in both.
func split(t *testing.T, a, b map[string]sample, rev uint64) (float64, int) {
	var allowed, total float64
	n := 0
	for id, s1 := range a {
		s2, ok := b[id]
		if !ok || s1.rev != float64(rev) || s2.rev != float64(rev) || s2.at <= s1.at {
			continue
		}
		n++
		allowed += s2.allowed - s1.allowed
		total += s2.allowed - s1.allowed + s2.denied - s1.denied
	}
	require.Positive(t, total)
	return allowed / total, n
}

func converged(n int, rev uint64) func(record.Summary) bool {
	return func(s record.Summary) bool { return s.Count("serving") == n && s.AtOrPast(rev) == n }
}

func TestFleetAgainstReferenceControlPlane(t *testing.T) {
	if testing.Short() {
		t.Skip("500 DSNs against the reference control plane: not in -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cp, api, sec := startCP(t, false)

	p1, err := api.Create(ctx, policy(t, allow("web", "443")))
	require.NoError(t, err)
	rev1, err := api.Revision(ctx)
	require.NoError(t, err)

	reg := stage.Default()
	m, err := trafficmap.Parse("it.yaml", []byte(itMap), reg)
	require.NoError(t, err)
	tel := watchTelemetry(t, cp)
	f, err := simdsn.New(ctx, simdsn.Config{NATSURL: cp.NATSURL(), Map: m, Stages: reg, Seed: 42, Workers: 2, Security: sec})
	require.NoError(t, err)
	defer f.Close(context.Background())
	require.Equal(t, 500, f.Size())
	require.NoError(t, f.Start(ctx, 2*time.Second))

	// All 500 converge on the current revision; the control plane agrees.
	require.NoError(t, f.WaitFor(ctx, converged(500, rev1)))
	require.Eventually(t, func() bool {
		c, err := api.Convergence(ctx, rev1)
		return err == nil && c.AtOrPast == 500 && c.Total == 500
	}, 30*time.Second, 200*time.Millisecond)

	// Under policy 1 only port 443 is allowed: 60% of flows, as the map predicts.
	want1, err := dataplane.Predict(m, 0, "web", []*model.Object{p1})
	require.NoError(t, err)
	require.InDelta(t, 0.6, want1.Allowed, 1e-9)
	checkSplit(t, ctx, tel, rev1, want1.Allowed)

	// A policy change: 443 and 5432 allowed. Counters follow the prediction.
	p1.Spec = policy(t, allow("web", "443"), allow("db", "5432")).Spec
	p2, err := api.Update(ctx, p1)
	require.NoError(t, err)
	rev2, err := api.Revision(ctx)
	require.NoError(t, err)
	require.Greater(t, rev2, rev1)
	require.NoError(t, f.WaitFor(ctx, converged(500, rev2)))
	want2, err := dataplane.Predict(m, 0, "web", []*model.Object{p2})
	require.NoError(t, err)
	require.InDelta(t, 0.9, want2.Allowed, 1e-9)
	checkSplit(t, ctx, tel, rev2, want2.Allowed)

	// Restart them all, spread over 3 s: they come back with their cached config and
	// reconverge; none forwards without config. Serving without config before the first
	// config arrived is allowed (it depends on how fast the machine is); after the restart
	// it must not grow at all.
	noConfigBefore := map[string]time.Duration{}
	for _, r := range f.Reports().Reports() {
		noConfigBefore[r.ID] = r.NoConfigServing
	}
	before := time.Now()
	inj, err := f.Inject(ctx, simdsn.FaultSpec{Kind: "restart", Spread: 3 * time.Second})
	require.NoError(t, err)
	require.Len(t, inj.DSNs, 500)
	require.NoError(t, f.WaitFor(ctx, func(s record.Summary) bool {
		return converged(500, rev2)(s) && len(f.Reports().Select(func(r record.DSNReport) bool {
			return restartedSince(r, before)
		})) == 500
	}))
	for _, r := range f.Reports().Reports() {
		assert.Equal(t, noConfigBefore[r.ID], r.NoConfigServing, "%s served without config after its restart", r.ID)
		assert.Zero(t, r.Watch.Gaps+r.Watch.Regressions, r.ID)
	}
	require.Eventually(t, func() bool {
		c, err := api.Convergence(ctx, rev2)
		return err == nil && c.AtOrPast == 500
	}, 30*time.Second, 200*time.Millisecond)
}

func restartedSince(r record.DSNReport, t time.Time) bool {
	for _, tr := range r.Transitions {
		if tr.To == "restarting" && tr.At.After(t) {
			return true
		}
	}
	return false
}

// checkSplit waits for a telemetry round at rev, then measures 5 s of flows.
func checkSplit(t *testing.T, ctx context.Context, tel *counters, rev uint64, want float64) {
	t.Helper()
	var a map[string]sample
	require.Eventually(t, func() bool {
		a = tel.snapshot()
		n := 0
		for _, s := range a {
			if s.rev == float64(rev) {
				n++
			}
		}
		return n == 500
	}, 30*time.Second, 500*time.Millisecond)
	// The first batch at rev may still carry flows decided before the change: start after it.
	time.Sleep(1500 * time.Millisecond)
	a = tel.snapshot()
	time.Sleep(5 * time.Second)
	got, n := split(t, a, tel.snapshot(), rev)
	assert.Equal(t, 500, n)
	assert.InDelta(t, want, got, 0.01, "allowed share of flows at revision %d", rev)
}

// TestPerDSNIdentities runs DSNs with connections of their own: each admits itself with the
// bootstrap token and its own key, and connects with its own certificate.
func TestPerDSNIdentities(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a fleet against the reference control plane: not in -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cp, api, sec := startCP(t, true)
	_, err := api.Create(ctx, policy(t, allow("web", "443")))
	require.NoError(t, err)
	rev, err := api.Revision(ctx)
	require.NoError(t, err)

	reg := stage.Default()
	m, err := trafficmap.Parse("simtest.yaml", []byte(simtest.Map(2, 6)), reg)
	require.NoError(t, err)
	f, err := simdsn.New(ctx, simdsn.Config{NATSURL: cp.NATSURL(), Map: m, Stages: reg, Seed: 7, Conn: bus.PerDSN, Security: sec})
	require.NoError(t, err)
	defer f.Close(context.Background())
	require.NoError(t, f.Start(ctx, 500*time.Millisecond))
	require.NoError(t, f.WaitFor(ctx, func(s record.Summary) bool { return s.Count("serving") == 12 && s.AtOrPast(rev) == 12 }))

	require.Eventually(t, func() bool {
		c, err := api.Convergence(ctx, rev)
		return err == nil && c.AtOrPast == 12
	}, 20*time.Second, 100*time.Millisecond)
	// Every DSN admitted itself once, with a key and certificate of its own.
	toks, err := api.BootstrapTokens(ctx)
	require.NoError(t, err)
	require.Len(t, toks, 1)
	assert.Equal(t, 12, toks[0].Used)
}
