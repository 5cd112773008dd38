package distrib_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/agent"
	"github.com/dsnscale/dsnscale/controlplane/distrib"
	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/store"
	"github.com/dsnscale/dsnscale/controlplane/wire"
	"github.com/dsnscale/dsnscale/internal/manualclock"
	"github.com/dsnscale/dsnscale/internal/natsserver"
)

// cp is a control plane for tests: an embedded NATS server, the store and a distributor.
type cp struct {
	t      *testing.T
	dir    string
	listen string
	mod    func(*distrib.Config)
	srv    *natsserver.Server
	nc     *nats.Conn
	js     jetstream.JetStream
	st     *store.KV
	d      *distrib.Distributor
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

// startCP starts a control plane; mod adjusts the distributor's config. Cleanup stops it.
func startCP(t *testing.T, mod func(*distrib.Config)) *cp {
	t.Helper()
	c := &cp{t: t, dir: t.TempDir(), mod: mod}
	c.startBus()
	c.startDistributor()
	t.Cleanup(c.stop)
	return c
}

func (c *cp) startBus() {
	c.t.Helper()
	srv, err := natsserver.Start(natsserver.Config{StoreDir: c.dir, Listen: c.listen})
	require.NoError(c.t, err)
	c.srv = srv
	if c.listen == "" {
		c.listen = srv.Addr().(*net.TCPAddr).String()
	}
	c.nc, err = nats.Connect(srv.URL(), nats.MaxReconnects(0))
	require.NoError(c.t, err)
	c.js, err = jetstream.New(c.nc, jetstream.WithDefaultTimeout(30*time.Second))
	require.NoError(c.t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c.st, err = store.Open(ctx, c.js, store.Config{})
	require.NoError(c.t, err)
}

func (c *cp) startDistributor() {
	c.t.Helper()
	c.reg = prometheus.NewRegistry()
	cfg := distrib.Config{
		Conn: c.nc, JS: c.js, Store: c.st, Registerer: c.reg,
		HeartbeatInterval: 200 * time.Millisecond,
		RetryAfter:        50 * time.Millisecond,
	}
	if c.mod != nil {
		c.mod(&cfg)
	}
	if _, fake := cfg.Clock.(*fakeClock); fake && cfg.CoalesceWindow == 0 {
		// A fake clock's timers fire only when the test moves time; tests that do not test
		// coalescing distribute at once.
		cfg.CoalesceWindow = distrib.NoCoalescing
	}
	d, err := distrib.New(cfg)
	require.NoError(c.t, err)
	c.d = d
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.done = make(chan error, 1)
	go func() { c.done <- d.Run(ctx) }()
	wctx, wcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer wcancel()
	require.NoError(c.t, d.WaitReady(wctx))
	require.True(c.t, d.Ready())
}

// stopDistributor stops the distributor and checks it stopped cleanly.
func (c *cp) stopDistributor() {
	if c.cancel == nil {
		return
	}
	c.cancel()
	c.cancel = nil
	select {
	case err := <-c.done:
		require.NoError(c.t, err)
	case <-time.After(10 * time.Second):
		c.t.Fatal("distributor did not stop")
	}
}

func (c *cp) stopBus() {
	if c.st != nil {
		_ = c.st.Close()
		c.st = nil
	}
	if c.nc != nil {
		c.nc.Close()
		c.nc = nil
	}
	if c.srv != nil {
		c.srv.Stop()
		c.srv = nil
	}
}

func (c *cp) stop() {
	c.stopDistributor()
	c.stopBus()
}

// restart stops everything and starts it again on the same data and address.
func (c *cp) restart() {
	c.stop()
	c.startBus()
	c.startDistributor()
}

func (c *cp) url() string { return "nats://" + c.listen }

func (c *cp) commit(ops ...store.Op) uint64 {
	c.t.Helper()
	_, rev, err := c.st.Commit(context.Background(), ops, nil, false)
	require.NoError(c.t, err)
	return rev
}

// caughtUp waits until distribution has seen rev. A DSN that says Hello before then is up to
// date at the earlier revision and catches up by deltas, not by the snapshot a test may expect.
func (c *cp) caughtUp(t *testing.T, rev uint64) {
	t.Helper()
	require.Eventually(t, func() bool { return c.d.Revision() >= rev }, 5*time.Second, time.Millisecond, "distribution at revision %d", rev)
}

func (c *cp) get(k model.Key) *model.Object {
	c.t.Helper()
	o, err := c.st.Get(context.Background(), k)
	require.NoError(c.t, err)
	return o
}

// counter reads a counter of the distributor's metrics.
func (c *cp) counter(name string, labels ...string) float64 {
	c.t.Helper()
	mfs, err := c.reg.Gather()
	require.NoError(c.t, err)
	for _, mf := range mfs {
		if mf.GetName() != "dsnscale_distrib_"+name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue metric
				}
			}
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
	}
	return 0
}

