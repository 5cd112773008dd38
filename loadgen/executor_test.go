package loadgen

import (
	"context"
	"errors"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// noCPU keeps real CPU time out of runs on virtual time.
func noCPU() (time.Duration, error) { return 0, nil }

// sleepWork is a workload whose iteration n takes dur(n), or until ctx ends.
func sleepWork(dur func(n int64) time.Duration) WorkloadFunc {
	return func(ctx context.Context, it Iteration) Outcome {
		select {
		case <-time.After(dur(it.N)):
			return Outcome{Op: "sleep", Status: 200}
		case <-ctx.Done():
			return Outcome{Op: "sleep", Err: ctx.Err()}
		}
	}
}

// collect is a sink that keeps every result.
type collect struct {
	mu  sync.Mutex
	res []Result
}

func (c *collect) Record(r *Result) {
	c.mu.Lock()
	c.res = append(c.res, *r)
	c.mu.Unlock()
}

func (c *collect) sorted() []Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := append([]Result(nil), c.res...)
	sort.Slice(out, func(i, j int) bool { return out[i].N < out[j].N })
	return out
}

// approx checks a histogram quantile: HDR keeps 3 significant digits.
func approx(t *testing.T, want, got time.Duration) {
	t.Helper()
	assert.InEpsilon(t, float64(want), float64(got), 0.001, "want %s, got %s", want, got)
}

func run(t *testing.T, cfg ExecutorConfig, w Workload, o Options, sink Sink) Summary {
	t.Helper()
	if o.CPU == nil {
		o.CPU = noCPU
	}
	ex, err := New(cfg, w, o)
	require.NoError(t, err)
	s, err := ex.Run(t.Context(), sink)
	require.NoError(t, err)
	return s
}

func TestOpenModelKeepsScheduleWhenRequestsStall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		stalled := func(n int64) bool { return n >= 5 && n < 10 }
		w := sleepWork(func(n int64) time.Duration {
			if stalled(n) {
				return 3 * time.Second
			}
			return 50 * time.Millisecond
		})
		var c collect
		s := run(t, ExecutorConfig{Rate: 10, Duration: 2 * time.Second, MaxVUs: 50}, w, Options{}, &c)

		assert.Equal(t, int64(20), s.Planned)
		assert.Equal(t, int64(20), s.Started)
		assert.Equal(t, int64(20), s.Completed)
		assert.Zero(t, s.Missed)
		assert.False(t, s.GeneratorLimited, s.LimitReasons)
		res := c.sorted()
		require.Len(t, res, 20)
		for i, r := range res {
			due := start.Add(time.Duration(i) * 100 * time.Millisecond)
			assert.Equal(t, due, r.Intended, "iteration %d due on schedule", i)
			assert.Equal(t, due, r.Start, "iteration %d started on schedule despite the stall", i)
			want := 50 * time.Millisecond
			if stalled(int64(i)) {
				want = 3 * time.Second
			}
			assert.Equal(t, want, r.Latency(), "iteration %d", i) // exact: from the results, not a histogram
		}
		approx(t, 50*time.Millisecond, s.Latency.P50)
		approx(t, 3*time.Second, s.Latency.Max)
		assert.Equal(t, 3*time.Second+900*time.Millisecond, s.Elapsed) // iteration 9 due at 0.9s ends at 3.9s
		assert.Equal(t, int64(20), s.Ops["sleep"].Count)
	})
}

// stallClock delays every timer that would fire in [from, to) until to, like a generator
// process descheduled for that long.
type stallClock struct{ from, to time.Time }

func (c stallClock) Now() time.Time { return time.Now() }

func (c stallClock) NewTimer(d time.Duration) Timer {
	t := &stallTimer{c: c, t: time.NewTimer(time.Hour)}
	t.Reset(d)
	return t
}

type stallTimer struct {
	c stallClock
	t *time.Timer
}

func (t *stallTimer) C() <-chan time.Time { return t.t.C }
func (t *stallTimer) Stop() bool          { return t.t.Stop() }
func (t *stallTimer) Reset(d time.Duration) bool {
	now := time.Now()
	if at := now.Add(d); !at.Before(t.c.from) && at.Before(t.c.to) {
		d = t.c.to.Sub(now)
	}
	return t.t.Reset(d)
}

