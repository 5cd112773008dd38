package queue

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/internal/manualclock"
)

func newManualClock() *manualclock.Clock { return manualclock.New(time.Unix(1_700_000_000, 0)) }

// recorder is a sink that records batches and fails as told.
type recorder struct {
	mu      sync.Mutex
	batches [][]int
	fail    func(call int) error
	calls   int
}

func (r *recorder) sink(ctx context.Context, batch []int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.fail != nil {
		if err := r.fail(r.calls); err != nil {
			return err
		}
	}
	r.batches = append(r.batches, append([]int(nil), batch...))
	return nil
}

func (r *recorder) items() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int
	for _, b := range r.batches {
		out = append(out, b...)
	}
	return out
}

func seq(from, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = from + i
	}
	return out
}

var quiet = WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))

func closeQ[T any](t *testing.T, q *Queue[T]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, q.Close(ctx))
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"defaults", Config{Name: "tsdb"}, ""},
		{"bad name", Config{Name: "Bad-Name"}, "name"},
		{"empty name", Config{}, "name"},
		{"negative capacity", Config{Name: "q", Capacity: -1}, "capacity"},
		{"batch above capacity", Config{Name: "q", Capacity: 10, BatchSize: 11}, "batchSize"},
		{"negative flush", Config{Name: "q", FlushInterval: -time.Second}, "flushInterval"},
		{"max below min backoff", Config{Name: "q", MinBackoff: time.Minute, MaxBackoff: time.Second}, "maxBackoff"},
		{"negative attempts", Config{Name: "q", MaxAttempts: -1}, "maxAttempts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidConfig)
			assert.Contains(t, err.Error(), tt.want)
			_, err = New(tt.cfg, (&recorder{}).sink)
			require.ErrorIs(t, err, ErrInvalidConfig)
		})
	}
}

func TestWritesEverythingInBatches(t *testing.T) {
	r := &recorder{}
	q, err := New(Config{Name: "q", Capacity: 100, BatchSize: 10}, r.sink, quiet)
	require.NoError(t, err)
	assert.Equal(t, 25, q.Offer(seq(0, 25)...))
	closeQ(t, q)
	assert.Equal(t, seq(0, 25), r.items())
	for _, b := range r.batches {
		assert.LessOrEqual(t, len(b), 10)
	}
	s := q.Stats()
	assert.Equal(t, uint64(25), s.Written)
	assert.Equal(t, uint64(25), s.Offered)
	assert.Zero(t, s.DroppedTotal())
}

func TestPartialBatchWaitsForFlushInterval(t *testing.T) {
	clk := newManualClock()
	r := &recorder{}
	q, err := New(Config{Name: "q", Capacity: 100, BatchSize: 10, FlushInterval: time.Second}, r.sink, WithClock(clk), quiet)
	require.NoError(t, err)
	q.Offer(1, 2, 3)
	require.Eventually(t, func() bool { return clk.Pending() == 1 }, 5*time.Second, time.Millisecond)
	assert.Empty(t, r.items(), "a partial batch must wait for the flush interval")
	clk.Advance(time.Second)
	require.Eventually(t, func() bool { return len(r.items()) == 3 }, 5*time.Second, time.Millisecond)
	closeQ(t, q)
}

func TestFullBufferDropsWithoutBlocking(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int32
	sink := func(ctx context.Context, batch []int) error {
		calls.Add(1)
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		return nil
	}
	q, err := New(Config{Name: "q", Capacity: 10, BatchSize: 5}, sink, quiet)
	require.NoError(t, err)
	assert.Equal(t, 10, q.Room())
	q.Offer(seq(0, 5)...)
	require.Eventually(t, func() bool { return calls.Load() == 1 }, 5*time.Second, time.Millisecond)
	assert.Equal(t, 5, q.Room(), "the batch in flight still takes room")

	done := make(chan int)
	go func() { done <- q.Offer(seq(5, 30)...) }()
	select {
	case n := <-done:
		assert.Equal(t, 5, n, "5 in flight + 5 buffered fill the capacity of 10")
	case <-time.After(5 * time.Second):
		t.Fatal("Offer blocked on a stuck sink")
	}
	s := q.Stats()
	assert.Equal(t, 25, s.Dropped[ReasonFull])
	assert.Equal(t, 5, s.Depth)
	assert.Equal(t, 5, s.InFlight)
	assert.Zero(t, q.Room())
	close(release)
	closeQ(t, q)
	assert.Equal(t, uint64(10), q.Stats().Written)
	assert.Zero(t, q.Room(), "a closed queue takes nothing")
}

