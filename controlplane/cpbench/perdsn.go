package cpbench

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/agent"
	"github.com/dsnscale/dsnscale/controlplane/client"
	"github.com/dsnscale/dsnscale/controlplane/pki"
	"github.com/dsnscale/dsnscale/internal/benchfig"
	"github.com/dsnscale/dsnscale/internal/procstat"
)

// PerDSNFleetSize is how many DSN sessions the per-DSN layout connects, each admitted on its
// own (a key, a CSR, a certificate) and on a mutual-TLS connection of its own: as many as the
// shared layout, so that the two layouts' figures compare.
const PerDSNFleetSize = FleetSize

// admitWorkers is how many admissions run at once: as many as a simulated fleet's per-DSN bus
// runs (simdsn/bus maxAdmissions).
const admitWorkers = 32

func init() {
	benchfig.Register(benchfig.Benchmark{Name: "cp_fleet_conn_per_dsn", Area: "cp", Runs: 3, Run: runFleetPerDSN, Figures: []string{
		"cp_admission_10k_per_dsn_s", "cp_connect_10k_dsns_s_conn_per_dsn", "cp_rss_bytes_conn_per_dsn", "cp_rss_bytes_per_dsn_conn_per_dsn",
		"cp_propagation_p50_ms_conn_per_dsn", "cp_propagation_p99_ms_conn_per_dsn", "cp_propagation_max_ms_conn_per_dsn",
		"cp_propagation_unacked_dsns_conn_per_dsn",
	}})
}

// runFleetPerDSN is runFleet's other connection layout: PerDSNFleetSize DSNs, each admitted with
// a DSN bootstrap token and connected on a mutual-TLS connection of its own, as DSNs in the field
// connect, to a control plane process at its defaults. It measures the time to admit, connect
// and sync them all (cp_admission_10k_per_dsn_s: each DSN serves as soon as it is admitted, as
// in the field), the control plane's memory per DSN, and the propagation of changes made through the
// API to every DSN's ack (cp_propagation_*_conn_per_dsn).
func runFleetPerDSN(ctx context.Context, env benchfig.Env) (map[string]float64, error) {
	cp, policy, base, err := startSeeded(ctx, env)
	if err != nil {
		return nil, err
	}
	defer cp.Stop()
	tok, err := cp.api.CreateBootstrapToken(ctx, client.BootstrapTokenSpec{Tenant: "acme", Uses: PerDSNFleetSize, Description: "cp_fleet_conn_per_dsn benchmark"})
	if err != nil {
		return nil, fmt.Errorf("DSN token: %w", err)
	}

	rev, err := cp.api.Revision(ctx)
	if err != nil {
		return nil, err
	}
	tracker := newAckTracker(PerDSNFleetSize)
	fleet := newPerDSNFleet(ctx)
	defer fleet.stop()
	start := time.Now()
	if err := fleet.admit(ctx, cp.api, cp.NATSURL(), tok.Secret, PerDSNFleetSize, tracker); err != nil {
		return nil, err
	}
	env.Logf("cp_fleet_conn_per_dsn: %d DSNs admitted and connected in %.1fs (%d connections tried again)",
		PerDSNFleetSize, time.Since(start).Seconds(), fleet.connectRetries.Load())
	if err := waitConverged(ctx, cp.api, rev, PerDSNFleetSize, 5*time.Minute); err != nil {
		return nil, fmt.Errorf("initial sync: %w", err)
	}
	serving := time.Since(start).Seconds()
	// cp_connect_10k_dsns_s_conn_per_dsn is the same measurement under the name it had before
	// the admission figure, so that runs of both ages compare.
	figs := map[string]float64{"cp_admission_10k_per_dsn_s": serving, "cp_connect_10k_dsns_s_conn_per_dsn": serving}
	env.Logf("cp_fleet_conn_per_dsn: %d DSNs admitted, connected and in sync at revision %d after %.1fs", PerDSNFleetSize, rev, serving)

	time.Sleep(5 * time.Second) // steady state: heartbeats flowing
	steady, err := procstat.Read(cp.PID())
	if err != nil {
		return nil, err
	}
	figs["cp_rss_bytes_conn_per_dsn"] = float64(steady.RSSBytes)
	figs["cp_rss_bytes_per_dsn_conn_per_dsn"] = float64(steady.RSSBytes-base.RSSBytes) / PerDSNFleetSize

	prop, err := propagate(ctx, cp.api, policy, tracker, "_conn_per_dsn", env.Logf)
	if err != nil {
		return nil, err
	}
	maps.Copy(figs, prop)
	if cp.Exited() {
		return nil, errors.New("the control plane process died")
	}
	return figs, nil
}

// perDSNFleet is a fleet of DSNs each admitted on its own and running on a connection of its
// own, as DSNs in the field do: each starts serving as soon as it is admitted and connected.
type perDSNFleet struct {
	ctx    context.Context // the DSNs run until it ends
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// connectRetries counts connections to the bus tried again after a failure.
	connectRetries atomic.Int64

	mu    sync.Mutex
	pools []*agent.Pool
}

// connectAttempts bounds the tries of each DSN's first connection: a DSN that cannot connect
// (its handshake timed out on a busy machine) tries again, as DSNs in the field do.
const connectAttempts = 5

func newPerDSNFleet(ctx context.Context) *perDSNFleet {
	f := &perDSNFleet{}
	f.ctx, f.cancel = context.WithCancel(ctx)
	return f
}

// admit admits n DSNs (dsn-00000 on) with token through api, admitWorkers at a time, connects
// each to the bus at natsURL with its identity and runs it. It returns once every DSN is
// admitted and connected, or at the first error.
func (f *perDSNFleet) admit(ctx context.Context, api *client.Client, natsURL, token string, n int, t *ackTracker) error {
	next := make(chan int)
	errs := make(chan error, admitWorkers)
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for range admitWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f.admitOne(actx, api, natsURL, token, i, t); err != nil {
					errs <- err
					cancel()
					return
				}
			}
		}()
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-actx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}
	return ctx.Err()
}

func (f *perDSNFleet) admitOne(ctx context.Context, api *client.Client, natsURL, token string, i int, t *ackTracker) error {
	cfg := agentConfig(i, t)
	id, err := agent.Admit(ctx, api, token, cfg.ID, pki.RoleDSN, cfg.Labels)
	if err != nil {
		return err
	}
	opts, err := id.NATSOptions()
	if err != nil {
		return err
	}
	cfg.Identity = id
	var p *agent.Pool
	for attempt := 1; ; attempt++ {
		p, err = agent.NewPool(agent.PoolConfig{URL: natsURL, Connections: 1, Agents: []agent.Config{cfg}, Options: opts})
		if err == nil {
			break
		}
		if attempt == connectAttempts {
			return fmt.Errorf("%s: %d connections failed: %w", cfg.ID, attempt, err)
		}
		f.connectRetries.Add(1)
		select {
		case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	f.pools = append(f.pools, p)
	f.mu.Unlock()
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		_ = p.Run(f.ctx)
	}()
	return nil
}

// stop stops every DSN and closes its connection.
func (f *perDSNFleet) stop() {
	f.cancel()
	f.wg.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.pools {
		p.Close()
	}
	f.pools = nil
}