func TestIntendedStartLatencyIncludesGeneratorStall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		clock := stallClock{from: start.Add(450 * time.Millisecond), to: start.Add(1450 * time.Millisecond)}
		var c collect
		s := run(t, ExecutorConfig{Rate: 10, Duration: 2 * time.Second, MaxVUs: 50},
			sleepWork(func(int64) time.Duration { return 50 * time.Millisecond }), Options{Clock: clock}, &c)

		res := c.sorted()
		require.Len(t, res, 20)
		// Iterations 5..14 were due during the stall and all started at its end.
		for i := 5; i < 15; i++ {
			r := res[i]
			assert.Equal(t, clock.to, r.Start, "iteration %d", i)
			assert.Equal(t, 50*time.Millisecond, r.ServiceTime())
			assert.Equal(t, clock.to.Sub(r.Intended)+50*time.Millisecond, r.Latency(), "iteration %d latency counts from its due time", i)
		}
		assert.Equal(t, int64(10), s.LateStarts)
		assert.Equal(t, 950*time.Millisecond, s.MaxLateness)
		// The service time alone would hide the stall; the latency does not.
		approx(t, 50*time.Millisecond, s.ServiceTime.Max)
		approx(t, time.Second, s.Latency.Max)
		assert.True(t, s.GeneratorLimited)
		require.Len(t, s.LimitReasons, 1)
		assert.Contains(t, s.LimitReasons[0], "10 of 20 iterations (50.0%) started more than 10ms late (worst 950ms)")
	})
}

func TestMissedIterationsWhenMaxVUsExhausted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var c collect
		s := run(t, ExecutorConfig{Rate: 10, Duration: 2 * time.Second, PreAllocatedVUs: 1, MaxVUs: 2},
			sleepWork(func(int64) time.Duration { return 950 * time.Millisecond }), Options{}, &c)
		// VU 0 takes the iterations due at 0 and 1.0s, VU 1 those due at 0.1s and 1.1s.
		assert.Equal(t, int64(20), s.Planned)
		assert.Equal(t, int64(4), s.Started)
		assert.Equal(t, int64(16), s.Missed)
		assert.Equal(t, 2, s.PeakVUs)
		var got []int64
		for _, r := range c.sorted() {
			got = append(got, r.N)
		}
		assert.Equal(t, []int64{0, 1, 10, 11}, got)
		assert.True(t, s.GeneratorLimited)
		require.NotEmpty(t, s.LimitReasons)
		assert.Contains(t, s.LimitReasons[0], "16 of 20 scheduled iterations missed: all 2 VUs (maxVUs) were busy")
	})
}

func TestRampingArrivalRateFollowsStages(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		cfg := ExecutorConfig{Type: RampingArrivalRate, Stages: []Stage{
			{Duration: time.Second, Rate: 100}, // 0 -> 100/s: 50 iterations
			{Duration: time.Second, Rate: 100}, // 100 iterations
		}}
		plan, err := cfg.Plan()
		require.NoError(t, err)
		var c collect
		s := run(t, cfg, sleepWork(func(int64) time.Duration { return time.Millisecond }), Options{}, &c)
		assert.Equal(t, plan.ExpectedIterations, s.Started)
		assert.Equal(t, int64(150), s.Started)
		perSecond := map[int]int{}
		quarter := map[int]int{}
		for _, r := range c.sorted() {
			el := r.Intended.Sub(start)
			perSecond[int(el/time.Second)]++
			if el < time.Second {
				quarter[int(el/(250*time.Millisecond))]++
			}
			assert.Equal(t, r.Intended, r.Start)
		}
		assert.Equal(t, map[int]int{0: 50, 1: 100}, perSecond)
		// N(t) = 50 t²: 3.125, 12.5, 28.125, 50 arrivals by each quarter.
		assert.Equal(t, map[int]int{0: 4, 1: 9, 2: 16, 3: 21}, quarter)
	})
}

