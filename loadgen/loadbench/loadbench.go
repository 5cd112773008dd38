// Package loadbench registers the load generator's benchmarks: loadgen against vegeta (as a
// library) at the same rates on the same target, and the reference control plane's API
// capacity (highest sustained GET and write rates, and their latencies at half those rates).
//
// Both run the control plane in this process, so the generator and the server share the
// machine's cores; each reports the generator's own CPU share, measured by labelling the
// generator's goroutines and splitting the process's CPU time by a CPU profile's samples.
package loadbench

import (
	"context"
	"fmt"
	"runtime"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/internal/benchfig"
	"github.com/dsnscale/dsnscale/loadgen/mix"
	"github.com/dsnscale/dsnscale/loadgen/northbound"
)

// runTimeout bounds one run of a benchmark.
const runTimeout = 100 * time.Second

func init() {
	benchfig.Register(benchfig.Benchmark{Name: "loadgen-vs-vegeta", Area: "loadgen", Run: benchVsVegeta})
	benchfig.Register(benchfig.Benchmark{Name: "cp-api", Area: "cp", Run: benchCPAPI})
}

// cpTenants and cpNetworksPerTenant size the capacity benchmark's population: enough networks
// that writes at the highest rates never run out of idle objects to update.
const (
	cpTenants           = 20
	cpNetworksPerTenant = 200
)

// workload sets up a built-in mix against url; tenants and networks, when not 0, resize its
// population.
func workload(ctx context.Context, logf func(string, ...any), url, mixName string, tenants, networks int) (*northbound.Workload, error) {
	m, err := mix.Builtin(mixName)
	if err != nil {
		return nil, err
	}
	m.Timeout = requestTimeout
	if tenants > 0 {
		m.Population.Tenants, m.Population.NetworksPerTenant = tenants, networks
	}
	w, err := northbound.New(northbound.Config{Target: url, Mix: m})
	if err != nil {
		return nil, err
	}
	st, err := w.Setup(ctx)
	if err != nil {
		return nil, err
	}
	logf("%s: set up %d objects (%d created, %d adopted) in %s", mixName, st.Created+st.Adopted, st.Created, st.Adopted, st.Duration.Round(time.Millisecond))
	return w, nil
}

// cpuShare is a step's generator CPU as a share of all the machine's cores over its elapsed
// time; ok is false when profiling was unavailable.
func cpuShare(s stepResult) (float64, bool) {
	if !s.CPU.Known || s.Elapsed <= 0 {
		return 0, false
	}
	return s.CPU.Generator.Seconds() / (s.Elapsed.Seconds() * float64(cores())), true
}

// cpuPerRequest is the generator's CPU per completed request.
func cpuPerRequest(s stepResult) float64 {
	if !s.CPU.Known || s.Completed == 0 {
		return 0
	}
	return s.CPU.Generator.Seconds() / float64(s.Completed)
}

func ratio(a, b float64) (float64, error) {
	if b == 0 {
		return 0, fmt.Errorf("ratio with a zero denominator (%v / %v)", a, b)
	}
	return a / b, nil
}

