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
	// A rate is sustained with fewer than maxErrorRate errors and at least minAchieved of the
	// requested rate answered successfully.
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

func (s stepResult) sustained() bool {
	return s.Completed > 0 && float64(s.Errors) < maxErrorRate*float64(s.Completed) && s.Achieved >= minAchieved*s.Rate
}

func (s stepResult) String() string {
	verdict := "sustained"
	if !s.sustained() {
		verdict = "NOT sustained"
	}
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
	return fmt.Sprintf("%-7s %8.0f/s: %s, achieved %.0f/s, %d done, statuses %v, %d errors %v, %d missed, service p50 %s p99 %s, latency p99 %s%s%s",
		s.Gen, s.Rate, verdict, s.Achieved, s.Completed, s.Statuses, s.Errors, s.Classes, s.Missed, s.Service.P50, s.Service.P99, s.Latency.P99, gen, lim)
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

// stepSearch looks for the highest sustained rate: it multiplies a start rate by its growth
// (2 unless set) until a step fails, then bisects between the best pass and the first failure
// until they are within 10%.
// A failing first step halves the rate instead, down to a floor. A rate fails only when it
// fails twice in a row, so one hiccup of a shared machine does not end a search early.
type stepSearch struct {
	name        string
	rate        float64
	floor, ceil float64
	lo, hi      float64 // best sustained, lowest failed (0: none yet)
	best        *stepResult
	retried     bool // the current rate failed once and is being tried again
	done        bool
	growth      float64
	try         func(ctx context.Context, rate float64) (stepResult, error)
}

func newSearch(name string, start, floor, ceil float64, try func(context.Context, float64) (stepResult, error)) *stepSearch {
	return &stepSearch{name: name, rate: start, floor: floor, ceil: ceil, growth: 2, try: try}
}

// step runs the next step and updates the search.
func (s *stepSearch) step(ctx context.Context, logf func(string, ...any)) error {
	r, err := s.try(ctx, s.rate)
	if err != nil {
		return err
	}
	logf("%s", r)
	if !r.sustained() && !s.retried {
		s.retried = true
		return nil
	}
	s.retried = false
	if r.sustained() {
		s.lo = s.rate
		best := r
		s.best = &best
	} else {
		s.hi = s.rate
	}
	switch {
	case s.hi == 0:
		s.rate = math.Round(s.rate * s.growth)
		if s.rate > s.ceil {
			s.done = true
		}
	case s.lo == 0:
		s.rate /= 2
		if s.rate < s.floor {
			s.done = true
		}
	default:
		s.rate = math.Round((s.lo + s.hi) / 2)
		if (s.hi-s.lo)/s.lo < 0.1 {
			s.done = true
		}
	}
	return nil
}

// maxRate is the best sustained rate (0 if none).
func (s *stepSearch) maxRate() float64 {
	if s.best == nil {
		return 0
	}
	return s.best.Rate
}

// runSearches interleaves the searches step by step, so a change in the machine's load over
// time falls on all of them alike, until each is done or the budget is spent.
func runSearches(ctx context.Context, logf func(string, ...any), budget time.Duration, searches ...*stepSearch) error {
	deadline := time.Now().Add(budget)
	for {
		active := false
		for _, s := range searches {
			if s.done {
				continue
			}
			if time.Until(deadline) < stepDuration+settle {
				logf("%s: search budget spent at %.0f/s", s.name, s.rate)
				s.done = true
				continue
			}
			active = true
			if err := s.step(ctx, logf); err != nil {
				return err
			}
		}
		if !active {
			return nil
		}
	}
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