func TestClosedModelNeverExceedsVUs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var inFlight, peak atomic.Int64
		w := WorkloadFunc(func(ctx context.Context, it Iteration) Outcome {
			storeMax(&peak, inFlight.Add(1))
			defer inFlight.Add(-1)
			time.Sleep(90 * time.Millisecond)
			return Outcome{Op: "op", Status: 204}
		})
		s := run(t, ExecutorConfig{Type: ConstantVUs, VUs: 3, Duration: 2 * time.Second}, w, Options{}, nil)
		assert.Equal(t, int64(3), peak.Load())
		assert.Equal(t, 3, s.PeakVUs)
		// Each VU starts at 0, 0.09s, ..., 1.98s: 23 iterations.
		assert.Equal(t, int64(69), s.Started)
		assert.Equal(t, int64(69), s.Completed)
		assert.Zero(t, s.Errors)
		assert.Equal(t, 2070*time.Millisecond, s.Elapsed)
		approx(t, 90*time.Millisecond, s.Latency.Max)
	})
}

func TestRampingVUsFollowsStages(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		cfg := ExecutorConfig{Type: RampingVUs, Stages: []Stage{
			{Duration: 4 * time.Second, VUs: 4},
			{Duration: 2 * time.Second, VUs: 4},
			{Duration: 2 * time.Second, VUs: 0},
		}}
		plan, err := cfg.Plan()
		require.NoError(t, err)
		active := func(at time.Duration) int {
			n := 0
			for _, p := range plan.Points {
				if p.At <= at {
					n = p.VUs
				}
			}
			return n
		}
		var c collect
		s := run(t, cfg, sleepWork(func(int64) time.Duration { return 70 * time.Millisecond }), Options{}, &c)
		first := map[int]time.Duration{}
		last := map[int]time.Duration{}
		for _, r := range c.sorted() {
			at := r.Start.Sub(start)
			assert.Less(t, r.VU, active(at), "VU %d started at %s while only %d were active", r.VU, at, active(at))
			if _, ok := first[r.VU]; !ok {
				first[r.VU] = at
			}
			last[r.VU] = at
		}
		s1 := time.Second
		assert.Equal(t, map[int]time.Duration{0: s1, 1: 2 * s1, 2: 3 * s1, 3: 4 * s1}, first, "each VU joins when the ramp reaches it")
		for vu, retire := range map[int]time.Duration{3: 6500 * time.Millisecond, 2: 7 * s1, 1: 7500 * time.Millisecond, 0: 8 * s1} {
			assert.Less(t, last[vu], retire, "VU %d", vu)
			assert.GreaterOrEqual(t, last[vu], retire-70*time.Millisecond, "VU %d kept looping until retired", vu)
		}
		assert.Equal(t, 4, s.PeakVUs)
		assert.Zero(t, s.Interrupted)
	})
}

func TestGracefulStopInterrupts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := run(t, ExecutorConfig{Type: ConstantVUs, VUs: 2, Duration: time.Second, GracefulStop: 2 * time.Second},
			sleepWork(func(int64) time.Duration { return 10 * time.Second }), Options{}, nil)
		assert.Equal(t, int64(2), s.Started)
		assert.Equal(t, int64(2), s.Interrupted)
		assert.Zero(t, s.Completed)
		assert.Zero(t, s.Errors)
		assert.Equal(t, 3*time.Second, s.Elapsed)
	})
}

func TestCancelReturnsPartialSummary(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(1050*time.Millisecond, cancel)
		ex, err := New(ExecutorConfig{Rate: 10, Duration: 10 * time.Second, MaxVUs: 50},
			sleepWork(func(int64) time.Duration { return 5 * time.Second }), Options{CPU: noCPU})
		require.NoError(t, err)
		s, err := ex.Run(ctx, nil)
		require.ErrorIs(t, err, context.Canceled)
		assert.Equal(t, int64(11), s.Started)
		assert.Equal(t, int64(11), s.Interrupted)
		assert.Equal(t, 1050*time.Millisecond, s.ScheduleDuration)
	})
}