func (c *cp) status(id string) model.DSNStatus {
	c.t.Helper()
	o, err := c.d.DSN(context.Background(), id)
	require.NoError(c.t, err)
	var st model.DSNStatus
	require.NoError(c.t, json.Unmarshal(o.Status, &st))
	return st
}

// Objects.

func tenantOp(name string) store.Op {
	o := &model.Object{APIVersion: model.APIVersion, Kind: model.KindTenant, Metadata: model.Metadata{Name: name}}
	return store.Op{Type: store.OpCreate, Object: o}
}

func networkObj(tenant, name, cidr string) *model.Object {
	o := &model.Object{APIVersion: model.APIVersion, Kind: model.KindNetwork, Metadata: model.Metadata{Name: name, Tenant: tenant}}
	_ = o.EncodeSpec(model.NetworkSpec{CIDR: cidr, VLAN: 10})
	return o
}

func policyObj(tenant, name string, sel map[string]string, from, to string) *model.Object {
	o := &model.Object{APIVersion: model.APIVersion, Kind: model.KindPolicy, Metadata: model.Metadata{Name: name, Tenant: tenant}}
	_ = o.EncodeSpec(model.PolicySpec{
		Selector: model.Selector{MatchLabels: sel},
		Rules:    []model.Rule{{Action: model.ActionAllow, From: model.Peer{Network: from}, To: model.Peer{Network: to}, Protocol: "tcp", Ports: []string{"443"}}},
	})
	return o
}

func create(o *model.Object) store.Op { return store.Op{Type: store.OpCreate, Object: o} }
func update(o *model.Object) store.Op { return store.Op{Type: store.OpUpdate, Object: o} }
func remove(o *model.Object) store.Op { return store.Op{Type: store.OpDelete, Object: o} }

// Agents.

// pool starts agents on conns shared connections; Cleanup stops them.
func (c *cp) pool(conns int, cfgs ...agent.Config) []*agent.Agent {
	c.t.Helper()
	as, _ := c.startAgents(conns, cfgs...)
	return as
}

// startAgents starts agents on conns shared connections and returns a function that stops
// them; Cleanup stops them too.
func (c *cp) startAgents(conns int, cfgs ...agent.Config) ([]*agent.Agent, func()) {
	c.t.Helper()
	p, err := agent.NewPool(agent.PoolConfig{URL: c.url(), Connections: conns, Agents: cfgs,
		Options: []nats.Option{nats.ReconnectWait(50 * time.Millisecond)}})
	require.NoError(c.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := p.Run(ctx); err != nil {
			c.t.Errorf("agents: %v", err)
		}
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			p.Close()
		})
	}
	c.t.Cleanup(stop)
	return p.Agents(), stop
}

// admitted waits until every agent has been admitted n times.
func admitted(t *testing.T, as []*agent.Agent, n int64) {
	t.Helper()
	for _, a := range as {
		require.Eventuallyf(t, func() bool { return a.Stats().Admissions >= n }, 15*time.Second, 10*time.Millisecond, "agent %s not admitted", a.ID())
	}
}

