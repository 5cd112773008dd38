// Package loadbench registers the load generator's benchmarks: loadgen against vegeta (as a
// library) at the same rates on the same target, and the reference control plane's API
// capacity (highest sustained GET and write rates, and their latencies at half those rates).
//
// Both run the control plane as a `dsnscale cp serve` process of its own (in this process when
// no binary is given, as in tests), on the same cores as the generator. Each reports the
// generator's own CPU share, measured by labelling the generator's goroutines and splitting
// this process's CPU time by a CPU profile's samples, and the capacity benchmark the server
// process's CPU per request.
package loadbench

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"runtime"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/dsnscale/dsnscale/controlplane/client"
	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/internal/benchfig"
	"github.com/dsnscale/dsnscale/internal/ratesearch"
	"github.com/dsnscale/dsnscale/loadgen/mix"
	"github.com/dsnscale/dsnscale/loadgen/northbound"
)

// runTimeout bounds one run of a benchmark.
const runTimeout = 300 * time.Second

// cpSearchBudget bounds the interleaved rate searches of one operation of the capacity
// benchmark, both modes together, and vegetaSearchBudget those of loadgen and vegeta: room for
// about eight steps of each search, more than a search that starts near the limit needs. A
// search the budget stops fails the benchmark rather than giving a figure.
const (
	cpSearchBudget     = 75 * time.Second
	vegetaSearchBudget = 90 * time.Second
)

// secureSuffix ends the names of the figures measured with security on. The secure target's
// rate limits are raised far above what the machine serves (see startTarget), so that the figure
// is the server's capacity and what limiting costs, not where the limits are set; the name says
// so, since `cp serve`'s defaults would cap one user at --rate-per-user.
const secureSuffix = "_secure_limits_raised"

// saturationVUs is how many virtual users, back to back, find where a search starts.
const saturationVUs = 64

func init() {
	benchfig.Register(benchfig.Benchmark{Name: "loadgen-vs-vegeta", Area: "loadgen", Run: benchVsVegeta, Figures: []string{
		"loadgen_max_get_per_s", "loadgen_max_get_failed_per_s", "loadgen_vegeta_max_get_per_s", "loadgen_vegeta_max_get_failed_per_s",
		"loadgen_equal_rate_per_s", "loadgen_vs_vegeta_max_rate", "loadgen_vs_vegeta_p50_ratio", "loadgen_vs_vegeta_p99_ratio",
		"loadgen_vs_vegeta_p99_intended_ratio",
	}})
	benchfig.Register(benchfig.Benchmark{Name: "cp-api", Area: "cp", Run: benchCPAPI, Figures: cpAPIFigures()})
}

// cpAPIFigures are the figures every run of the capacity benchmark measures.
func cpAPIFigures() []string {
	var out []string
	for _, op := range []string{"get", "write"} {
		for _, suf := range []string{"", secureSuffix} {
			for _, what := range []string{"_per_s", "_failed_per_s", "_p50_ms", "_p99_ms"} {
				out = append(out, "cp_api_"+op+what+suf)
			}
		}
		out = append(out, "cp_api_"+op+secureSuffix+"_ratio")
	}
	return out
}

// cpTenants and cpNetworksPerTenant size the capacity benchmark's population: enough networks
// that writes at the highest rates never run out of idle objects to update.
const (
	cpTenants           = 20
	cpNetworksPerTenant = 200
)

// maxConnsPerTarget bounds the connections the capacity benchmark's generator keeps to a target,
// as an API client's connection pool does: beyond it requests wait for a connection (and their
// latency, counted from their intended start, says so) instead of opening more. Without a bound a
// slow moment makes every waiting virtual user open a connection of its own, and with TLS that
// is a handshake storm the generator inflicts on itself and the server on the same two cores.
const maxConnsPerTarget = 256

// capacityClient is the HTTP client of the capacity benchmark's workloads against tg.
func capacityClient(tg *target) (*http.Client, error) {
	tr := northbound.NewTransport()
	tr.MaxConnsPerHost = maxConnsPerTarget
	if tg.auth.CA != nil {
		tc, err := client.TLSConfig(tg.auth.CA)
		if err != nil {
			return nil, err
		}
		tc.ClientSessionCache = tr.TLSClientConfig.ClientSessionCache
		tr.TLSClientConfig = tc
	}
	return &http.Client{Transport: tr, Timeout: requestTimeout}, nil
}

