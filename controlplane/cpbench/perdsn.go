package cpbench

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
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

// admitWorkers is how many admissions run at once.
const admitWorkers = 16

func init() {
	benchfig.Register(benchfig.Benchmark{Name: "cp_fleet_conn_per_dsn", Area: "cp", Runs: 3, Run: runFleetPerDSN, Figures: []string{
		"cp_connect_10k_dsns_s_conn_per_dsn", "cp_rss_bytes_conn_per_dsn", "cp_rss_bytes_per_dsn_conn_per_dsn",
		"cp_propagation_p50_ms_conn_per_dsn", "cp_propagation_p99_ms_conn_per_dsn", "cp_propagation_max_ms_conn_per_dsn",
		"cp_propagation_unacked_dsns_conn_per_dsn",
	}})
}

// runFleetPerDSN is runFleet's other connection layout: PerDSNFleetSize DSNs, each admitted with
// a DSN bootstrap token and connected on a mutual-TLS connection of its own, as DSNs in the field
// connect, to a control plane process at its defaults. It measures the time to connect and sync
// them all, the control plane's memory per DSN, and the propagation of changes made through the
// API to every DSN's ack (cp_propagation_*_conn_per_dsn).
func runFleetPerDSN(ctx context.Context, env benchfig.Env) (map[string]float64, error) {
	cp, err := startCP(ctx, env.Binary, env.WorkDir)
	if err != nil {
		return nil, err
	}
	defer cp.Stop()
	policy, err := seedIntent(ctx, cp.api)
	if err != nil {
		return nil, err
	}
	time.Sleep(time.Second) // let the process settle before the baseline
	base, err := procstat.Read(cp.PID())
	if err != nil {
		return nil, err
	}
	tok, err := cp.api.CreateBootstrapToken(ctx, client.BootstrapTokenSpec{Tenant: "acme", Uses: PerDSNFleetSize, Description: "cp_fleet_conn_per_dsn benchmark"})
	if err != nil {
		return nil, fmt.Errorf("DSN token: %w", err)
	}

	tracker := newAckTracker(PerDSNFleetSize)
	start := time.Now()
	pools, err := admitAll(ctx, cp, tok.Secret, tracker)
	defer func() {
		for _, p := range pools {
			p.Close()
		}
	}()
	if err != nil {
		return nil, err
	}
	env.Logf("cp_fleet_conn_per_dsn: %d DSNs admitted and connected in %.1fs", len(pools), time.Since(start).Seconds())
	pctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	for _, p := range pools {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = p.Run(pctx)
		}()
	}
	rev, err := cp.api.Revision(ctx)
	if err != nil {
		return nil, err
	}
	if err := waitConverged(ctx, cp.api, rev, PerDSNFleetSize, 5*time.Minute); err != nil {
		return nil, fmt.Errorf("initial sync: %w", err)
	}
	figs := map[string]float64{"cp_connect_10k_dsns_s_conn_per_dsn": time.Since(start).Seconds()}
	env.Logf("cp_fleet_conn_per_dsn: %d sessions in sync at revision %d after %.1fs", PerDSNFleetSize, rev, time.Since(start).Seconds())

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

// admitAll admits PerDSNFleetSize DSNs with token and gives each a pool of its own: one agent on
// one connection with its identity. On error it returns the pools made so far, for closing.
func admitAll(ctx context.Context, cp *cpProcess, token string, t *ackTracker) ([]*agent.Pool, error) {
	pools := make([]*agent.Pool, PerDSNFleetSize)
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
				p, err := admitOne(actx, cp, token, i, t)
				if err != nil {
					errs <- err
					cancel()
					return
				}
				pools[i] = p
			}
		}()
	}
feed:
	for i := range pools {
		select {
		case next <- i:
		case <-actx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	made := pools[:0:0]
	for _, p := range pools {
		if p != nil {
			made = append(made, p)
		}
	}
	select {
	case err := <-errs:
		return made, err
	default:
	}
	if err := ctx.Err(); err != nil {
		return made, err
	}
	return made, nil
}

func admitOne(ctx context.Context, cp *cpProcess, token string, i int, t *ackTracker) (*agent.Pool, error) {
	cfg := agentConfig(i, t)
	id, err := agent.Admit(ctx, cp.api, token, cfg.ID, pki.RoleDSN, cfg.Labels)
	if err != nil {
		return nil, err
	}
	opts, err := id.NATSOptions()
	if err != nil {
		return nil, err
	}
	cfg.Identity = id
	return agent.NewPool(agent.PoolConfig{URL: cp.NATSURL(), Connections: 1, Agents: []agent.Config{cfg}, Options: opts})
}
