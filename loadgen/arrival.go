package loadgen

import (
	"context"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Names of the built-in executor types.
const (
	ConstantArrivalRate = "constant-arrival-rate"
	RampingArrivalRate  = "ramping-arrival-rate"
	ConstantVUs         = "constant-vus"
	RampingVUs          = "ramping-vus"
)

// Default VU pool sizing for arrival-rate executors: enough pre-allocated VUs for 50ms of the
// peak rate, and room for one second of it (so a target would have to answer slower than a
// second at the peak before iterations are missed), within bounds.
const (
	defaultPreAllocSeconds = 0.05
	defaultMaxVUSeconds    = 1.0
	defaultMaxVUsFloor     = 10
	defaultMaxVUsCeiling   = 5000
)

func init() {
	mustRegister(ExecutorType{
		Name:     ConstantArrivalRate,
		Model:    OpenModel,
		Defaults: arrivalDefaults,
		Validate: func(c ExecutorConfig) error {
			var fe fieldErrors
			if c.Rate <= 0 {
				fe.add("rate", "required: a positive rate such as 100/s")
			}
			if c.Duration <= 0 {
				fe.add("duration", "required: a positive duration such as 30s")
			}
			if len(c.Stages) > 0 {
				fe.add("stages", "not used by %s (ramping-arrival-rate ramps)", c.Type)
			}
			validateArrivalVUs(c, &fe)
			return fe.err()
		},
		Plan: arrivalPlan,
		New:  newArrival,
	})
	mustRegister(ExecutorType{
		Name:     RampingArrivalRate,
		Model:    OpenModel,
		Defaults: arrivalDefaults,
		Validate: func(c ExecutorConfig) error {
			var fe fieldErrors
			if len(c.Stages) == 0 {
				fe.add("stages", "required: at least one stage of duration and target rate")
			}
			if c.Duration != 0 {
				fe.add("duration", "not used by %s: the stages set the duration", c.Type)
			}
			peak := c.Rate
			for i, s := range c.Stages {
				if s.VUs != 0 {
					fe.add(stageField(i, "vus"), "not used by %s: a stage sets a target rate", c.Type)
				}
				peak = max(peak, s.Rate)
			}
			if len(c.Stages) > 0 && peak <= 0 {
				fe.add("stages", "every rate is 0: nothing would run")
			}
			validateArrivalVUs(c, &fe)
			return fe.err()
		},
		Plan: arrivalPlan,
		New:  newArrival,
	})
}

func stageField(i int, f string) string { return "stages[" + strconv.Itoa(i) + "]." + f }

func validateArrivalVUs(c ExecutorConfig, fe *fieldErrors) {
	if c.VUs != 0 {
		fe.add("vus", "not used by %s: size the VU pool with preAllocatedVUs and maxVUs", c.Type)
	}
	if c.MaxVUs < c.PreAllocatedVUs {
		fe.add("maxVUs", "%d is below preAllocatedVUs %d", c.MaxVUs, c.PreAllocatedVUs)
	}
}

// arrivalStages turns either arrival-rate config into stages of one schedule.
func arrivalStages(c ExecutorConfig) []Stage {
	if c.Type == ConstantArrivalRate {
		return []Stage{{Duration: c.Duration, Rate: c.Rate}}
	}
	return c.Stages
}

func arrivalDefaults(c ExecutorConfig) ExecutorConfig {
	peak := float64(c.Rate)
	for _, s := range c.Stages {
		peak = math.Max(peak, float64(s.Rate))
	}
	if c.PreAllocatedVUs == 0 {
		c.PreAllocatedVUs = int(math.Min(math.Max(1, math.Ceil(peak*defaultPreAllocSeconds)), defaultMaxVUsCeiling))
		if c.MaxVUs > 0 && c.PreAllocatedVUs > c.MaxVUs {
			c.PreAllocatedVUs = c.MaxVUs
		}
	}
	if c.MaxVUs == 0 {
		m := math.Min(math.Max(defaultMaxVUsFloor, math.Ceil(peak*defaultMaxVUSeconds)), defaultMaxVUsCeiling)
		c.MaxVUs = max(c.PreAllocatedVUs, int(m))
	}
	return c
}

// arrivalPlan describes the schedule; Rate is the constant rate or the ramp's start.
func arrivalPlan(c ExecutorConfig) Plan {
	s := newArrivalSchedule(c.Rate, arrivalStages(c))
	return Plan{
		Duration:           s.dur,
		Points:             s.points(),
		ExpectedIterations: s.count(),
		PeakRate:           s.peak(),
		PreAllocatedVUs:    c.PreAllocatedVUs,
		MaxVUs:             c.MaxVUs,
	}
}

// arrivalExecutor is the open model: iteration i starts when the schedule says, on an idle VU,
// on a new VU while fewer than MaxVUs run, or not at all (missed).
type arrivalExecutor struct {
	cfg   ExecutorConfig
	w     Workload
	o     Options
	sched *arrivalSchedule
}

func newArrival(c ExecutorConfig, w Workload, o Options) Executor {
	return &arrivalExecutor{cfg: c, w: w, o: o, sched: newArrivalSchedule(c.Rate, arrivalStages(c))}
}

type job struct {
	n   int64
	due time.Time
}

func (e *arrivalExecutor) Run(ctx context.Context, sink Sink) (Summary, error) {
	o := e.o
	rc := newRecorder(sink, o.LateThreshold)
	cpu := startCPU(o.CPU)
	iterCtx, cancelIters := context.WithCancel(ctx)
	defer cancelIters()
	start := o.Clock.Now()
	pool := newVUPool(e.cfg.PreAllocatedVUs, e.cfg.MaxVUs, func(vu int, j job) {
		runIteration(iterCtx, e.w, o.Clock, rc, vu, j)
	})

	planned := e.sched.count()
	cur := cursor{s: e.sched}
	timer := o.Clock.NewTimer(time.Hour)
	timer.Stop()
	var runErr error
	for i := int64(0); i < planned; i++ {
		due := start.Add(cur.at(i))
		if !sleepUntil(ctx, o.Clock, timer, due) {
			runErr = ctx.Err()
			break
		}
		if pool.dispatch(job{n: i, due: due}) {
			rc.started.Add(1)
		} else {
			rc.missed.Add(1)
		}
	}
	scheduleEnd := o.Clock.Now()
	o.Logger.Debug("schedule done", "executor", e.cfg.Type, "started", rc.started.Load(), "missed", rc.missed.Load())
	if err := drain(ctx, o.Clock, pool.close, e.cfg.GracefulStop, cancelIters); err != nil && runErr == nil {
		runErr = err
	}

	s := Summary{Executor: e.cfg.Type, Model: OpenModel, ScheduleDuration: e.sched.dur, Planned: planned}
	if runErr != nil {
		s.ScheduleDuration = scheduleEnd.Sub(start)
	}
	rc.finish(&s, start)
	s.PeakVUs = pool.peak()
	account(&s, o, cpu, max(s.Elapsed, s.ScheduleDuration), e.cfg.MaxVUs)
	return s, runErr
}

// drain ends the run: stop hands out the last work and returns a channel closed when every VU
// has finished; in-flight iterations get grace to finish before they are interrupted.
func drain(ctx context.Context, clock Clock, stop func() <-chan struct{}, grace time.Duration, interrupt func()) error {
	done := stop()
	t := clock.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C():
		interrupt()
	case <-ctx.Done():
		interrupt()
		<-done
		return ctx.Err()
	}
	<-done
	return nil
}

