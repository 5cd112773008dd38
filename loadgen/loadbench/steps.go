package loadbench

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"runtime"
	"strings"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/dsnscale/dsnscale/internal/ratesearch"
	"github.com/dsnscale/dsnscale/loadgen"
	"github.com/dsnscale/dsnscale/loadgen/northbound"
)

// Step parameters: each step holds a rate for stepDuration; in-flight requests then get
// stepGrace, and a request times out after requestTimeout.
const (
	stepDuration   = 2 * time.Second
	stepGrace      = 2 * time.Second
	requestTimeout = 2 * time.Second
	settle         = 200 * time.Millisecond
	// A step holds with fewer than maxErrorRate errors and at least minAchieved of the
	// requested rate answered successfully (and a p99 within latencyBound, below).
	maxErrorRate = 0.01
	minAchieved  = 0.95
)

// stepResult is one generator holding one rate for one step.
type stepResult struct {
	Gen       string
	Rate      float64
	Completed int64
	Errors    int64
	Classes   map[loadgen.ErrorClass]int64
	Statuses  map[int]int64
	Missed    int64
	Elapsed   time.Duration
	Achieved  float64 // successful responses per second of Elapsed
	// Service runs from each request's actual start (what vegeta measures); Latency from its
	// intended start (loadgen's headline; equal to Service for vegeta, which has no schedule).
	Service, Latency loadgen.Quantiles
	CPU              cpuSplit
	// ServerCPU is the CPU time the target used during the step, when it runs as a process of
	// its own (0 otherwise).
	ServerCPU time.Duration
	Limited   bool
	Reasons   []string
}

func (s stepResult) String() string {
	gen := ""
	if s.CPU.Known {
		gen = fmt.Sprintf(", generator CPU %.2fs of %.2fs", s.CPU.Generator.Seconds(), s.CPU.Process.Seconds())
	}
	if s.ServerCPU > 0 {
		gen += fmt.Sprintf(", server CPU %.2fs", s.ServerCPU.Seconds())
	}
	lim := ""
	if s.Limited {
		lim = fmt.Sprintf(" (generator-limited: %v)", s.Reasons)
	}
	return fmt.Sprintf("%-7s %8.0f/s: achieved %.0f/s, %d done, statuses %v, %d errors %v, %d missed, service p50 %s p99 %s, latency p99 %s%s%s",
		s.Gen, s.Rate, s.Achieved, s.Completed, s.Statuses, s.Errors, s.Classes, s.Missed, s.Service.P50, s.Service.P99, s.Latency.P99, gen, lim)
}

// maxVUs is the VU (or vegeta worker) cap at a rate: one second of it, as loadgen defaults.
func maxVUs(rate float64) int {
	return int(math.Min(5000, math.Max(10, math.Ceil(rate))))
}

func settleDown() {
	runtime.GC()
	time.Sleep(settle)
}

// Connection reuse across steps.
const (
	// cold: each step starts without connections, as vegeta's steps do, so that the comparison
	// with vegeta is like for like.
	cold = true
	// warm: a step reuses the connections the previous one left, as a long-lived API client
	// does; without it a capacity step over TLS would spend much of its time on handshakes.
	warm = false
)

// runLoadgen holds rate with loadgen's constant-arrival-rate executor.
func runLoadgen(ctx context.Context, w *northbound.Workload, rate float64, fresh bool) (stepResult, error) {
	settleDown()
	if fresh {
		defer w.CloseIdleConnections()
	}
	cfg := loadgen.ExecutorConfig{Rate: loadgen.Rate(rate), Duration: stepDuration, GracefulStop: stepGrace, MaxVUs: maxVUs(rate)}
	return runExecutor(ctx, w, cfg, rate)
}

// saturate runs vus virtual users back to back for a step and returns the rate they achieved:
// roughly what the target serves at most, from which a rate search can start close.
func saturate(ctx context.Context, w *northbound.Workload, vus int) (stepResult, error) {
	settleDown()
	cfg := loadgen.ExecutorConfig{Type: loadgen.ConstantVUs, VUs: vus, Duration: stepDuration, GracefulStop: stepGrace}
	return runExecutor(ctx, w, cfg, 0)
}

