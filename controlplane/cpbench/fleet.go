package cpbench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/agent"
	"github.com/dsnscale/dsnscale/controlplane/client"
	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/internal/benchfig"
	"github.com/dsnscale/dsnscale/internal/procstat"
)

// FleetSize is how many DSN sessions the benchmark connects.
const FleetSize = 10_000

// sharedConnections is how many NATS connections the sessions share: the fleet runs in the
// benchmark's process, whose descriptors are bounded like everyone's.
const sharedConnections = 100

func init() {
	benchfig.Register(benchfig.Benchmark{Name: "cp_fleet", Area: "cp", Runs: 3, Run: runFleet, Figures: []string{
		"cp_connect_10k_dsns_s", "cp_rss_bytes", "cp_rss_bytes_per_dsn",
		"cp_propagation_p50_ms", "cp_propagation_p99_ms", "cp_propagation_max_ms", "cp_propagation_unacked_dsns",
		"cp_storm_10k_reconnect_s", "cp_storm_api_p99_ms", "cp_storm_api_errors", "cp_storm_retry_hints",
	}})
}

// runFleet connects FleetSize sessions, over sharedConnections gateway connections, to a
// control plane process at its default settings with its security on, and measures its memory
// per DSN, the time for policy changes made through the API to reach every DSN's ack (the
// headline cp_propagation_*), and a storm of every session reconnecting at once while the API
// is in use.
func runFleet(ctx context.Context, env benchfig.Env) (map[string]float64, error) {
	cp, policy, base, err := startSeeded(ctx, env)
	if err != nil {
		return nil, err
	}
	defer cp.Stop()

	figs := map[string]float64{}
	tracker := newAckTracker(FleetSize)
	cfgs := make([]agent.Config, FleetSize)
	for i := range cfgs {
		cfgs[i] = agentConfig(i, tracker)
	}
	start := time.Now()
	pool, stopPool, err := runPool(ctx, cp, cfgs)
	if err != nil {
		return nil, err
	}
	rev, err := cp.api.Revision(ctx)
	if err != nil {
		stopPool()
		return nil, err
	}
	if err := waitConverged(ctx, cp.api, rev, FleetSize, 3*time.Minute); err != nil {
		stopPool()
		return nil, fmt.Errorf("initial sync: %w", err)
	}
	figs["cp_connect_10k_dsns_s"] = time.Since(start).Seconds()
	env.Logf("cp_fleet: %d sessions in sync at revision %d after %.1fs", FleetSize, rev, time.Since(start).Seconds())

	time.Sleep(5 * time.Second) // steady state: heartbeats flowing
	steady, err := procstat.Read(cp.PID())
	if err != nil {
		stopPool()
		return nil, err
	}
	figs["cp_rss_bytes"] = float64(steady.RSSBytes)
	figs["cp_rss_bytes_per_dsn"] = float64(steady.RSSBytes-base.RSSBytes) / FleetSize

	// Policy changes through the API, timed to each session's ack.
	prop, err := propagate(ctx, cp.api, policy, tracker, "", env.Logf)
	if err != nil {
		stopPool()
		return nil, err
	}
	maps.Copy(figs, prop)
	newRev, err := cp.api.Revision(ctx)
	if err != nil {
		stopPool()
		return nil, err
	}

	// The storm: every session drops and says Hello again at once, keeping its config.
	stopPool()
	for i := range cfgs {
		applied, objs := pool.Agents()[i].Config()
		cfgs[i].InitialRevision, cfgs[i].InitialObjects = applied, objs
	}
	apiCtx, stopAPI := context.WithCancel(ctx)
	probe := startAPIProbe(apiCtx, cp.api, 100)
	stormStart := time.Now()
	pool, stopPool, err = runPool(ctx, cp, cfgs)
	if err != nil {
		stopAPI()
		return nil, err
	}
	defer stopPool()
	err = waitAdmitted(ctx, pool, newRev, 2*time.Minute)
	stopAPI()
	lat, errs := probe.result()
	if err != nil {
		return nil, fmt.Errorf("storm: %w", err)
	}
	if cp.Exited() {
		return nil, errors.New("storm: the control plane process died")
	}
	figs["cp_storm_10k_reconnect_s"] = time.Since(stormStart).Seconds()
	figs["cp_storm_api_p99_ms"] = quantile(lat, 0.99)
	figs["cp_storm_api_errors"] = float64(errs)
	var retries int64
	for _, a := range pool.Agents() {
		retries += a.Stats().Retries
	}
	figs["cp_storm_retry_hints"] = float64(retries)
	peak, err := procstat.Read(cp.PID())
	if err == nil {
		figs["cp_peak_rss_bytes"] = float64(peak.PeakRSS)
	}
	return figs, nil
}

func agentConfig(i int, t *ackTracker) agent.Config {
	return agent.Config{
		ID:              fmt.Sprintf("dsn-%05d", i),
		Labels:          map[string]string{"role": "edge", "site": "s1", "rack": fmt.Sprintf("r%02d", i%40)},
		SoftwareVersion: "1.0.0",
		OnAck:           func(rev uint64, at time.Time) { t.onAck(i, rev, at) },
	}
}