// workload sets up a built-in mix against a target; tenants and networks, when not 0, resize
// its population; hc, when not nil, sends the requests.
func workload(ctx context.Context, logf func(string, ...any), tg *target, mixName string, tenants, networks int, hc ...*http.Client) (*northbound.Workload, error) {
	m, err := mix.Builtin(mixName)
	if err != nil {
		return nil, err
	}
	m.Timeout = requestTimeout
	if tenants > 0 {
		m.Population.Tenants, m.Population.NetworksPerTenant = tenants, networks
	}
	cfg := tg.auth
	cfg.Mix = m
	if len(hc) > 0 {
		cfg.Client = hc[0]
	}
	w, err := northbound.New(cfg)
	if err != nil {
		return nil, err
	}
	st, err := w.Setup(ctx)
	if err != nil {
		return nil, err
	}
	logf("%s (%s): set up %d objects (%d created, %d adopted) in %s", mixName, tg.label(), st.Created+st.Adopted, st.Created, st.Adopted, st.Duration.Round(time.Millisecond))
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

// serverCPUPerRequest is the CPU, in microseconds, that the target spent per completed request
// of a step: its process's, or, when it shares this one, all but the generator's share.
func serverCPUPerRequest(s stepResult) (float64, bool) {
	if s.Completed == 0 {
		return 0, false
	}
	cpu := s.ServerCPU
	if cpu == 0 {
		if !s.CPU.Known {
			return 0, false
		}
		cpu = s.CPU.Process - s.CPU.Generator
	}
	return cpu.Seconds() / float64(s.Completed) * 1e6, true
}

// measured runs a step against tg and adds the CPU time tg's process used meanwhile.
func measured(tg *target, step func() (stepResult, error)) (stepResult, error) {
	if tg.cpu == nil {
		return step()
	}
	before, err := tg.cpu()
	if err != nil {
		return stepResult{}, err
	}
	res, err := step()
	if err != nil {
		return res, err
	}
	after, err := tg.cpu()
	res.ServerCPU = after - before
	return res, err
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
	tg, err := startTarget(ctx, env.Binary, env.WorkDir, false)
	if err != nil {
		return nil, err
	}
	defer tg.stop()
	w, err := workload(ctx, env.Logf, tg, "get-only", 0, 0)
	if err != nil {
		return nil, err
	}
	defer w.CloseIdleConnections()
	var targets []vegeta.Target
	for _, u := range w.ItemURLs(model.KindNetwork) {
		targets = append(targets, vegeta.Target{Method: "GET", URL: u, Header: w.Header()})
	}
	env.Logf("loadgen vs vegeta: %d GET targets at %s", len(targets), tg.url)

	// Both searches judge their steps by the same rule, service p99 included (vegeta has no
	// intended start), so that the ratio compares like with like.
	lg, err := newSearch("loadgen", 1000, 100, 64000, 2, serviceP99, env.Logf,
		func(ctx context.Context, r float64) (stepResult, error) { return runLoadgen(ctx, w, r, cold) })
	if err != nil {
		return nil, err
	}
	vg, err := newSearch("vegeta", 1000, 100, 64000, 2, serviceP99, env.Logf,
		func(ctx context.Context, r float64) (stepResult, error) { return runVegeta(ctx, targets, r) })
	if err != nil {
		return nil, err
	}
	if err := runSearches(ctx, env.Logf, vegetaSearchBudget, lg, vg); err != nil {
		return nil, err
	}
	lgB, lgBest, err := bracketOf(lg)
	if err != nil {
		return nil, err
	}
	vgB, _, err := bracketOf(vg)
	if err != nil {
		return nil, err
	}
	env.Logf("highest held rate: loadgen %.0f/s (failed %.0f/s), vegeta %.0f/s (failed %.0f/s)", lgB.Held, lgB.Failed, vgB.Held, vgB.Failed)

	// Latency at an equal rate that both sustain with room to spare, in alternating order.
	equal := float64(int(min(lgB.Held, vgB.Held) / 2))
	var ls, vs []stepResult
	for _, loadgenFirst := range []bool{true, false} {
		for i := 0; i < 2; i++ {
			var r stepResult
			if (i == 0) == loadgenFirst {
				r, err = runLoadgen(ctx, w, equal, cold)
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
		"loadgen_max_get_per_s":               lgB.Held,
		"loadgen_max_get_failed_per_s":        lgB.Failed,
		"loadgen_vegeta_max_get_per_s":        vgB.Held,
		"loadgen_vegeta_max_get_failed_per_s": vgB.Failed,
		"loadgen_equal_rate_per_s":            equal,
	}
	for name, pair := range map[string][2]float64{
		"loadgen_vs_vegeta_max_rate":           {lgB.Held, vgB.Held},
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
	if sh, ok := cpuShare(lgBest); ok {
		figs["loadgen_gen_cpu_share_at_max"] = sh
	}
	return figs, nil
}

// benchCPAPI measures the control plane's highest sustained single-object GET and PUT rates,
// and their latencies (from each request's intended start) at half those rates, twice: with
// security off (cp_api_*) and on (cp_api_*_secure_limits_raised: TLS, authentication, RBAC, rate
// limiting with its limits raised above the capacity, and the durable audit, indexed into search
// inside each measured step), and their ratios (cp_api_get_secure_limits_raised_ratio, ...). The two
// control planes run side by side and their searches are interleaved step by step, so that a
// change in the machine's load falls on both alike.
func benchCPAPI(ctx context.Context, env benchfig.Env) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, runTimeout)
	defer cancel()
	var targets []*target
	defer func() {
		for _, tg := range targets {
			tg.stop()
		}
	}()
	for _, secure := range []bool{false, true} {
		tg, err := startTarget(ctx, env.Binary, env.WorkDir, secure)
		if err != nil {
			return nil, err
		}
		targets = append(targets, tg)
	}
	figs := map[string]float64{}
	var dropped, droppedBase uint64
	for _, c := range []struct {
		what, mix   string
		start, ceil float64
	}{
		// The searches start at four fifths of the saturated rate, or at these floors.
		{"get", "get-only", 1000, 64000},
		{"write", "update-only", 250, 16000},
	} {
		var searches []*ratesearch.Search
		var loads []*northbound.Workload
		for _, tg := range targets {
			hc, err := capacityClient(tg)
			if err != nil {
				return nil, err
			}
			w, err := workload(ctx, env.Logf, tg, c.mix, cpTenants, cpNetworksPerTenant, hc)
			if err != nil {
				return nil, err
			}
			defer w.CloseIdleConnections()
			loads = append(loads, w)
			// A step of virtual users back to back says roughly where the target's limit is, so
			// that the search starts near it and spends its steps narrowing it down.
			sat, err := saturate(ctx, w, saturationVUs)
			if err != nil {
				return nil, err
			}
			tg.auditDropped(ctx, &droppedBase)
			env.Logf("cp %s (%s) saturated by %d users: %.0f/s", c.what, tg.label(), saturationVUs, sat.Achieved)
			start := math.Min(c.ceil, math.Max(c.start, math.Round(sat.Achieved*0.8)))
			search, err := newSearch("cp "+c.what+" "+tg.label(), start, 25, c.ceil, 1.25, intendedP99, env.Logf,
				func(ctx context.Context, r float64) (stepResult, error) {
					res, err := measured(tg, func() (stepResult, error) { return runLoadgen(ctx, w, r, warm) })
					if d := tg.auditDropped(ctx, &droppedBase); d > 0 {
						dropped += d
						env.Logf("cp %s (%s) at %.0f/s: %d audit records dropped: the search index did not keep up", c.what, tg.label(), r, d)
					}
					return res, err
				})
			if err != nil {
				return nil, err
			}
			searches = append(searches, search)
		}
		if err := runSearches(ctx, env.Logf, cpSearchBudget, searches...); err != nil {
			return nil, err
		}
		for i, tg := range targets {
			b, best, err := bracketOf(searches[i])
			if err != nil {
				return nil, err
			}
			half, err := runLoadgen(ctx, loads[i], math.Round(b.Held/2), warm)
			if err != nil {
				return nil, err
			}
			env.Logf("cp %s (%s) at half the max: %s", c.what, tg.label(), half)
			pre, suf := "cp_api_"+c.what, ""
			if tg.secure {
				suf = secureSuffix
			}
			figs[pre+"_per_s"+suf] = b.Held
			figs[pre+"_failed_per_s"+suf] = b.Failed
			figs[pre+"_p50_ms"+suf] = float64(half.Latency.P50) / float64(time.Millisecond)
			figs[pre+"_p99_ms"+suf] = float64(half.Latency.P99) / float64(time.Millisecond)
			if sh, ok := cpuShare(best); ok {
				figs[pre+"_gen_cpu_share_at_max"+suf] = sh
			}
			if us, ok := serverCPUPerRequest(best); ok {
				figs[pre+"_server_cpu_us"+suf] = us
			}
			if sh, ok := cpuShare(half); ok {
				figs[pre+"_gen_cpu_share_at_half"+suf] = sh
			}
			if half.Limited {
				env.Logf("cp %s (%s): the half-rate step was generator-limited: %v", c.what, tg.label(), half.Reasons)
			}
		}
		r, err := ratio(figs["cp_api_"+c.what+"_per_s"+secureSuffix], figs["cp_api_"+c.what+"_per_s"])
		if err != nil {
			return nil, err
		}
		figs["cp_api_"+c.what+secureSuffix+"_ratio"] = r
		// What the server alone spends per request, without the generator's share: the ratio
		// of capacities on cores of the server's own, which a machine shared with the
		// generator (whose TLS is then the client's cost) only approximates.
		if in, sec := figs["cp_api_"+c.what+"_server_cpu_us"], figs["cp_api_"+c.what+"_server_cpu_us"+secureSuffix]; in > 0 && sec > 0 {
			figs["cp_api_"+c.what+secureSuffix+"_server_cpu_ratio"] = in / sec
		}
		figs["cp_api_audit_dropped"+secureSuffix] = float64(dropped)
		env.Logf("cp %s: %.0f/s secure, %.0f/s insecure: ratio %.2f", c.what, figs["cp_api_"+c.what+"_per_s"+secureSuffix], figs["cp_api_"+c.what+"_per_s"], r)
	}
	return figs, nil
}

func cores() int { return runtime.GOMAXPROCS(0) }
