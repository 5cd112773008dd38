package ratesearch

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var criteria = Criteria{MaxErrorRate: 0.01, MinAchieved: 0.95, MaxP99: 100 * time.Millisecond}

// fakeTarget serves up to capacity requests per second. Below it every request succeeds at a
// latency that grows as the load nears capacity (a queue's); above it the excess is refused.
// With latencyKnee below 1, the latency bound is crossed at latencyKnee*capacity first.
type fakeTarget struct {
	capacity float64
	base     time.Duration
	tried    []float64
}

func (f *fakeTarget) try(_ context.Context, rate float64) (Outcome, error) {
	f.tried = append(f.tried, rate)
	n := int64(rate * 2) // a two-second run
	o := Outcome{Rate: rate, Requests: n}
	if rate > f.capacity {
		served := f.capacity * 2
		o.Errors = n - int64(served)
		o.Achieved = f.capacity
		o.P99 = 2 * time.Second
		return o, nil
	}
	o.Achieved = rate
	o.P99 = time.Duration(float64(f.base) / (1 - rate/f.capacity*0.999))
	return o, nil
}

func cfg(start float64) Config {
	return Config{Start: start, Floor: 10, Ceil: 100000, Growth: 2, Resolution: 0.05, Criteria: criteria}
}

func TestBracketContainsTheCapacity(t *testing.T) {
	for _, capacity := range []float64{37, 500, 4321, 5000, 77777} {
		for _, start := range []float64{10, 1000, 60000} {
			t.Run(fmt.Sprintf("capacity %v from %v", capacity, start), func(t *testing.T) {
				// A tiny base latency: only errors and the achieved rate decide.
				f := &fakeTarget{capacity: capacity, base: time.Microsecond}
				s, err := New("fake", cfg(start), f.try)
				require.NoError(t, err)
				require.NoError(t, Run(t.Context(), Budget{}, t.Logf, s))
				b, err := s.Result()
				require.NoError(t, err, "tried %v", f.tried)
				assert.LessOrEqual(t, b.Held, capacity, "tried %v", f.tried)
				assert.Greater(t, b.Failed, capacity, "tried %v", f.tried)
				assert.LessOrEqual(t, b.Failed-b.Held, 0.05*b.Held+1, "within the resolution: tried %v", f.tried)
				assert.Equal(t, len(f.tried), b.Trials)
				assert.Equal(t, b.Held, b.HeldOutcome.Rate)
			})
		}
	}
}

func TestLatencyBoundLowersTheCapacity(t *testing.T) {
	// p99 = 10ms / (1 - 0.999 r/c): the 100 ms bound is crossed at r = 0.9/0.999 c, about 900/s
	// for c = 1000, well before any error.
	f := &fakeTarget{capacity: 1000, base: 10 * time.Millisecond}
	knee := 0.9 / 0.999 * 1000
	s, err := New("slow", cfg(100), f.try)
	require.NoError(t, err)
	require.NoError(t, Run(t.Context(), Budget{}, t.Logf, s))
	b, err := s.Result()
	require.NoError(t, err)
	assert.LessOrEqual(t, b.Held, knee)
	assert.Greater(t, b.Failed, knee)
	assert.LessOrEqual(t, b.HeldOutcome.P99, criteria.MaxP99)
	assert.Greater(t, b.FailedOutcome.P99, criteria.MaxP99)
}

func TestOneFailedRunFailsTheRate(t *testing.T) {
	// The target holds 4000/s but one run at 2000/s failed: the rate is not tried again, and the
	// bracket stays below it.
	f := &fakeTarget{capacity: 4000, base: time.Microsecond}
	hiccup := true
	s, err := New("flaky", cfg(1000), func(ctx context.Context, r float64) (Outcome, error) {
		o, err := f.try(ctx, r)
		if r == 2000 && hiccup {
			hiccup = false
			o.Errors = o.Requests
		}
		return o, err
	})
	require.NoError(t, err)
	require.NoError(t, Run(t.Context(), Budget{}, t.Logf, s))
	b, err := s.Result()
	require.NoError(t, err)
	assert.Equal(t, 2000.0, b.Failed)
	assert.Less(t, b.Held, 2000.0)
	assert.Equal(t, 1, countOf(f.tried, 2000))
}

func countOf(xs []float64, x float64) int {
	n := 0
	for _, v := range xs {
		if v == x {
			n++
		}
	}
	return n
}

