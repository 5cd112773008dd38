package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
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
	"github.com/dsnscale/dsnscale/faults"
	"github.com/dsnscale/dsnscale/simdsn/bus"
	"github.com/dsnscale/dsnscale/simdsn/record"
)

// effectMap is a small fleet that sends telemetry every second, so that a
// misbehaviour shows within seconds.
const effectMap = `apiVersion: dsnscale/v1
kind: TrafficMap
name: effects
heartbeat: 10s
sites:
  - name: s1
    racks: [{name: r1, dsns: 4}]
groups:
  - name: web
    count: 4
    labels: {role: web}
    traffic:
      connectionsPerSecond: 20
      activeFlows: 100
      endpoints: 4
      flows:
        - {probability: 1, to: {labels: {app: web}}, protocol: tcp, port: 443}
    telemetry: {series: 12, interval: 1s}
`

// effectRig is a reference control plane with a simulated fleet of its own and an observer of
// what the DSNs send on the bus.
type effectRig struct {
	t     *testing.T
	ctx   context.Context
	api   *client.Client
	fleet *simFleet
	ids   []string
	seq   int

	mu   sync.Mutex
	hbs  map[string][]busMsg
	tels map[string][]busMsg
}

// busMsg is a heartbeat or telemetry batch as the observer received it.
type busMsg struct {
	recv    time.Time
	sent    time.Time // the time the DSN stamped on it
	samples map[string]float64
}