// benchVsVegeta compares loadgen with vegeta on a GET-only mix against the control plane:
// the highest rate each sustains, their latencies at an equal rate both sustain, and their CPU
// per request there.
func benchVsVegeta(ctx context.Context, env benchfig.Env) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, runTimeout)
	defer cancel()
	tg, err := startTarget(ctx, env.WorkDir)
	if err != nil {
		return nil, err
	}
	defer tg.stop()
	w, err := workload(ctx, env.Logf, tg.url, "get-only", 0, 0)
	if err != nil {
		return nil, err
	}
	defer w.CloseIdleConnections()
	var targets []vegeta.Target
	for _, u := range w.ItemURLs(model.KindNetwork) {
		targets = append(targets, vegeta.Target{Method: "GET", URL: u, Header: w.Header()})
	}
	env.Logf("loadgen vs vegeta: %d GET targets at %s", len(targets), tg.url)

	lg := newSearch("loadgen", 1000, 100, 64000, func(ctx context.Context, r float64) (stepResult, error) { return runLoadgen(ctx, w, r) })
	vg := newSearch("vegeta", 1000, 100, 64000, func(ctx context.Context, r float64) (stepResult, error) { return runVegeta(ctx, targets, r) })
	if err := runSearches(ctx, env.Logf, 36*time.Second, lg, vg); err != nil {
		return nil, err
	}
	env.Logf("max sustained: loadgen %.0f/s, vegeta %.0f/s", lg.maxRate(), vg.maxRate())
	if lg.maxRate() == 0 || vg.maxRate() == 0 {
		return nil, fmt.Errorf("no sustained rate: loadgen %.0f/s, vegeta %.0f/s", lg.maxRate(), vg.maxRate())
	}

	// Latency at an equal rate that both sustain with room to spare, in alternating order.
	equal := float64(int(min(lg.maxRate(), vg.maxRate()) / 2))
	var ls, vs []stepResult
	for _, loadgenFirst := range []bool{true, false} {
		for i := 0; i < 2; i++ {
			var r stepResult
			if (i == 0) == loadgenFirst {
				r, err = runLoadgen(ctx, w, equal)
				ls = append(ls, r)
			} else {
				r, err = runVegeta(ctx, targets, equal)
				vs = append(vs, r)
			}
			if err != nil {
				return nil, err
			}
			env.Logf("equal rate: %s", r)
		}
	}
	mean := func(rs []stepResult, f func(stepResult) float64) float64 {
		var s float64
		for _, r := range rs {
			s += f(r)
		}
		return s / float64(len(rs))
	}
	p50 := func(r stepResult) float64 { return r.Service.P50.Seconds() }
	p99 := func(r stepResult) float64 { return r.Service.P99.Seconds() }
	p99i := func(r stepResult) float64 { return r.Latency.P99.Seconds() }

	figs := map[string]float64{
		"loadgen_max_get_per_s":        lg.maxRate(),
		"loadgen_vegeta_max_get_per_s": vg.maxRate(),
		"loadgen_equal_rate_per_s":     equal,
	}
	for name, pair := range map[string][2]float64{
		"loadgen_vs_vegeta_max_rate":           {lg.maxRate(), vg.maxRate()},
		"loadgen_vs_vegeta_p50_ratio":          {mean(ls, p50), mean(vs, p50)},
		"loadgen_vs_vegeta_p99_ratio":          {mean(ls, p99), mean(vs, p99)},
		"loadgen_vs_vegeta_p99_intended_ratio": {mean(ls, p99i), mean(vs, p99)},
	} {
		if figs[name], err = ratio(pair[0], pair[1]); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	if lc, vc := mean(ls, cpuPerRequest), mean(vs, cpuPerRequest); lc > 0 && vc > 0 {
		figs["loadgen_vs_vegeta_cpu_per_req_ratio"] = lc / vc
		figs["loadgen_cpu_us_per_req"] = lc * 1e6
	}
	if sh, ok := cpuShare(*lg.best); ok {
		figs["loadgen_gen_cpu_share_at_max"] = sh
	}
	return figs, nil
}

// benchCPAPI measures the control plane's highest sustained single-object GET and PUT rates,
// and their latencies (from each request's intended start) at half those rates.
func benchCPAPI(ctx context.Context, env benchfig.Env) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, runTimeout)
	defer cancel()
	tg, err := startTarget(ctx, env.WorkDir)
	if err != nil {
		return nil, err
	}
	defer tg.stop()
	figs := map[string]float64{}
	for _, c := range []struct {
		what, mix   string
		start, ceil float64
	}{
		{"get", "get-only", 1000, 64000},
		{"write", "update-only", 250, 16000},
	} {
		w, err := workload(ctx, env.Logf, tg.url, c.mix, cpTenants, cpNetworksPerTenant)
		if err != nil {
			return nil, err
		}
		s := newSearch("cp "+c.what, c.start, 25, c.ceil, func(ctx context.Context, r float64) (stepResult, error) { return runLoadgen(ctx, w, r) })
		if err := runSearches(ctx, env.Logf, 20*time.Second, s); err != nil {
			w.CloseIdleConnections()
			return nil, err
		}
		if s.best == nil {
			w.CloseIdleConnections()
			return nil, fmt.Errorf("cp %s: no sustained rate down to %.0f/s", c.what, s.floor)
		}
		half, err := runLoadgen(ctx, w, s.maxRate()/2)
		w.CloseIdleConnections()
		if err != nil {
			return nil, err
		}
		env.Logf("cp %s at half the max: %s", c.what, half)
		pre := "cp_api_" + c.what
		figs[pre+"_per_s"] = s.maxRate()
		figs[pre+"_p50_ms"] = float64(half.Latency.P50) / float64(time.Millisecond)
		figs[pre+"_p99_ms"] = float64(half.Latency.P99) / float64(time.Millisecond)
		if sh, ok := cpuShare(*s.best); ok {
			figs[pre+"_gen_cpu_share_at_max"] = sh
		}
		if sh, ok := cpuShare(half); ok {
			figs[pre+"_gen_cpu_share_at_half"] = sh
		}
		if half.Limited {
			env.Logf("cp %s: the half-rate step was generator-limited: %v", c.what, half.Reasons)
		}
	}
	return figs, nil
}

func cores() int { return runtime.GOMAXPROCS(0) }