func TestSearchesWithoutABracketAreErrors(t *testing.T) {
	t.Run("step budget", func(t *testing.T) {
		f := &fakeTarget{capacity: 5000, base: time.Microsecond}
		s, err := New("short", cfg(1000), f.try)
		require.NoError(t, err)
		require.NoError(t, Run(t.Context(), Budget{Steps: 4}, t.Logf, s))
		assert.Len(t, f.tried, 4)
		_, err = s.Result()
		require.ErrorIs(t, err, ErrBudget)
		assert.Contains(t, err.Error(), "held 4000/s, failed 8000/s")
	})
	t.Run("time budget", func(t *testing.T) {
		now := time.Unix(0, 0)
		f := &fakeTarget{capacity: 5000, base: time.Microsecond}
		s, err := New("slow", cfg(1000), func(ctx context.Context, r float64) (Outcome, error) {
			now = now.Add(3 * time.Second)
			return f.try(ctx, r)
		})
		require.NoError(t, err)
		b := Budget{Until: now.Add(10 * time.Second), StepCost: 3 * time.Second, Now: func() time.Time { return now }}
		require.NoError(t, Run(t.Context(), b, t.Logf, s))
		assert.Len(t, f.tried, 3, "a fourth step would end past the budget")
		_, err = s.Result()
		require.ErrorIs(t, err, ErrBudget)
	})
	t.Run("nothing holds", func(t *testing.T) {
		s, err := New("none", cfg(1000), func(_ context.Context, r float64) (Outcome, error) {
			return Outcome{Requests: 10, Errors: 10}, nil
		})
		require.NoError(t, err)
		require.NoError(t, Run(t.Context(), Budget{}, t.Logf, s))
		_, err = s.Result()
		require.ErrorIs(t, err, ErrNoneHeld)
	})
	t.Run("nothing fails", func(t *testing.T) {
		f := &fakeTarget{capacity: 1e9, base: time.Microsecond}
		s, err := New("fast", cfg(1000), f.try)
		require.NoError(t, err)
		require.NoError(t, Run(t.Context(), Budget{}, t.Logf, s))
		_, err = s.Result()
		require.ErrorIs(t, err, ErrNoFailure)
		assert.Equal(t, 100000.0, f.tried[len(f.tried)-1], "the ceiling itself is tried")
	})
	t.Run("trial error", func(t *testing.T) {
		boom := errors.New("boom")
		s, err := New("broken", cfg(1000), func(context.Context, float64) (Outcome, error) { return Outcome{}, boom })
		require.NoError(t, err)
		require.ErrorIs(t, Run(t.Context(), Budget{}, t.Logf, s), boom)
		assert.False(t, s.Done())
	})
}

func TestInterleavedSearchesShareTheBudget(t *testing.T) {
	var order []string
	mk := func(name string, capacity float64) *Search {
		f := &fakeTarget{capacity: capacity, base: time.Microsecond}
		s, err := New(name, cfg(1000), func(ctx context.Context, r float64) (Outcome, error) {
			order = append(order, name)
			return f.try(ctx, r)
		})
		require.NoError(t, err)
		return s
	}
	a, b := mk("a", 3000), mk("b", 3000)
	require.NoError(t, Run(t.Context(), Budget{}, nil, a, b))
	require.GreaterOrEqual(t, len(order), 4)
	assert.Equal(t, []string{"a", "b", "a", "b"}, order[:4])
	ra, err := a.Result()
	require.NoError(t, err)
	rb, err := b.Result()
	require.NoError(t, err)
	assert.Equal(t, ra, rb, "the same rule gives the same bracket for the same target")
}

func TestConfigValidate(t *testing.T) {
	good := cfg(1000)
	require.NoError(t, good.Validate())
	for name, mut := range map[string]func(*Config){
		"floor":      func(c *Config) { c.Floor = 0 },
		"ceil":       func(c *Config) { c.Ceil = 5 },
		"start":      func(c *Config) { c.Start = 1e6 },
		"growth":     func(c *Config) { c.Growth = 1 },
		"resolution": func(c *Config) { c.Resolution = 0 },
		"errors":     func(c *Config) { c.Criteria.MaxErrorRate = 0 },
		"achieved":   func(c *Config) { c.Criteria.MinAchieved = 1.5 },
		"p99":        func(c *Config) { c.Criteria.MaxP99 = 0 },
	} {
		c := good
		mut(&c)
		err := c.Validate()
		require.ErrorIs(t, err, ErrConfig, name)
		_, err = New("x", c, nil)
		require.ErrorIs(t, err, ErrConfig, name)
	}
}

func TestHoldsSaysWhy(t *testing.T) {
	ok, why := criteria.Holds(Outcome{Rate: 100, Requests: 200, Errors: 2, Achieved: 99, P99: time.Millisecond})
	assert.False(t, ok)
	assert.Contains(t, why, "2 errors of 200")
	ok, why = criteria.Holds(Outcome{Rate: 100, Requests: 200, Errors: 1, Achieved: 94, P99: time.Millisecond})
	assert.False(t, ok)
	assert.Contains(t, why, "achieved 94/s")
	ok, why = criteria.Holds(Outcome{Rate: 100, Requests: 200, Errors: 1, Achieved: 95, P99: time.Second})
	assert.False(t, ok)
	assert.Contains(t, why, "p99 1s")
	ok, _ = criteria.Holds(Outcome{Rate: 100, Requests: 200, Errors: 1, Achieved: 95, P99: 100 * time.Millisecond})
	assert.True(t, ok)
}