// dropFirst returns a DropPush that drops the first push of type typ and sends its To on
// dropped.
func dropFirst(typ string, dropped chan<- uint64) func(*wire.Push) bool {
	var once sync.Once
	return func(p *wire.Push) bool {
		drop := false
		if p.Type == typ {
			once.Do(func() {
				drop = true
				dropped <- p.To
			})
		}
		return drop
	}
}

// agents returns n agent configs named prefix-i with labels.
func agents(prefix string, n int, labels map[string]string) []agent.Config {
	out := make([]agent.Config, n)
	for i := range out {
		out[i] = agent.Config{ID: fmt.Sprintf("%s-%d", prefix, i), Labels: labels, MinBackoff: 20 * time.Millisecond, MaxBackoff: 500 * time.Millisecond}
	}
	return out
}

// keys renders a config as "Kind/tenant/name@rev" strings.
func keys(objs []model.Object) []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = o.Key().String() + "@" + o.Metadata.ResourceVersion
	}
	sort.Strings(out)
	return out
}

// want renders the current store objects at ks like keys does.
func (c *cp) want(ks ...model.Key) []string {
	c.t.Helper()
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = k.String() + "@" + c.get(k).Metadata.ResourceVersion
	}
	sort.Strings(out)
	return out
}

// converged waits until every agent has applied rev and holds exactly want.
func converged(t *testing.T, as []*agent.Agent, rev uint64, want []string) {
	t.Helper()
	convergedWithin(t, 15*time.Second, as, rev, want)
}

func convergedWithin(t *testing.T, wait time.Duration, as []*agent.Agent, rev uint64, want []string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for _, a := range as {
		require.Eventuallyf(t, func() bool {
			r, objs := a.Config()
			return r >= rev && equalStrings(keys(objs), want)
		}, max(time.Until(deadline), time.Second), 10*time.Millisecond, "agent %s: want revision %d with %v", a.ID(), rev, want)
	}
}

// acked waits until the control plane has recorded n DSNs at or past rev. Agents apply a
// revision before their ack reaches the control plane, so a test that saw every agent converge
// must still wait for the acks before asking the control plane.
func (c *cp) acked(t *testing.T, rev uint64, n int) model.Convergence {
	t.Helper()
	var conv model.Convergence
	require.Eventuallyf(t, func() bool {
		var err error
		conv, err = c.d.Convergence(context.Background(), rev)
		require.NoError(t, err)
		return conv.AtOrPast >= n
	}, 15*time.Second, 10*time.Millisecond, "acks for revision %d", rev)
	return conv
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func rv(o *model.Object) uint64 {
	v, _ := strconv.ParseUint(o.Metadata.ResourceVersion, 10, 64)
	return v
}

// fakeClock is a Clock whose time, ticks and timers the test drives.
type fakeClock struct {
	*manualclock.Clock
	mu      sync.Mutex
	tickers []*fakeTicker
}

type fakeTicker struct{ c chan time.Time }

func (t *fakeTicker) C() <-chan time.Time { return t.c }
func (t *fakeTicker) Stop()               {}

func newFakeClock() *fakeClock {
	return &fakeClock{Clock: manualclock.New(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))}
}

func (c *fakeClock) NewTicker(time.Duration) distrib.Ticker {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTicker{c: make(chan time.Time)}
	c.tickers = append(c.tickers, t)
	return t
}

// advance moves time on, fires the timers that are due and delivers one tick to every ticker,
// waiting until each is taken.
func (c *fakeClock) advance(d time.Duration) {
	c.Advance(d)
	now := c.Now()
	c.mu.Lock()
	ts := append([]*fakeTicker(nil), c.tickers...)
	c.mu.Unlock()
	for _, t := range ts {
		select {
		case t.c <- now:
		case <-time.After(5 * time.Second):
			panic(errors.New("fake ticker not read"))
		}
	}
}
