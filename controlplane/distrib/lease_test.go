package distrib

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/dsnscale/dsnscale/internal/manualclock"
)

// memLeases is an in-memory lease bucket with compare-and-set writes. Each replica reads it
// through a view that may lag behind: a bucket watch delivers writes late.
type memLeases struct {
	mu   sync.Mutex // writes of one tick run concurrently
	rev  uint64
	kv   map[string]leaseEntry
	past []map[string]leaseEntry // every state the bucket went through, oldest first
}

func newMemLeases() *memLeases {
	return &memLeases{kv: map[string]leaseEntry{}, past: []map[string]leaseEntry{{}}}
}

func (s *memLeases) write(key string, value []byte, ok bool) (uint64, error) {
	if !ok {
		return 0, errLeaseConflict
	}
	s.rev++
	if value == nil {
		delete(s.kv, key)
	} else {
		s.kv[key] = leaseEntry{value: value, revision: s.rev}
	}
	s.past = append(s.past, maps.Clone(s.kv))
	return s.rev, nil
}

// view is a replica's access to the bucket; lag is how many states behind its reads are.
type view struct {
	s   *memLeases
	lag int
}

func (v *view) entries() map[string]leaseEntry {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	i := max(0, len(v.s.past)-1-v.lag)
	return maps.Clone(v.s.past[i])
}

func (v *view) create(_ context.Context, key string, value []byte) (uint64, error) {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	_, exists := v.s.kv[key]
	return v.s.write(key, value, !exists)
}

func (v *view) update(_ context.Context, key string, value []byte, last uint64) (uint64, error) {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	e, exists := v.s.kv[key]
	return v.s.write(key, value, exists && e.revision == last)
}

func (v *view) remove(_ context.Context, key string, last uint64) error {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	e, exists := v.s.kv[key]
	_, err := v.s.write(key, nil, exists && e.revision == last)
	return err
}

// owners counts, for each partition, the replicas that believe they hold it.
func owners(ls []*leaser, parts int, now time.Time) []int {
	out := make([]int, parts)
	for _, l := range ls {
		if l == nil {
			continue
		}
		for p := 0; p < parts; p++ {
			if l.owns(p, now) {
				out[p]++
			}
		}
	}
	return out
}

// TestLeasesNeverDoubleOwned runs replicas that tick at random times, read a lagging bucket,
// stall (stop renewing, then come back), crash and restart under the same name, and stop
// gracefully, and checks after every step that no partition is believed held by two of them.
func TestLeasesNeverDoubleOwned(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		const lease = 3 * time.Second
		parts := rapid.IntRange(1, 12).Draw(rt, "parts")
		n := rapid.IntRange(2, 4).Draw(rt, "replicas")
		clk := manualclock.New(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
		s := newMemLeases()
		views := make([]*view, n)
		ls := make([]*leaser, n) // nil: stopped or crashed
		for i := range ls {
			views[i] = &view{s: s}
			ls[i] = newLeaser(fmt.Sprintf("r%d", i), parts, lease, clk, views[i])
		}
		ctx := context.Background()
		steps := rapid.IntRange(1, 300).Draw(rt, "steps")
		for step := 0; step < steps; step++ {
			i := rapid.IntRange(0, n-1).Draw(rt, "replica")
			switch rapid.IntRange(0, 9).Draw(rt, "action") {
			case 0, 1, 2, 3, 4: // a tick, on a view that may lag
				if ls[i] != nil {
					views[i].lag = rapid.IntRange(0, 4).Draw(rt, "lag")
					_ = ls[i].tick(ctx)
				}
			case 5, 6, 7: // time passes; a replica that is not ticked stalls meanwhile
				clk.Advance(time.Duration(rapid.Int64Range(0, int64(2*lease)).Draw(rt, "advance")))
			case 8: // a crash: the process and its beliefs are gone; it restarts at once
				ls[i] = newLeaser(fmt.Sprintf("r%d", i), parts, lease, clk, views[i])
			case 9: // a graceful stop, or a start after one
				if ls[i] != nil {
					ls[i].release(ctx)
					ls[i] = nil
				} else {
					ls[i] = newLeaser(fmt.Sprintf("r%d", i), parts, lease, clk, views[i])
				}
			}
			for p, c := range owners(ls, parts, clk.Now()) {
				if c > 1 {
					rt.Fatalf("step %d: partition %d believed held by %d replicas", step, p, c)
				}
			}
		}
	})
}

// tickAll ticks every running replica once and moves time on by a third of the lease, as
// the distributor's lease loop does.
func tickAll(t *testing.T, clk *manualclock.Clock, ls []*leaser, lease time.Duration) {
	t.Helper()
	for _, l := range ls {
		if l != nil {
			require.NoError(t, l.tick(context.Background()))
		}
	}
	clk.Advance(lease / 3)
}

// TestLeasesBalanceAndFailOver checks that replicas that renew on time share the partitions
// evenly, that a newcomer gets its share, that a stopped replica's partitions are taken at
// once and a crashed one's within a lease period and two ticks.
func TestLeasesBalanceAndFailOver(t *testing.T) {
	const lease, parts = 3 * time.Second, 64
	clk := manualclock.New(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	s := newMemLeases()
	ls := []*leaser{newLeaser("a", parts, lease, clk, &view{s: s}), newLeaser("b", parts, lease, clk, &view{s: s})}
	held := func(l *leaser) int { return len(l.held(clk.Now())) }
	settle := func(rounds int) {
		for range rounds {
			tickAll(t, clk, ls, lease)
		}
	}
	settle(8)
	require.Equal(t, []int{32, 32}, []int{held(ls[0]), held(ls[1])})
	require.Equal(t, []string{"a", "b"}, ls[0].live)

	// A third replica gets its share: the others release down to ceil(64/3) = 22.
	ls = append(ls, newLeaser("c", parts, lease, clk, &view{s: s}))
	settle(8)
	for _, l := range ls {
		require.LessOrEqual(t, held(l), 22, "replica %s", l.name)
		require.GreaterOrEqual(t, held(l), 20, "replica %s", l.name)
	}
	require.Equal(t, []int{1}, uniq(owners(ls, parts, clk.Now())))

	// A graceful stop: its partitions are free at once, taken on the next ticks.
	ls[2].release(context.Background())
	ls[2] = nil
	settle(2)
	require.Equal(t, []int{32, 32}, []int{held(ls[0]), held(ls[1])})

	// A crash: b stops renewing. a takes everything within a lease period and two ticks.
	crashed := ls[1]
	ls[1] = nil
	settle(5)
	require.Equal(t, parts, held(ls[0]))
	require.Zero(t, held(crashed), "the crashed replica's beliefs have ended")
	require.Equal(t, []string{"a"}, ls[0].live)
}

func uniq(xs []int) []int {
	var out []int
	for _, x := range xs {
		if len(out) == 0 || out[len(out)-1] != x {
			out = append(out, x)
		}
	}
	return out
}