// runExecutor runs one step of cfg; rate is what the step asks for (0: as fast as it goes).
func runExecutor(ctx context.Context, w *northbound.Workload, cfg loadgen.ExecutorConfig, rate float64) (stepResult, error) {
	ex, err := loadgen.New(cfg, w, loadgen.Options{})
	if err != nil {
		return stepResult{}, err
	}
	var sum loadgen.Summary
	var runErr error
	cpu := withGeneratorCPU(ctx, func(ctx context.Context) { sum, runErr = ex.Run(ctx, nil) })
	if runErr != nil {
		return stepResult{}, runErr
	}
	el := max(sum.Elapsed, stepDuration)
	return stepResult{
		Gen: "loadgen", Rate: rate, Completed: sum.Completed, Errors: sum.Errors, Classes: sum.ErrorsByClass, Statuses: sum.Statuses, Missed: sum.Missed,
		Elapsed: el, Achieved: float64(sum.Completed-sum.Errors) / el.Seconds(),
		Service: sum.ServiceTime, Latency: sum.Latency, CPU: cpu,
		Limited: sum.GeneratorLimited, Reasons: sum.LimitReasons,
	}, nil
}

// runVegeta holds rate with vegeta's attacker, as a library, against the same targets.
func runVegeta(ctx context.Context, targets []vegeta.Target, rate float64) (stepResult, error) {
	settleDown()
	// vegeta's own default transport, but ours, so its connections can be closed after the step
	// instead of piling up across steps.
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: vegeta.DefaultLocalAddr.IP}, KeepAlive: 30 * time.Second}
	tr := &http.Transport{DialContext: dialer.DialContext, TLSClientConfig: vegeta.DefaultTLSConfig,
		MaxIdleConnsPerHost: vegeta.DefaultConnections, MaxConnsPerHost: vegeta.DefaultMaxConnections}
	defer tr.CloseIdleConnections()
	atk := vegeta.NewAttacker(vegeta.Client(&http.Client{Transport: tr}), vegeta.Timeout(requestTimeout),
		vegeta.MaxWorkers(uint64(maxVUs(rate))), vegeta.KeepAlive(true))
	h := hdr.New(1, int64(10*time.Minute/time.Microsecond), 3)
	res := stepResult{Gen: "vegeta", Rate: rate, Classes: map[loadgen.ErrorClass]int64{}, Statuses: map[int]int64{}}
	var lastEnd time.Time
	start := time.Now()
	stop := context.AfterFunc(ctx, func() { atk.Stop() })
	defer stop()
	cpu := withGeneratorCPU(ctx, func(context.Context) {
		pacer := vegeta.Rate{Freq: int(math.Round(rate)), Per: time.Second}
		for r := range atk.Attack(vegeta.NewStaticTargeter(targets...), pacer, stepDuration, "bench") {
			res.Completed++
			if r.Code != 0 {
				res.Statuses[int(r.Code)]++
			}
			if r.Error != "" || r.Code < 200 || r.Code >= 300 {
				res.Errors++
				res.Classes[vegetaClass(r)]++
			}
			us := max(1, min(r.Latency.Microseconds(), h.HighestTrackableValue()))
			_ = h.RecordValue(us)
			if end := r.Timestamp.Add(r.Latency); end.After(lastEnd) {
				lastEnd = end
			}
		}
	})
	if err := ctx.Err(); err != nil {
		return res, err
	}
	res.CPU = cpu
	res.Elapsed = max(lastEnd.Sub(start), stepDuration)
	res.Achieved = float64(res.Completed-res.Errors) / res.Elapsed.Seconds()
	res.Service = quantiles(h)
	res.Latency = res.Service
	return res, nil
}