// runIteration runs one iteration on VU vu and records it.
func runIteration(ctx context.Context, w Workload, clock Clock, rc *recorder, vu int, j job) {
	start := clock.Now()
	out := w.Iterate(ctx, Iteration{N: j.n, VU: vu, Intended: j.due})
	end := clock.Now()
	class := out.Class
	if class == ClassOK {
		class = Classify(out.Status, out.Err)
	}
	r := Result{
		Op: out.Op, N: j.n, VU: vu, Intended: j.due, Start: start, End: end,
		Status: out.Status, Class: class, Err: out.Err, Detail: out.Detail, BytesIn: out.BytesIn, BytesOut: out.BytesOut,
		Interrupt: class != ClassOK && ctx.Err() != nil,
	}
	rc.record(&r)
}

// vuPool runs jobs on a bounded, growing set of VU goroutines. dispatch is called from one
// goroutine only (the scheduler).
type vuPool struct {
	work    chan job
	idle    atomic.Int64 // VUs waiting for work that no dispatch has claimed yet
	started int          // VUs started; only the scheduler touches it
	maxVUs  int
	run     func(vu int, j job)
	wg      sync.WaitGroup
	peakVUs atomic.Int64
}

func newVUPool(pre, maxVUs int, run func(vu int, j job)) *vuPool {
	// The buffer holds at most one claimed job per idle VU, so a send never blocks.
	p := &vuPool{work: make(chan job, maxVUs), maxVUs: maxVUs, run: run}
	p.idle.Store(int64(pre))
	for ; p.started < pre; p.started++ {
		p.wg.Add(1)
		go p.loop(p.started, nil)
	}
	p.peakVUs.Store(int64(pre))
	return p
}

// dispatch hands j to an idle VU or a new one; false means every one of maxVUs is busy.
func (p *vuPool) dispatch(j job) bool {
	for {
		n := p.idle.Load()
		if n == 0 {
			break
		}
		if p.idle.CompareAndSwap(n, n-1) {
			p.work <- j
			return true
		}
	}
	if p.started >= p.maxVUs {
		return false
	}
	vu := p.started
	p.started++
	p.peakVUs.Store(int64(p.started))
	p.wg.Add(1)
	go p.loop(vu, &j)
	return true
}

func (p *vuPool) loop(vu int, first *job) {
	defer p.wg.Done()
	if first != nil {
		p.run(vu, *first)
		p.idle.Add(1)
	}
	for j := range p.work {
		p.run(vu, j)
		p.idle.Add(1)
	}
}

// close stops handing out work; the returned channel closes when every VU has finished.
func (p *vuPool) close() <-chan struct{} {
	close(p.work)
	done := make(chan struct{})
	go func() {
		p.wg.Wait()
		close(done)
	}()
	return done
}

func (p *vuPool) peak() int { return int(p.peakVUs.Load()) }
