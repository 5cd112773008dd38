package loadgen

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

func init() {
	mustRegister(ExecutorType{
		Name:  ConstantVUs,
		Model: ClosedModel,
		Validate: func(c ExecutorConfig) error {
			var fe fieldErrors
			if c.VUs <= 0 {
				fe.add("vus", "required: a positive number of virtual users")
			}
			if c.Duration <= 0 {
				fe.add("duration", "required: a positive duration such as 30s")
			}
			if len(c.Stages) > 0 {
				fe.add("stages", "not used by %s (ramping-vus ramps)", c.Type)
			}
			closedUnused(c, &fe)
			return fe.err()
		},
		Plan: vuPlan,
		New:  newVUs,
	})
	mustRegister(ExecutorType{
		Name:  RampingVUs,
		Model: ClosedModel,
		Validate: func(c ExecutorConfig) error {
			var fe fieldErrors
			if len(c.Stages) == 0 {
				fe.add("stages", "required: at least one stage of duration and target VUs")
			}
			if c.Duration != 0 {
				fe.add("duration", "not used by %s: the stages set the duration", c.Type)
			}
			peak := c.VUs
			for i, s := range c.Stages {
				if s.Rate != 0 {
					fe.add(stageField(i, "rate"), "not used by %s: a stage sets target vus", c.Type)
				}
				peak = max(peak, s.VUs)
			}
			if len(c.Stages) > 0 && peak == 0 {
				fe.add("stages", "every target is 0 VUs: nothing would run")
			}
			closedUnused(c, &fe)
			return fe.err()
		},
		Plan: vuPlan,
		New:  newVUs,
	})
}

func closedUnused(c ExecutorConfig, fe *fieldErrors) {
	if c.Rate != 0 {
		fe.add("rate", "not used by %s: a closed model has no arrival rate", c.Type)
	}
	if c.MaxVUs != 0 {
		fe.add("maxVUs", "not used by %s: set vus", c.Type)
	}
	if c.PreAllocatedVUs != 0 {
		fe.add("preAllocatedVUs", "not used by %s: set vus", c.Type)
	}
}

func vuStages(c ExecutorConfig) []Stage {
	if c.Type == ConstantVUs {
		return []Stage{{Duration: c.Duration, VUs: c.VUs}}
	}
	return c.Stages
}

func vuPlan(c ExecutorConfig) Plan {
	pts, peak, vus := vuSchedule(c.VUs, vuStages(c))
	return Plan{Duration: pts[len(pts)-1].At, Points: pts, MaxVUs: peak, VUSeconds: vus}
}

// vuExecutor is the closed model: VU i loops iterations while i is below the active count.
// A VU that the ramp retires finishes its current iteration first.
type vuExecutor struct {
	cfg  ExecutorConfig
	w    Workload
	o    Options
	plan Plan
}

func newVUs(c ExecutorConfig, w Workload, o Options) Executor {
	return &vuExecutor{cfg: c, w: w, o: o, plan: vuPlan(c)}
}

// vuGate wakes VUs when the active count may have changed. Whether a VU is active is decided
// from the clock and the plan, not from when the controller got round to a change, so a VU
// never starts an iteration after its time, even in the same instant.
type vuGate struct {
	mu   sync.Mutex
	cond *sync.Cond
	gen  uint64 // bumped at every change point
	done bool
}

func (g *vuGate) bump(done bool) {
	g.mu.Lock()
	g.gen++
	g.done = g.done || done
	g.mu.Unlock()
	g.cond.Broadcast()
}

// await blocks until active() is true (then true) or the run is over (then false).
func (g *vuGate) await(active func() bool) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for !g.done {
		if active() {
			return true
		}
		for gen := g.gen; gen == g.gen && !g.done; {
			g.cond.Wait()
		}
	}
	return false
}

// activeAt is the number of active VUs at offset at: the last point at or before it, and none
// once the schedule is over.
func (e *vuExecutor) activeAt(at time.Duration) int {
	pts := e.plan.Points
	if at >= e.plan.Duration {
		return 0
	}
	i := sort.Search(len(pts), func(i int) bool { return pts[i].At > at })
	if i == 0 {
		return 0
	}
	return pts[i-1].VUs
}

func (e *vuExecutor) Run(ctx context.Context, sink Sink) (Summary, error) {
	o := e.o
	rc := newRecorder(sink, o.LateThreshold)
	cpu := startCPU(o.CPU)
	iterCtx, cancelIters := context.WithCancel(ctx)
	defer cancelIters()
	g := &vuGate{}
	g.cond = sync.NewCond(&g.mu)

	start := o.Clock.Now()
	var seq, running, peak atomic.Int64
	var wg sync.WaitGroup
	for vu := 0; vu < e.plan.MaxVUs; vu++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			active := func() bool { return e.activeAt(o.Clock.Now().Sub(start)) > vu }
			for g.await(active) {
				n := seq.Add(1) - 1
				rc.started.Add(1)
				storeMax(&peak, running.Add(1))
				now := o.Clock.Now()
				runIteration(iterCtx, e.w, o.Clock, rc, vu, job{n: n, due: now})
				running.Add(-1)
			}
		}()
	}

	timer := o.Clock.NewTimer(time.Hour)
	timer.Stop()
	var runErr error
	end := start.Add(e.plan.Duration)
	for _, pt := range e.plan.Points {
		if pt.At >= e.plan.Duration {
			break
		}
		if !sleepUntil(ctx, o.Clock, timer, start.Add(pt.At)) {
			runErr = ctx.Err()
			break
		}
		g.bump(false)
	}
	if runErr == nil && !sleepUntil(ctx, o.Clock, timer, end) {
		runErr = ctx.Err()
	}
	scheduleEnd := o.Clock.Now()
	stop := func() <-chan struct{} {
		g.bump(true)
		done := make(chan struct{})
		go func() {
			wg.Wait()
			close(done)
		}()
		return done
	}
	if err := drain(ctx, o.Clock, stop, e.cfg.GracefulStop, cancelIters); err != nil && runErr == nil {
		runErr = err
	}

	s := Summary{Executor: e.cfg.Type, Model: ClosedModel, ScheduleDuration: e.plan.Duration}
	if runErr != nil {
		s.ScheduleDuration = scheduleEnd.Sub(start)
	}
	rc.finish(&s, start)
	s.PeakVUs = int(peak.Load())
	account(&s, o, cpu, max(s.Elapsed, s.ScheduleDuration), e.plan.MaxVUs)
	return s, runErr
}

// sleepUntil waits for t on the clock; false means ctx ended first.
func sleepUntil(ctx context.Context, clock Clock, timer Timer, t time.Time) bool {
	wait := t.Sub(clock.Now())
	if wait <= 0 {
		return ctx.Err() == nil
	}
	timer.Reset(wait)
	select {
	case <-timer.C():
		return true
	case <-ctx.Done():
		timer.Stop()
		return false
	}
}

// storeMax raises v to n if n is larger.
func storeMax(v *atomic.Int64, n int64) {
	for {
		cur := v.Load()
		if n <= cur || v.CompareAndSwap(cur, n) {
			return
		}
	}
}