func newEffectRig(t *testing.T) *effectRig {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	cp, err := controlplane.Start(ctx, controlplane.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", NATSListen: "127.0.0.1:0", BcryptCost: 4})
	require.NoError(t, err)
	t.Cleanup(cp.Stop)
	require.NoError(t, cp.WaitReady(ctx))
	hc, err := client.HTTPClient(cp.CAPEM(), 30*time.Second)
	require.NoError(t, err)
	user, pw, err := cp.AdminCredentials()
	require.NoError(t, err)
	api := client.New(cp.APIURL(), hc, client.WithCredentials(user, pw))
	_, err = api.Create(ctx, &model.Object{APIVersion: model.APIVersion, Kind: model.KindTenant, Metadata: model.Metadata{Name: "t1"}})
	require.NoError(t, err)
	tok, err := api.CreateBootstrapToken(ctx, client.BootstrapTokenSpec{Role: client.RoleGateway})
	require.NoError(t, err)
	sec := &bus.Security{CA: string(cp.CAPEM()), APIURL: cp.APIURL(), GatewayToken: tok.Secret}

	r := &effectRig{t: t, ctx: ctx, api: api, hbs: map[string][]busMsg{}, tels: map[string][]busMsg{}}
	tc, err := cp.BusTLS("effects-observer")
	require.NoError(t, err)
	var opts []nats.Option
	if tc != nil {
		opts = append(opts, nats.Secure(tc))
	}
	nc, err := nats.Connect(cp.NATSURL(), opts...)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	_, err = nc.Subscribe(wire.AllHeartbeats, func(m *nats.Msg) {
		var hb wire.Heartbeat
		if json.Unmarshal(m.Data, &hb) == nil {
			r.add(r.hbs, hb.DSN, busMsg{recv: time.Now(), sent: time.Unix(0, hb.SentUnixNano)})
		}
	})
	require.NoError(t, err)
	_, err = nc.Subscribe(wire.AllTelemetry, func(m *nats.Msg) {
		var b wire.TelemetryBatch
		if json.Unmarshal(m.Data, &b) != nil {
			return
		}
		s := map[string]float64{}
		for _, x := range b.Samples {
			s[x.Name] = x.Value
		}
		r.add(r.tels, b.DSN, busMsg{recv: time.Now(), sent: time.Unix(0, b.TimeUnixNano), samples: s})
	})
	require.NoError(t, err)
	require.NoError(t, nc.Flush())

	dir := t.TempDir()
	traffic := filepath.Join(dir, "effects.yaml")
	require.NoError(t, os.WriteFile(traffic, []byte(effectMap), 0o644))
	f, err := newSimFleet(ctx, FleetConfig{Size: 4, Driver: "inproc", Traffic: traffic, NATSURL: cp.NATSURL(),
		Dir: filepath.Join(dir, "fleet"), Seed: 5, Security: sec}, testLogger(t))
	require.NoError(t, err)
	r.fleet = f.(*simFleet)
	t.Cleanup(func() { _ = r.fleet.Shutdown(context.Background()) })
	for _, d := range r.fleet.DSNs() {
		r.ids = append(r.ids, d.ID)
	}
	require.NoError(t, r.fleet.Launch(ctx))
	for _, id := range r.ids {
		r.waitReport(id, "serving", func(rep record.DSNReport) bool { return rep.State == "serving" })
	}
	return r
}

func (r *effectRig) add(m map[string][]busMsg, id string, msg busMsg) {
	r.mu.Lock()
	m[id] = append(m[id], msg)
	r.mu.Unlock()
}

// after returns what id sent on m that the observer received after t.
func (r *effectRig) after(m map[string][]busMsg, id string, t time.Time) []busMsg {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []busMsg
	for _, x := range m[id] {
		if x.recv.After(t) {
			out = append(out, x)
		}
	}
	return out
}

// waitMsgs waits until id sent n messages on m received after t, and returns them.
func (r *effectRig) waitMsgs(m map[string][]busMsg, id string, t time.Time, n int) []busMsg {
	r.t.Helper()
	var got []busMsg
	require.Eventually(r.t, func() bool { got = r.after(m, id, t); return len(got) >= n }, 30*time.Second, 20*time.Millisecond,
		"%s: %d messages after %s", id, n, t)
	return got
}

func (r *effectRig) report(id string) record.DSNReport {
	var out record.DSNReport
	r.fleet.f.Reports().Select(func(rep record.DSNReport) bool {
		if rep.ID == id {
			out = rep
		}
		return false
	})
	return out
}

// waitReport waits until id's record satisfies ok.
func (r *effectRig) waitReport(id, what string, ok func(record.DSNReport) bool) record.DSNReport {
	r.t.Helper()
	var rep record.DSNReport
	require.Eventually(r.t, func() bool { rep = r.report(id); return ok(rep) }, 60*time.Second, 20*time.Millisecond, "%s: %s", id, what)
	return rep
}

// applied is when id's record shows rev applied (zero if not yet).
func applied(rep record.DSNReport, rev uint64) time.Time {
	for _, a := range rep.Applied {
		if a.Revision >= rev {
			return a.At
		}
	}
	return time.Time{}
}

// change commits a new revision of intent and returns it with the time it was committed.
func (r *effectRig) change() (uint64, time.Time) {
	r.t.Helper()
	r.seq++
	o := &model.Object{APIVersion: model.APIVersion, Kind: model.KindPolicy, Metadata: model.Metadata{Name: fmt.Sprintf("p%d", r.seq), Tenant: "t1"}}
	require.NoError(r.t, o.EncodeSpec(model.PolicySpec{Selector: model.Selector{MatchLabels: map[string]string{"role": "web"}},
		Rules: []model.Rule{{Action: model.ActionAllow, To: model.Peer{Labels: map[string]string{"app": "web"}}, Protocol: "tcp", Ports: []string{"443"}}}}))
	at := time.Now()
	out, err := r.api.Create(r.ctx, o)
	require.NoError(r.t, err)
	require.NotZero(r.t, out.Metadata.CreationRevision)
	return out.Metadata.CreationRevision, at
}

// status is the control plane's view of id.
func (r *effectRig) status(id string) model.DSNStatus {
	r.t.Helper()
	o, err := r.api.DSN(r.ctx, id)
	require.NoError(r.t, err)
	var st model.DSNStatus
	require.NoError(r.t, json.Unmarshal(o.Status, &st))
	return st
}

func acked(st model.DSNStatus, rev uint64) bool {
	for _, a := range st.AckTimes {
		if a.Revision == rev {
			return true
		}
	}
	return false
}

// inject starts kind with params on id through the fault registry and returns the fault.
func (r *effectRig) inject(kind, id string, params map[string]string) faults.Fault {
	r.t.Helper()
	f, err := faults.Default.New(faults.Spec{Kind: kind, Target: faults.Target{DSNs: []string{id}}, Params: params},
		faults.Env{Fleet: r.fleet, Logger: testLogger(r.t)})
	require.NoError(r.t, err)
	require.NoError(r.t, f.Inject(r.ctx))
	return f
}

// TestDSNMisbehaviourEffects injects each DSN misbehaviour kind into one DSN of a simulated
// fleet under the reference control plane, observes its effect against an unaffected DSN, and
// observes that it ends on recovery.
func TestDSNMisbehaviourEffects(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a control plane and a simulated fleet for about a minute")
	}
	r := newEffectRig(t)
	parent := t
	hit, other := r.ids[0], r.ids[1]
	cases := []struct {
		kind   string
		sim    string // the simulator's misbehaviour
		params map[string]string
		during func(t *testing.T, injected time.Time)
		after  func(t *testing.T, recovered time.Time)
	}{
		{
			kind: "dsn-slow-apply", sim: "slow-apply", params: map[string]string{"delay": "3s"},
			during: func(t *testing.T, _ time.Time) {
				rev, at := r.change()
				r.waitReport(other, "applies the change", func(rep record.DSNReport) bool { return !applied(rep, rev).IsZero() })
				rep := r.waitReport(hit, "applies the change", func(rep record.DSNReport) bool { return !applied(rep, rev).IsZero() })
				assert.GreaterOrEqual(t, applied(rep, rev).Sub(at), 3*time.Second, "the slow DSN took the delay")
				assert.Less(t, applied(r.report(other), rev).Sub(at), 3*time.Second, "the others did not")
			},
			after: func(t *testing.T, _ time.Time) {
				rev, at := r.change()
				rep := r.waitReport(hit, "applies the change", func(rep record.DSNReport) bool { return !applied(rep, rev).IsZero() })
				assert.Less(t, applied(rep, rev).Sub(at), 3*time.Second, "applies at normal speed again")
			},
		},
		{
			kind: "dsn-drop-acks", sim: "drop-acks",
			during: func(t *testing.T, _ time.Time) {
				before := r.report(hit).AcksDropped
				rev, _ := r.change()
				r.waitReport(hit, "applies the change and drops its ack", func(rep record.DSNReport) bool {
					return rep.AppliedRevision >= rev && rep.AcksDropped > before
				})
				require.Eventually(t, func() bool { return acked(r.status(other), rev) }, 30*time.Second, 20*time.Millisecond,
					"the control plane has the other DSN's ack")
				assert.False(t, acked(r.status(hit), rev), "the control plane got no ack of %d from %s", rev, hit)
			},
			after: func(t *testing.T, _ time.Time) {
				rev, _ := r.change()
				require.Eventually(t, func() bool { return acked(r.status(hit), rev) }, 30*time.Second, 20*time.Millisecond,
					"the control plane has the recovered DSN's ack of %d", rev)
			},
		},
		{
			kind: "dsn-clock-skew", sim: "clock-skew", params: map[string]string{"skew": "-1h"},
			during: func(t *testing.T, injected time.Time) {
				// Heartbeats come every 10s (the control plane's interval); skip what was in flight.
				for _, m := range [][]busMsg{r.waitMsgs(r.hbs, hit, injected.Add(time.Second), 1), r.waitMsgs(r.tels, hit, injected, 2)[1:]} {
					assert.InDelta(t, -time.Hour, m[0].sent.Sub(m[0].recv), float64(30*time.Second), "stamped an hour behind")
				}
				hb := r.waitMsgs(r.hbs, other, injected, 1)
				assert.InDelta(t, 0, hb[0].sent.Sub(hb[0].recv), float64(30*time.Second), "others keep the time")
			},
			after: func(t *testing.T, recovered time.Time) {
				for _, m := range [][]busMsg{r.waitMsgs(r.hbs, hit, recovered.Add(time.Second), 1), r.waitMsgs(r.tels, hit, recovered, 2)[1:]} {
					assert.InDelta(t, 0, m[0].sent.Sub(m[0].recv), float64(30*time.Second), "keeps the time again")
				}
			},
		},
		{
			// 360000 points an hour is 100 a second: the disk is gone within a second or two.
			kind: "dsn-disk-degraded", sim: "disk-degradation", params: map[string]string{"loss-per-hour": "360000"},
			during: func(t *testing.T, injected time.Time) {
				tel := r.waitMsgs(r.tels, hit, injected, 3)
				assert.Less(t, tel[2].samples["dsn_disk_health_percent"], 90.0, "disk health falls")
				assert.Equal(t, 100.0, r.waitMsgs(r.tels, other, injected, 1)[0].samples["dsn_disk_health_percent"])
			},
			after: func(t *testing.T, recovered time.Time) {
				tel := r.waitMsgs(r.tels, hit, recovered, 2)
				assert.Equal(t, 100.0, tel[1].samples["dsn_disk_health_percent"], "disk health is back")
			},
		},
		{
			// 6000 degrees a minute is 100 a second.
			kind: "dsn-temperature", sim: "temperature-rise", params: map[string]string{"rise-per-minute": "6000"},
			during: func(t *testing.T, injected time.Time) {
				tel := r.waitMsgs(r.tels, hit, injected, 3)
				assert.Greater(t, tel[2].samples["dsn_temperature_celsius"], 150.0, "temperature climbs")
				assert.Less(t, r.waitMsgs(r.tels, other, injected, 1)[0].samples["dsn_temperature_celsius"], 100.0)
			},
			after: func(t *testing.T, recovered time.Time) {
				tel := r.waitMsgs(r.tels, hit, recovered, 2)
				assert.Less(t, tel[1].samples["dsn_temperature_celsius"], 100.0, "temperature is back")
			},
		},
		{
			kind: "dsn-flap", sim: "flapping", params: map[string]string{"period": "1s", "down": "1s"},
			during: func(t *testing.T, injected time.Time) {
				session := r.status(hit).SessionID
				r.waitReport(hit, "flaps twice", func(rep record.DSNReport) bool { return flaps(rep, injected) >= 2 })
				r.waitReport(hit, "serves again", func(rep record.DSNReport) bool { return rep.State == "serving" })
				require.Eventually(t, func() bool { s := r.status(hit).SessionID; return s != "" && s != session }, 30*time.Second, 20*time.Millisecond,
					"the control plane saw a new session")
				assert.Zero(t, flaps(r.report(other), injected))
			},
			after: func(t *testing.T, recovered time.Time) {
				r.waitReport(hit, "serves", func(rep record.DSNReport) bool { return rep.State == "serving" })
				// A flapping DSN drops every second: five telemetry batches (one a second) with no
				// drop mean it stopped.
				r.waitMsgs(r.tels, hit, time.Now(), 5)
				assert.Zero(t, flaps(r.report(hit), recovered), "no drops after recovery")
			},
		},
	}
	for _, c := range cases {
		t.Run(c.kind, func(t *testing.T) {
			r.t = t
			defer func() { r.t = parent }()
			injected := time.Now()
			f := r.inject(c.kind, hit, c.params)
			assert.Equal(t, []string{hit}, f.(faults.Targeted).Affected())
			c.during(t, injected)
			require.NoError(t, f.Recover(r.ctx))
			recovered := time.Now()
			c.after(t, recovered)
			t.Logf("injected for %s, recovered for %s", recovered.Sub(injected), time.Since(recovered))
			assert.Equal(t, 1, r.report(hit).Faults[c.sim], "the record counts the fault")
		})
	}
}

// flaps counts the drops of a DSN's connection after t.
func flaps(rep record.DSNReport, t time.Time) int {
	n := 0
	for _, tr := range rep.Transitions {
		if tr.Stage == "flap-down" && tr.At.After(t) {
			n++
		}
	}
	return n
}
