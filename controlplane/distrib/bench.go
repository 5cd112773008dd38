package distrib

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dsnscale/dsnscale/controlplane/agent"
	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/store"
	"github.com/dsnscale/dsnscale/internal/benchfig"
	"github.com/dsnscale/dsnscale/internal/natsserver"
)

// Propagation benchmark sizes.
const (
	benchAgents      = 10000
	benchConnections = 100
	benchGroups      = 100 // label groups (racks)
	benchCommits     = 3   // measured policy changes per run
	benchWait        = 30 * time.Second
)

func init() {
	benchfig.Register(benchfig.Benchmark{
		Name: "cp_propagation_inprocess",
		Area: "cp",
		Runs: 3,
		Run:  runPropagationBench,
	})
}

// propagation records, for one revision, when each agent applied it.
type propagation struct {
	target atomic.Uint64
	start  time.Time
	mu     sync.Mutex
	done   []bool
	lat    []time.Duration
	left   int
	all    chan struct{}
}

func (p *propagation) arm(n int, target uint64, start time.Time) {
	p.mu.Lock()
	p.start = start
	p.done = make([]bool, n)
	p.lat = p.lat[:0]
	p.left = n
	p.all = make(chan struct{})
	p.mu.Unlock()
	p.target.Store(target)
}

func (p *propagation) applied(i int, rev uint64, at time.Time) {
	t := p.target.Load()
	if t == 0 || rev < t {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil || p.done[i] {
		return
	}
	p.done[i] = true
	p.lat = append(p.lat, at.Sub(p.start))
	if p.left--; p.left == 0 {
		close(p.all)
	}
}

// runPropagationBench runs 10,000 agent sessions on 100 shared connections against a control
// plane in the same process (embedded NATS, store, distributor), commits policy changes and
// measures the time from each commit to each agent's apply: the distributor's own cost, with
// no TLS, authentication, admission or API (cp_propagation_inprocess_*; the realistic path is
// cpbench's cp_propagation_*).
func runPropagationBench(ctx context.Context, env benchfig.Env) (map[string]float64, error) {
	local, err := natsserver.StartLocal(filepath.Join(env.WorkDir, "nats"), nats.MaxReconnects(-1))
	if err != nil {
		return nil, err
	}
	defer local.Close()
	nc, js := local.Conn, local.JS
	st, err := store.Open(ctx, js, store.Config{})
	if err != nil {
		return nil, err
	}
	defer func() { _ = st.Close() }()
	d, err := New(Config{Conn: nc, JS: js, Store: st})
	if err != nil {
		return nil, err
	}
	// Stop agents first, then the distributor, then wait for both.
	runCtx, stopCP := context.WithCancel(ctx)
	agentsCtx, stopAgents := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		stopAgents()
		stopCP()
		wg.Wait()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := d.Run(runCtx); err != nil {
			env.Logf("distributor: %v", err)
		}
	}()
	if err := d.WaitReady(ctx); err != nil {
		return nil, err
	}

	commit := func(ops ...store.Op) (uint64, error) {
		_, rev, err := st.Commit(ctx, ops, nil, false)
		return rev, err
	}
	netOps := []store.Op{{Type: store.OpCreate, Object: &model.Object{APIVersion: model.APIVersion, Kind: model.KindTenant, Metadata: model.Metadata{Name: "bench"}}}}
	for _, n := range []string{"front", "back"} {
		o := &model.Object{APIVersion: model.APIVersion, Kind: model.KindNetwork, Metadata: model.Metadata{Name: n, Tenant: "bench"}}
		_ = o.EncodeSpec(model.NetworkSpec{CIDR: "10.1.0.0/16", VLAN: 100})
		netOps = append(netOps, store.Op{Type: store.OpCreate, Object: o})
	}
	if _, err := commit(netOps...); err != nil {
		return nil, err
	}

	// Agents start with nothing selecting them, so that admission is a version check.
	var prop propagation
	cfgs := make([]agent.Config, benchAgents)
	for i := range cfgs {
		i := i
		cfgs[i] = agent.Config{
			ID:      fmt.Sprintf("bench-%05d", i),
			Labels:  map[string]string{"role": "bench", "rack": fmt.Sprintf("r%03d", i%benchGroups)},
			OnApply: func(rev uint64, at time.Time) { prop.applied(i, rev, at) },
		}
	}
	pool, err := agent.NewPool(agent.PoolConfig{URL: local.Server.URL(), Connections: benchConnections, Agents: cfgs})
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := pool.Run(agentsCtx); err != nil {
			env.Logf("agents: %v", err)
		}
	}()
	started := time.Now()
	if err := waitAdmitted(ctx, pool.Agents(), 60*time.Second); err != nil {
		return nil, err
	}
	env.Logf("cp_propagation_inprocess: %d agents admitted in %v", benchAgents, time.Since(started).Round(time.Millisecond))

	var p50s, p99s, maxes []float64
	for c := 0; c < benchCommits; c++ {
		pol := &model.Object{APIVersion: model.APIVersion, Kind: model.KindPolicy, Metadata: model.Metadata{Name: "p", Tenant: "bench"}}
		_ = pol.EncodeSpec(model.PolicySpec{
			Selector: model.Selector{MatchLabels: map[string]string{"role": "bench"}},
			Rules: []model.Rule{{Action: model.ActionAllow, From: model.Peer{Network: "front"}, To: model.Peer{Network: "back"},
				Protocol: "tcp", Ports: []string{fmt.Sprint(8000 + c)}}},
		})
		op := store.Op{Type: store.OpUpdate, Object: pol}
		if c == 0 {
			op.Type = store.OpCreate
		}
		next := st.Revision() + 1
		start := time.Now()
		prop.arm(benchAgents, next, start)
		rev, err := commit(op)
		if err != nil {
			return nil, err
		}
		if rev != next {
			return nil, fmt.Errorf("commit got revision %d, expected %d", rev, next)
		}
		select {
		case <-prop.all:
		case <-time.After(benchWait):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		prop.target.Store(0)
		prop.mu.Lock()
		lat := append([]time.Duration(nil), prop.lat...)
		prop.mu.Unlock()
		missing := benchAgents - len(lat)
		for ; missing > 0; missing-- {
			lat = append(lat, benchWait)
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		ms := func(q float64) float64 {
			i := min(len(lat)-1, max(0, int(q*float64(len(lat)))-1))
			return float64(lat[i].Microseconds()) / 1000
		}
		p50s, p99s, maxes = append(p50s, ms(0.50)), append(p99s, ms(0.99)), append(maxes, ms(1))
		env.Logf("cp_propagation_inprocess: commit %d (revision %d): p50 %.1f ms, p99 %.1f ms, max %.1f ms, not applied %d",
			c+1, rev, ms(0.50), ms(0.99), ms(1), benchAgents-len(prop.lat))
		time.Sleep(200 * time.Millisecond) // let acks settle between commits
	}
	return map[string]float64{
		"cp_propagation_inprocess_p50_ms": benchfig.Median(p50s),
		"cp_propagation_inprocess_p99_ms": benchfig.Median(p99s),
		"cp_propagation_inprocess_max_ms": benchfig.Median(maxes),
	}, nil
}

func waitAdmitted(ctx context.Context, as []*agent.Agent, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		n := 0
		for _, a := range as {
			if a.State() == "serving" {
				n++
			}
		}
		if n == len(as) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d agents admitted after %v", n, len(as), timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