func runPool(ctx context.Context, cp *cpProcess, cfgs []agent.Config) (*agent.Pool, func(), error) {
	pool, err := agent.NewPool(agent.PoolConfig{URL: cp.NATSURL(), Connections: sharedConnections, Agents: cfgs, Options: cp.busOpts})
	if err != nil {
		return nil, nil, err
	}
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = pool.Run(pctx); close(done) }()
	var once sync.Once
	return pool, func() {
		once.Do(func() {
			cancel()
			<-done
			pool.Close()
		})
	}, nil
}

// seedIntent creates a tenant, two networks and a policy selecting every benchmark DSN.
// startSeeded starts the control plane for a fleet benchmark, seeds the intent whose policy the
// benchmark changes, and reads the process's baseline once it has settled.
func startSeeded(ctx context.Context, env benchfig.Env) (*cpProcess, *model.Object, procstat.Sample, error) {
	cp, err := startCP(ctx, env.Binary, env.WorkDir)
	if err != nil {
		return nil, nil, procstat.Sample{}, err
	}
	policy, err := seedIntent(ctx, cp.api)
	if err == nil {
		time.Sleep(time.Second) // let the process settle before the baseline
		var base procstat.Sample
		if base, err = procstat.Read(cp.PID()); err == nil {
			return cp, policy, base, nil
		}
	}
	cp.Stop()
	return nil, nil, procstat.Sample{}, err
}

func seedIntent(ctx context.Context, api *client.Client) (*model.Object, error) {
	objs := []*model.Object{
		{APIVersion: model.APIVersion, Kind: model.KindTenant, Metadata: model.Metadata{Name: "acme"}, Spec: mustJSON(model.TenantSpec{})},
		{APIVersion: model.APIVersion, Kind: model.KindNetwork, Metadata: model.Metadata{Name: "web", Tenant: "acme"}, Spec: mustJSON(model.NetworkSpec{CIDR: "10.1.0.0/16", VLAN: 100})},
		{APIVersion: model.APIVersion, Kind: model.KindNetwork, Metadata: model.Metadata{Name: "db", Tenant: "acme"}, Spec: mustJSON(model.NetworkSpec{CIDR: "10.2.0.0/16", VLAN: 200})},
		{APIVersion: model.APIVersion, Kind: model.KindPolicy, Metadata: model.Metadata{Name: "edge", Tenant: "acme"}, Spec: mustJSON(model.PolicySpec{
			Selector: model.Selector{MatchLabels: map[string]string{"role": "edge"}},
			Rules:    []model.Rule{{Action: model.ActionAllow, From: model.Peer{Network: "web"}, To: model.Peer{Network: "db"}, Protocol: "tcp", Ports: []string{"5432"}}},
		})},
	}
	var last *model.Object
	for _, o := range objs {
		created, err := api.Create(ctx, o)
		if err != nil {
			return nil, fmt.Errorf("seed %s: %w", o.Key(), err)
		}
		last = created
	}
	return last, nil
}

func waitConverged(ctx context.Context, api *client.Client, rev uint64, want int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last model.Convergence
	for time.Now().Before(deadline) {
		c, err := api.Convergence(ctx, rev)
		if err == nil {
			last = c
			if c.AtOrPast >= want {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%d of %d DSNs at revision %d after %s", last.AtOrPast, want, rev, timeout)
}

// waitAdmitted waits until every session of pool has been admitted and applied rev or later.
func waitAdmitted(ctx context.Context, pool *agent.Pool, rev uint64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	n := 0
	for time.Now().Before(deadline) {
		n = 0
		for _, a := range pool.Agents() {
			if a.Stats().Admissions > 0 && a.Applied() >= rev {
				n++
			}
		}
		if n == len(pool.Agents()) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%d of %d sessions admitted at revision %d after %s", n, len(pool.Agents()), rev, timeout)
}

// apiProbe issues GETs at a fixed rate and times them from their intended start.
type apiProbe struct {
	mu     sync.Mutex
	lat    []float64
	errors atomic.Int64
	wg     sync.WaitGroup
}

func startAPIProbe(ctx context.Context, api *client.Client, perSecond int) *apiProbe {
	p := &apiProbe{}
	interval := time.Second / time.Duration(perSecond)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		next := time.Now()
		for ctx.Err() == nil {
			intended := next
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				defer cancel()
				_, err := api.Get(rctx, model.Key{Kind: model.KindTenant, Name: "acme"})
				if err != nil {
					p.errors.Add(1)
					return
				}
				p.mu.Lock()
				p.lat = append(p.lat, float64(time.Since(intended).Microseconds())/1000)
				p.mu.Unlock()
			}()
			next = next.Add(interval)
			time.Sleep(time.Until(next))
		}
	}()
	return p
}

func (p *apiProbe) result() ([]float64, int64) {
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lat, p.errors.Load()
}

func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	i := int(q * float64(len(s)-1))
	return s[i]
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func parseRV(o *model.Object) uint64 {
	var rv uint64
	_, _ = fmt.Sscan(o.Metadata.ResourceVersion, &rv)
	return rv
}