func TestErrorsCountedByClassAndOp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := WorkloadFunc(func(ctx context.Context, it Iteration) Outcome {
			time.Sleep(time.Millisecond)
			switch it.N % 5 {
			case 0:
				return Outcome{Op: "get", Status: 200}
			case 1:
				return Outcome{Op: "get", Status: 404, Detail: "no such network"}
			case 2:
				return Outcome{Op: "put", Status: 503}
			case 3:
				return Outcome{Op: "put", Err: context.DeadlineExceeded}
			}
			return Outcome{Op: "del", Class: ClassNoObject}
		})
		s := run(t, ExecutorConfig{Rate: 100, Duration: time.Second}, w, Options{}, nil)
		assert.Equal(t, int64(100), s.Completed)
		assert.Equal(t, int64(80), s.Errors)
		assert.Equal(t, map[ErrorClass]int64{Class4xx: 20, Class5xx: 20, ClassTimeout: 20, ClassNoObject: 20}, s.ErrorsByClass)
		assert.Equal(t, map[int]int64{200: 20, 404: 20, 503: 20}, s.Statuses)
		assert.Equal(t, int64(40), s.Ops["get"].Count)
		assert.Equal(t, int64(20), s.Ops["get"].Errors)
		assert.Equal(t, map[ErrorClass]int64{Class5xx: 20, ClassTimeout: 20}, s.Ops["put"].ErrorsByClass)
		assert.Equal(t, int64(80), s.Latency.Count, "operations never sent have no latency")
		assert.InDelta(t, 0.8, s.ErrorRate(), 1e-9)

		// The first few failures of each class are kept (no-object ones are not failures of
		// the target), with what the answer said.
		perClass := map[ErrorClass]int{}
		for _, e := range s.ErrorSamples {
			perClass[e.Class]++
		}
		assert.Equal(t, map[ErrorClass]int{Class4xx: samplesPerClass, Class5xx: samplesPerClass, ClassTimeout: samplesPerClass}, perClass)
		assert.Equal(t, "get: 404 (no such network)", s.ErrorSamples[0].String())
		assert.Equal(t, "put: 503", s.ErrorSamples[1].String())
		assert.Equal(t, "put: context deadline exceeded", s.ErrorSamples[2].String())
	})
}

func TestCPUSaturationMakesRunGeneratorLimited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		calls := 0
		cpu := func() (time.Duration, error) {
			calls++
			if calls == 1 {
				return 10 * time.Second, nil
			}
			return 11900 * time.Millisecond, nil // 1.9s of CPU in 1s on 2 cores
		}
		s := run(t, ExecutorConfig{Rate: 10, Duration: time.Second}, sleepWork(func(int64) time.Duration { return time.Millisecond }),
			Options{CPU: cpu, Cores: 2}, nil)
		assert.InDelta(t, 1.9, s.CPUSeconds, 1e-9)
		assert.InDelta(t, 0.95, s.CPUShare, 1e-9)
		assert.True(t, s.GeneratorLimited)
		assert.Equal(t, []string{"process CPU at 95% of 2 cores (threshold 90%): the generator may be starved of CPU"}, s.LimitReasons)
	})
}

func TestNewRejectsBadInput(t *testing.T) {
	_, err := New(ExecutorConfig{Rate: 1, Duration: time.Second}, nil, Options{})
	require.ErrorIs(t, err, ErrInvalidConfig)
	_, err = New(ExecutorConfig{Type: "nope"}, WorkloadFunc(nil), Options{})
	require.ErrorIs(t, err, ErrUnknownExecutor)
}

func TestClassify(t *testing.T) {
	assert.Equal(t, ClassOK, Classify(200, nil))
	assert.Equal(t, Class3xx, Classify(304, nil))
	assert.Equal(t, Class4xx, Classify(429, nil))
	assert.Equal(t, Class5xx, Classify(500, nil))
	assert.Equal(t, ClassOther, Classify(0, nil))
	assert.Equal(t, ClassTimeout, Classify(0, context.DeadlineExceeded))
	assert.Equal(t, ClassOther, Classify(0, errors.New("bad body")))
}
