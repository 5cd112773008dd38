// Package simbench measures the simulated fleet (benchfig area "sim"): memory and CPU per DSN
// of 10,000 in-process DSNs in steady state with the default traffic map, with shared bus
// connections and with one connection per DSN, how many DSNs run in containers at once, and
// 2,000 DSNs in 20 units as containers of the docker driver and as tasks of the swarm driver.
// The control plane under the fleet is `dsnscale cp serve`, a process of its own, so that its
// costs (and its descriptors) are not the fleet's.
package simbench

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/dsnscale/dsnscale/internal/benchfig"
	"github.com/dsnscale/dsnscale/internal/procstat"
	"github.com/dsnscale/dsnscale/simdsn"
	"github.com/dsnscale/dsnscale/simdsn/bus"
	"github.com/dsnscale/dsnscale/simdsn/docker"
	"github.com/dsnscale/dsnscale/simdsn/record"
	"github.com/dsnscale/dsnscale/simdsn/swarm"
	"github.com/dsnscale/dsnscale/simdsn/trafficmap"
)

// Sizes and windows. Each run stays within about two minutes.
const (
	InprocDSNs   = 10_000
	DockerDSNs   = 2_000
	SwarmDSNs    = 2_000
	SwarmUnits   = 20
	bootSpread   = 20 * time.Second
	settle       = 10 * time.Second
	measure      = 30 * time.Second
	convergeTime = 80 * time.Second
)

func init() {
	benchfig.Register(benchfig.Benchmark{Name: "sim_inproc_shared", Area: "sim", Runs: 3, Run: func(ctx context.Context, env benchfig.Env) (map[string]float64, error) {
		return runInproc(ctx, env, bus.Shared, "")
	}})
	benchfig.Register(benchfig.Benchmark{Name: "sim_inproc_conn_per_dsn", Area: "sim", Runs: 1, Run: func(ctx context.Context, env benchfig.Env) (map[string]float64, error) {
		return runInproc(ctx, env, bus.PerDSN, "_conn_per_dsn")
	}})
	benchfig.Register(benchfig.Benchmark{Name: "sim_docker", Area: "sim", Runs: 1, Run: runDocker})
	benchfig.Register(benchfig.Benchmark{Name: "sim_swarm", Area: "sim", Runs: 1, Run: runSwarm})
}

func serving(n int) func(record.Summary) bool {
	return func(s record.Summary) bool { return s.Count("serving") == n }
}

// runInproc runs InprocDSNs in this process against a control plane process and measures, in
// steady state, resident memory and CPU time per DSN.
func runInproc(ctx context.Context, env benchfig.Env, mode bus.Mode, suffix string) (map[string]float64, error) {
	cp, err := startCP(ctx, env.Binary, env.WorkDir)
	if err != nil {
		return nil, err
	}
	defer cp.Stop()
	if err := seedIntent(ctx, cp); err != nil {
		return nil, err
	}
	runtime.GC()
	debug.FreeOSMemory()
	base, err := procstat.Read(0)
	if err != nil {
		return nil, err
	}
	sec, err := cp.security(ctx, mode, InprocDSNs)
	if err != nil {
		return nil, err
	}
	f, err := simdsn.New(ctx, simdsn.Config{NATSURL: cp.natsURL, Count: InprocDSNs, Conn: mode, Seed: 1, Workers: 2, WorkDir: env.WorkDir, Security: sec})
	if err != nil {
		return nil, err
	}
	defer f.Close(context.WithoutCancel(ctx))
	start := time.Now()
	if err := f.Start(ctx, bootSpread); err != nil {
		return nil, err
	}
	// With one connection per DSN each DSN is admitted on its own (a key, a CSR, a mutual-TLS
	// connection), which takes longer than one gateway identity.
	wait := convergeTime
	if mode == bus.PerDSN {
		wait = 5 * time.Minute
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if err := f.WaitFor(wctx, serving(InprocDSNs)); err != nil {
		return nil, fmt.Errorf("%d DSNs not serving after %v: %s", InprocDSNs, wait, summary(f))
	}
	servingAfter := time.Since(start).Seconds()
	env.Logf("sim%s: %d DSNs serving after %.1fs", suffix, InprocDSNs, servingAfter)
	time.Sleep(settle)
	s0, err := procstat.Read(0)
	if err != nil {
		return nil, err
	}
	st0, t0 := engineStats(f), time.Now()
	time.Sleep(measure)
	s1, err := procstat.Read(0)
	if err != nil {
		return nil, err
	}
	st1, t1 := engineStats(f), time.Now()
	if n := f.Reports().Summary().Count("serving"); n != InprocDSNs {
		return nil, fmt.Errorf("only %d of %d DSNs serving at the end of the window: %s", n, InprocDSNs, summary(f))
	}
	runtime.GC()
	debug.FreeOSMemory()
	live, err := procstat.Read(0)
	if err != nil {
		return nil, err
	}
	secs := t1.Sub(t0).Seconds()
	figs := map[string]float64{
		"sim_bytes_per_dsn" + suffix:        float64(s1.RSSBytes-base.RSSBytes) / InprocDSNs,
		"sim_live_bytes_per_dsn" + suffix:   float64(live.RSSBytes-base.RSSBytes) / InprocDSNs,
		"sim_cpu_us_per_dsn_s" + suffix:     (s1.CPUSeconds - s0.CPUSeconds) / secs / InprocDSNs * 1e6,
		"sim_msgs_per_dsn_s" + suffix:       float64(st1.Messages-st0.Messages) / secs / InprocDSNs,
		"sim_bytes_sent_per_dsn_s" + suffix: float64(st1.Bytes-st0.Bytes) / secs / InprocDSNs,
		"sim_serving_after_s" + suffix:      servingAfter,
	}
	env.Logf("sim%s: %v", suffix, figs)
	return figs, nil
}

// runDocker runs DockerDSNs in containers (one per rack of the default map: 8) and measures
// how many serve at once and their steady-state CPU and memory.
func runDocker(ctx context.Context, env benchfig.Env) (map[string]float64, error) {
	if err := docker.Available(); err != nil {
		return nil, err
	}
	return runUnits(ctx, env, docker.Name, "sim_docker", DockerDSNs, nil)
}

// runSwarm runs SwarmDSNs in SwarmUnits units twice, back to back: as containers of the docker
// driver, then as tasks of the swarm driver, on a one-node swarm it creates (and leaves) when
// the engine is in none.
func runSwarm(ctx context.Context, env benchfig.Env) (map[string]float64, error) {
	if err := docker.Available(); err != nil {
		return nil, err
	}
	m := racked(trafficmap.Default(), SwarmUnits)
	figs, err := runUnits(ctx, env, docker.Name, "sim_docker_20", SwarmDSNs, m)
	if err != nil {
		return nil, err
	}
	leave, err := swarm.LocalSwarm(ctx)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := leave(context.WithoutCancel(ctx)); err != nil {
			env.Logf("sim_swarm: %v", err)
		}
	}()
	sf, err := runUnits(ctx, env, swarm.Name, "sim_swarm", SwarmDSNs, m)
	if err != nil {
		return nil, err
	}
	maps.Copy(figs, sf)
	return figs, nil
}

