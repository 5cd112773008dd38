package ratelimit

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newLimiter(t *testing.T, cfg Config) (*Limiter, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	cfg.Clock = clk.Now
	l, err := New(cfg)
	require.NoError(t, err)
	return l, clk
}

func TestConfigValidate(t *testing.T) {
	require.NoError(t, Config{Rate: 10, Burst: 10}.Validate())
	for _, c := range []Config{
		{Rate: 0, Burst: 1},
		{Rate: 10},
		{Rate: -1, Burst: 1},
		{Rate: 10, Burst: 1, PerKeyRate: -1},
		{Rate: 10, Burst: 1, BusyFraction: 1},
		{Rate: 10, Burst: 1, ActiveWindow: time.Minute, IdleTTL: time.Second},
		{Rate: 10, Burst: 1, IdleTTL: time.Second},
		{Rate: 10, Burst: 1, MaxKeys: -1},
	} {
		require.ErrorIs(t, c.Validate(), ErrConfig, "%+v", c)
	}
}

func TestPerKeyCap(t *testing.T) {
	l, clk := newLimiter(t, Config{Rate: 1000, Burst: 1000, PerKeyRate: 10, PerKeyBurst: 5})
	for range 5 {
		require.True(t, l.Allow("a").Allowed)
	}
	res := l.Allow("a")
	require.False(t, res.Allowed)
	require.Equal(t, ReasonKeyLimit, res.Reason)
	require.Equal(t, 100*time.Millisecond, res.RetryAfter)
	require.True(t, l.Allow("b").Allowed, "another key has its own cap")
	clk.Add(100 * time.Millisecond)
	require.True(t, l.Allow("a").Allowed, "the cap refills")
}

// TestFloodDoesNotStarveOthers is the rate-limit part of the table of attacks: one key floods at
// twenty times the server's budget while another asks ten times a second; the quiet key is
// served, the noisy one is held to what is left, and the server's budget holds.
func TestFloodDoesNotStarveOthers(t *testing.T) {
	const rate = 100
	l, clk := newLimiter(t, Config{Rate: rate, Burst: rate, PerKeyRate: 10 * rate, PerKeyBurst: 10 * rate})
	var noisyOK, quietOK, quietAsked, total int
	const seconds = 10
	for ms := range seconds * 1000 {
		for range 2 {
			if l.Allow("noisy").Allowed {
				noisyOK++
				total++
			}
		}
		// The quiet key joins once the flood is in full swing.
		if ms >= 2000 && ms%100 == 0 {
			quietAsked++
			res := l.Allow("quiet")
			if res.Allowed {
				quietOK++
				total++
			} else {
				t.Fatalf("at %d ms the quiet key was refused: %+v", ms, res)
			}
		}
		clk.Add(time.Millisecond)
	}
	t.Log(noisyOK, quietOK, quietAsked, total)
	require.Equal(t, quietAsked, quietOK, "every quiet request is served")
	require.LessOrEqual(t, total, rate*seconds+rate, "the global budget holds")
	require.Greater(t, noisyOK, rate*seconds/2, "the noisy key keeps what the quiet one leaves")
	st := l.Stats()
	require.Equal(t, 2, st.Keys)
	require.EqualValues(t, total, st.Allowed)
}

func TestFairShareAmongManyNoisyKeys(t *testing.T) {
	const rate = 100
	l, clk := newLimiter(t, Config{Rate: rate, Burst: rate})
	got := map[string]int{}
	keys := []string{"a", "b", "c", "d"}
	for range 20000 { // 20 s
		for _, k := range keys {
			// a asks 8 times as often as the others.
			n := 1
			if k == "a" {
				n = 8
			}
			for range n {
				if l.Allow(k).Allowed {
					got[k]++
				}
			}
		}
		clk.Add(time.Millisecond)
	}
	// Each of b, c, d gets at least its guaranteed share despite a: the budget divided by the
	// active keys plus one share kept for newcomers.
	t.Log(got)
	for _, k := range keys[1:] {
		require.GreaterOrEqual(t, got[k], 20*rate/(len(keys)+1), "%s got %v", k, got)
	}
	require.LessOrEqual(t, got["a"]+got["b"]+got["c"]+got["d"], 20*rate+rate)
}

func TestIdleKeysAreForgottenAndMemoryIsBounded(t *testing.T) {
	l, clk := newLimiter(t, Config{Rate: 1e6, Burst: 1e6, ActiveWindow: time.Second, IdleTTL: 2 * time.Second, MaxKeys: 100})
	for i := range 1000 {
		l.Allow(fmt.Sprintf("k%d", i))
	}
	require.LessOrEqual(t, l.Stats().Keys, 101, "MaxKeys plus the shared overflow bucket")
	clk.Add(3 * time.Second)
	l.Allow("fresh")
	require.Equal(t, 1, l.Stats().Keys, "idle keys are forgotten")
	require.Equal(t, 1, l.Stats().Active)
}

func TestConcurrentUse(t *testing.T) {
	l, err := New(Config{Rate: 1e6, Burst: 1000})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				l.Allow(fmt.Sprintf("k%d", (g*7+i)%50))
			}
		}()
	}
	wg.Wait()
	st := l.Stats()
	require.EqualValues(t, 16000, st.Allowed+st.Limited)
}

// TestNoGlobalBudget: with Rate 0 each key has its own cap and nothing more, however many keys
// ask at once.
func TestNoGlobalBudget(t *testing.T) {
	require.ErrorIs(t, Config{}.Validate(), ErrConfig, "no rate at all")
	require.ErrorIs(t, Config{PerKeyRate: 10}.Validate(), ErrConfig, "a per-key rate needs its bucket")
	l, clk := newLimiter(t, Config{PerKeyRate: 10, PerKeyBurst: 10})
	for k := range 1000 {
		for range 10 {
			require.True(t, l.Allow(fmt.Sprint(k)).Allowed, "key %d within its cap", k)
		}
		res := l.Allow(fmt.Sprint(k))
		require.False(t, res.Allowed)
		require.Equal(t, ReasonKeyLimit, res.Reason)
	}
	clk.Add(100 * time.Millisecond)
	require.True(t, l.Allow("0").Allowed, "the cap refills")
}