func TestRetriesWithBackoff(t *testing.T) {
	clk := newManualClock()
	r := &recorder{fail: func(call int) error {
		if call <= 2 {
			return errors.New("server down")
		}
		return nil
	}}
	q, err := New(Config{Name: "q", BatchSize: 3, MinBackoff: time.Second, MaxBackoff: 4 * time.Second}, r.sink, WithClock(clk), quiet)
	require.NoError(t, err)
	q.Offer(1, 2, 3)
	for range 2 {
		require.Eventually(t, func() bool { return clk.Pending() == 1 }, 5*time.Second, time.Millisecond)
		clk.Advance(4 * time.Second)
	}
	require.Eventually(t, func() bool { return len(r.items()) == 3 }, 5*time.Second, time.Millisecond)
	closeQ(t, q)
	s := q.Stats()
	assert.Equal(t, uint64(2), s.Errors)
	assert.Equal(t, uint64(3), s.Written)
	assert.Zero(t, s.DroppedTotal())
}

func TestGivesUpAfterMaxAttemptsAndOnPermanentErrors(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		attempts   int
		wantErrors uint64
	}{
		{"max attempts", errors.New("server down"), 3, 3},
		{"permanent", Permanent(errors.New("bad data")), 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &recorder{fail: func(int) error { return tt.err }}
			q, err := New(Config{Name: "q", BatchSize: 4, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond,
				MaxAttempts: tt.attempts}, r.sink, quiet)
			require.NoError(t, err)
			q.Offer(1, 2, 3, 4)
			closeQ(t, q)
			s := q.Stats()
			assert.Equal(t, 4, s.Dropped[ReasonFailed])
			assert.Equal(t, tt.wantErrors, s.Errors)
			assert.Zero(t, s.Written)
		})
	}
}

func TestCloseGivesUpAtDeadlineOnADeadBackend(t *testing.T) {
	hang := func(ctx context.Context, batch []int) error {
		<-ctx.Done()
		return ctx.Err()
	}
	q, err := New(Config{Name: "q", BatchSize: 2}, hang, quiet)
	require.NoError(t, err)
	q.Offer(seq(0, 7)...)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = q.Close(ctx)
	require.ErrorIs(t, err, ErrCloseTimeout)
	assert.Less(t, time.Since(start), 5*time.Second)
	require.Eventually(t, func() bool { return q.Stats().Dropped[ReasonTimeout] == 7 }, 5*time.Second, time.Millisecond)
	assert.Zero(t, q.Offer(99))
	assert.Equal(t, 1, q.Stats().Dropped[ReasonClosed])
}

func TestCloseDoesNotWaitForASinkIgnoringItsContext(t *testing.T) {
	stuck := make(chan struct{})
	defer close(stuck)
	q, err := New(Config{Name: "q", BatchSize: 1}, func(context.Context, []int) error { <-stuck; return nil }, quiet)
	require.NoError(t, err)
	q.Offer(1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	done := make(chan error)
	go func() { done <- q.Close(ctx) }()
	select {
	case err := <-done:
		require.ErrorIs(t, err, ErrCloseTimeout)
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited for a stuck sink")
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	r := &recorder{}
	q, err := New(Config{Name: "events", Capacity: 4, BatchSize: 4}, r.sink, WithRegisterer(reg), quiet)
	require.NoError(t, err)
	_, err = New(Config{Name: "events"}, r.sink, WithRegisterer(reg), quiet)
	require.Error(t, err, "a second queue with the same name on one registry is refused")

	q.mu.Lock() // hold the worker off so the buffer fills deterministically
	q.buf = append(q.buf, 1, 2, 3)
	q.mu.Unlock()
	q.Offer(4, 5, 6)
	mfs, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" {
					name += "/" + l.GetValue()
				}
			}
			switch {
			case m.GetCounter() != nil:
				got[name] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				got[name] = m.GetGauge().GetValue()
			}
		}
	}
	assert.Equal(t, 4.0, got["dsnscale_queue_capacity"])
	assert.Equal(t, 3.0, got["dsnscale_queue_offered_total"])
	assert.Equal(t, 2.0, got["dsnscale_queue_dropped_total/full"])
	assert.Equal(t, 0.0, got["dsnscale_queue_dropped_total/failed"])
	closeQ(t, q)
	assert.Equal(t, 0, testutil.CollectAndCount(reg), "Close unregisters the metrics")
}

func TestConcurrentOffersAreAllAccountedFor(t *testing.T) {
	var written atomic.Int64
	sink := func(ctx context.Context, batch []int) error {
		written.Add(int64(len(batch)))
		return nil
	}
	q, err := New(Config{Name: "q", Capacity: 500, BatchSize: 50, FlushInterval: time.Millisecond}, sink, quiet)
	require.NoError(t, err)
	var wg sync.WaitGroup
	var accepted atomic.Int64
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				accepted.Add(int64(q.Offer(seq(g*10000+i*10, 10)...)))
			}
		}()
	}
	wg.Wait()
	closeQ(t, q)
	s := q.Stats()
	assert.Equal(t, uint64(8*200*10), s.Offered)
	assert.Equal(t, accepted.Load(), written.Load())
	assert.Equal(t, int(s.Offered)-int(accepted.Load()), s.Dropped[ReasonFull])
	assert.Equal(t, uint64(written.Load()), s.Written)
}