// racked is m with its racks replaced by units racks, spread evenly over its sites, each site's
// DSNs shared evenly by its racks, so that a fleet of m's shape runs in units containers.
func racked(m *trafficmap.Map, units int) *trafficmap.Map {
	out := *m
	out.Sites = make([]trafficmap.Site, len(m.Sites))
	for i, site := range m.Sites {
		n := units / len(m.Sites)
		if i < units%len(m.Sites) {
			n++
		}
		total := 0
		for _, r := range site.Racks {
			total += r.DSNs
		}
		out.Sites[i] = trafficmap.Site{Name: site.Name}
		for r := range n {
			size := total / n
			if r < total%n {
				size++
			}
			out.Sites[i].Racks = append(out.Sites[i].Racks, trafficmap.Rack{Name: fmt.Sprintf("%s-u%d", site.Name, r+1), DSNs: size})
		}
	}
	return &out
}

// runUnits runs dsns DSNs on a driver of units (m's racks; nil: the default map) and measures
// how many serve at once, how long after the launch, and their steady-state CPU and memory as
// the driver reports them. Figures are named prefix_*.
func runUnits(ctx context.Context, env benchfig.Env, driverName, prefix string, dsns int, m *trafficmap.Map) (map[string]float64, error) {
	dir := filepath.Join(env.WorkDir, prefix) // a control plane and a fleet of its own
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	cp, err := startCP(ctx, env.Binary, dir)
	if err != nil {
		return nil, err
	}
	defer cp.Stop()
	if err := seedIntent(ctx, cp); err != nil {
		return nil, err
	}
	sec, err := cp.security(ctx, bus.Shared, dsns)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	f, err := simdsn.New(ctx, simdsn.Config{Driver: driverName, NATSURL: cp.natsURL, Count: dsns, Map: m, Seed: 1,
		Workers: 2, WorkDir: dir, Binary: env.Binary, Security: sec})
	if err != nil {
		return nil, err
	}
	defer f.Close(context.WithoutCancel(ctx))
	launched := time.Since(start)
	if err := f.Start(ctx, bootSpread); err != nil {
		return nil, err
	}
	wait := convergeTime
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	err = f.WaitFor(wctx, serving(dsns))
	servingAfter := time.Since(start)
	n := f.Reports().Summary().Count("serving")
	env.Logf("%s: %d DSNs serving in %d units after %.1fs (launched in %.1fs)", prefix, n, len(f.Units()),
		servingAfter.Seconds(), launched.Seconds())
	if err != nil {
		return nil, fmt.Errorf("%s: %d DSNs not serving after %v: %s", prefix, dsns, wait, summary(f))
	}
	time.Sleep(settle)
	u0, err := f.Deployment().Usage(ctx)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	time.Sleep(measure)
	u1, err := f.Deployment().Usage(ctx)
	if err != nil {
		return nil, err
	}
	secs := time.Since(t0).Seconds()
	n = f.Reports().Summary().Count("serving")
	figs := map[string]float64{
		prefix + "_dsns":             float64(n),
		prefix + "_containers":       float64(len(f.Units())),
		prefix + "_cpu_us_per_dsn_s": (u1.CPUSeconds - u0.CPUSeconds) / secs / float64(dsns) * 1e6,
		prefix + "_bytes_per_dsn":    float64(u1.MemoryBytes) / float64(dsns),
		prefix + "_memory_bytes":     float64(u1.MemoryBytes),
		prefix + "_serving_after_s":  servingAfter.Seconds(),
	}
	env.Logf("%s: %v", prefix, figs)
	return figs, nil
}

func summary(f *simdsn.Fleet) string {
	s := f.Reports().Summary()
	return fmt.Sprintf("%v", s.ByState)
}

// engineStats reads what the in-process engine sent, if the deployment exposes it.
func engineStats(f *simdsn.Fleet) struct{ Messages, Bytes int64 } {
	type engined interface {
		SentStats() (int64, int64)
	}
	if e, ok := f.Deployment().(engined); ok {
		m, b := e.SentStats()
		return struct{ Messages, Bytes int64 }{m, b}
	}
	return struct{ Messages, Bytes int64 }{}
}