func quantiles(h *hdr.Histogram) loadgen.Quantiles {
	if h.TotalCount() == 0 {
		return loadgen.Quantiles{}
	}
	us := func(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
	return loadgen.Quantiles{
		Count: h.TotalCount(), Mean: time.Duration(h.Mean() * float64(time.Microsecond)),
		P50: us(h.ValueAtQuantile(50)), P90: us(h.ValueAtQuantile(90)), P99: us(h.ValueAtQuantile(99)),
		P999: us(h.ValueAtQuantile(99.9)), Max: us(h.Max()),
	}
}

// The rate searches' rule: a rate holds when one step at it holds (package ratesearch):
// fewer than maxErrorRate errors, minAchieved of the rate answered, and a p99 within
// latencyBound. Each search runs until its bracket is within searchResolution.
const (
	latencyBound     = 500 * time.Millisecond
	searchResolution = 0.1
)

// criteria is the one rule every search of this package holds its steps to.
var criteria = ratesearch.Criteria{MaxErrorRate: maxErrorRate, MinAchieved: minAchieved, MaxP99: latencyBound}

// stepCost is the longest one step takes, for the searches' time budget.
const stepCost = stepDuration + stepGrace + settle

// p99Of picks the p99 a search judges a step by.
type p99Of func(stepResult) time.Duration

// Which p99 the searches judge by: the latency from each request's intended start (loadgen's
// headline, which counts the time a request waited for the generator), or the service time
// from its actual start (all vegeta measures, so the comparison with it uses it for both).
var (
	intendedP99 p99Of = func(r stepResult) time.Duration { return r.Latency.P99 }
	serviceP99  p99Of = func(r stepResult) time.Duration { return r.Service.P99 }
)

// newSearch makes a rate search that grows its rate by growth from start until a step fails,
// then bisects to searchResolution; try runs one step, logf gets each step's line.
func newSearch(name string, start, floor, ceil, growth float64, p99 p99Of, logf func(string, ...any),
	try func(ctx context.Context, rate float64) (stepResult, error)) (*ratesearch.Search, error) {
	cfg := ratesearch.Config{Start: start, Floor: floor, Ceil: ceil, Growth: growth, Resolution: searchResolution, Criteria: criteria}
	return ratesearch.New(name, cfg, func(ctx context.Context, rate float64) (ratesearch.Outcome, error) {
		r, err := try(ctx, rate)
		if err != nil {
			return ratesearch.Outcome{}, err
		}
		logf("%s", r)
		return ratesearch.Outcome{Rate: rate, Requests: r.Completed, Errors: r.Errors, Achieved: r.Achieved, P99: p99(r), Detail: r}, nil
	})
}

// runSearches interleaves the searches until each has a bracket or budget is spent; a search
// the budget stopped has an error for a result, not a figure.
func runSearches(ctx context.Context, logf func(string, ...any), budget time.Duration, searches ...*ratesearch.Search) error {
	return ratesearch.Run(ctx, ratesearch.Budget{Until: time.Now().Add(budget), StepCost: stepCost}, logf, searches...)
}

// bracketOf is a finished search's bracket and the step that held at its held rate.
func bracketOf(s *ratesearch.Search) (ratesearch.Bracket, stepResult, error) {
	b, err := s.Result()
	if err != nil {
		return b, stepResult{}, fmt.Errorf("%w (a rate holds when one %s step holds: %s)", err, stepDuration, criteria)
	}
	return b, b.HeldOutcome.Detail.(stepResult), nil
}

// vegetaClass classes a failed vegeta result like loadgen classes its own: by status, else by
// the error text (vegeta keeps only the text).
func vegetaClass(r *vegeta.Result) loadgen.ErrorClass {
	if c := loadgen.Classify(int(r.Code), nil); r.Code != 0 && c != loadgen.ClassOK {
		return c
	}
	switch e := r.Error; {
	case strings.Contains(e, "Timeout"), strings.Contains(e, "deadline exceeded"):
		return loadgen.ClassTimeout
	case strings.Contains(e, "connection"), strings.Contains(e, "EOF"), strings.Contains(e, "broken pipe"):
		return loadgen.ClassConnection
	}
	return loadgen.ClassOther
}
