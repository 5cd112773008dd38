// Package queue is a bounded, batching, asynchronous writer in front of a slow or unreliable
// backend (a time-series database, a search index, an SQL inventory).
//
// Offer never blocks: when the buffer is full the items are dropped and counted. One worker takes
// items in batches, hands each batch to a sink and retries a failing batch with jittered
// exponential back-off. Every item is accounted for: written, dropped because the buffer was
// full, dropped because the queue was closed, dropped after its batch failed for good, or
// dropped because Close ran out of time. The counts are available from Stats and, when a
// prometheus.Registerer is given, as metrics.
//
// A backend that hangs or dies therefore costs memory up to Capacity items and nothing else: the
// caller keeps running, the loss is counted and logged.
package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"sync"
	"time"
)

var (
	// ErrInvalidConfig marks a Config that fails validation.
	ErrInvalidConfig = errors.New("queue: invalid config")
	// ErrCloseTimeout is returned by Close when items were still unwritten at its deadline.
	ErrCloseTimeout = errors.New("queue: close deadline passed before all items were written")
)

// Drop reasons, as reported in Stats.Dropped and the dropped_total metric's reason label.
const (
	ReasonFull    = "full"    // the buffer held Capacity items
	ReasonClosed  = "closed"  // offered after Close began
	ReasonFailed  = "failed"  // the batch failed permanently or ran out of attempts
	ReasonTimeout = "timeout" // still unwritten when Close's deadline passed
)

var namePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// Config sizes and paces a Queue. It is pure data; zero durations and sizes get defaults in
// WithDefaults.
type Config struct {
	// Name identifies the queue in logs and in the "queue" label of its metrics.
	Name string `json:"name" yaml:"name"`
	// Capacity is the most items held; Offer drops what does not fit. Default 65536.
	Capacity int `json:"capacity" yaml:"capacity"`
	// BatchSize is the most items handed to the sink at once. Default 1000.
	BatchSize int `json:"batchSize" yaml:"batchSize"`
	// FlushInterval bounds how long an item waits for its batch to fill. Default 1s.
	FlushInterval time.Duration `json:"flushInterval" yaml:"flushInterval"`
	// MinBackoff and MaxBackoff bound the wait between attempts of a failing batch; the wait
	// doubles from MinBackoff up to MaxBackoff, with jitter. Defaults 100ms and 10s.
	MinBackoff time.Duration `json:"minBackoff" yaml:"minBackoff"`
	MaxBackoff time.Duration `json:"maxBackoff" yaml:"maxBackoff"`
	// MaxAttempts is how often a batch is tried before it is dropped; 0 means until Close.
	MaxAttempts int `json:"maxAttempts" yaml:"maxAttempts"`
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Capacity == 0 {
		c.Capacity = 65536
	}
	if c.BatchSize == 0 {
		c.BatchSize = 1000
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = time.Second
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = 100 * time.Millisecond
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 10 * time.Second
	}
	return c
}

// Validate reports the first field of c that is out of range, after defaults.
func (c Config) Validate() error {
	c = c.WithDefaults()
	switch {
	case !namePattern.MatchString(c.Name):
		return fmt.Errorf("%w: name %q: want 1-63 of [a-z0-9_], starting with a letter", ErrInvalidConfig, c.Name)
	case c.Capacity < 1:
		return fmt.Errorf("%w: capacity %d: want >= 1", ErrInvalidConfig, c.Capacity)
	case c.BatchSize < 1 || c.BatchSize > c.Capacity:
		return fmt.Errorf("%w: batchSize %d: want 1..capacity (%d)", ErrInvalidConfig, c.BatchSize, c.Capacity)
	case c.FlushInterval < 0:
		return fmt.Errorf("%w: flushInterval %v: want > 0", ErrInvalidConfig, c.FlushInterval)
	case c.MinBackoff < 0:
		return fmt.Errorf("%w: minBackoff %v: want > 0", ErrInvalidConfig, c.MinBackoff)
	case c.MaxBackoff < c.MinBackoff:
		return fmt.Errorf("%w: maxBackoff %v: want >= minBackoff (%v)", ErrInvalidConfig, c.MaxBackoff, c.MinBackoff)
	case c.MaxAttempts < 0:
		return fmt.Errorf("%w: maxAttempts %d: want >= 0", ErrInvalidConfig, c.MaxAttempts)
	}
	return nil
}

// Sink writes one batch. It must return when ctx is done. An error wrapped with Permanent is not
// retried.
type Sink[T any] func(ctx context.Context, batch []T) error

type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as one that retrying cannot fix (the backend rejected the data itself), so
// the batch is dropped at once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// Stats counts what happened to the items offered to a Queue.
type Stats struct {
	Depth    int            // items buffered now, excluding a batch being written
	InFlight int            // items in the batch being written now
	Offered  uint64         // items passed to Offer
	Written  uint64         // items the sink accepted
	Dropped  map[string]int // items dropped, by reason (ReasonFull, ...)
	Errors   uint64         // failed sink calls (every attempt counts)
}

// DroppedTotal sums Dropped over all reasons.
func (s Stats) DroppedTotal() int {
	n := 0
	for _, v := range s.Dropped {
		n += v
	}
	return n
}

// Queue buffers items of type T and writes them through a Sink in the background. It is safe for
// concurrent use.
type Queue[T any] struct {
	cfg     Config
	sink    Sink[T]
	clock   Clock
	log     *slog.Logger
	metrics *metrics

	mu       sync.Mutex
	buf      []T
	inFlight int
	closing  bool
	stats    Stats
	lastWarn time.Time
	unwarned int // drops since the last warning, reported with the next

	wake    chan struct{} // capacity 1: "there is something to do"
	closeCh chan struct{} // closed when Close begins
	ctx     context.Context
	cancel  context.CancelFunc // aborts the sink when Close's deadline passes
	done    chan struct{}      // closed when the worker exits

	unregisterOnce sync.Once
}

// New starts a queue that writes through sink. Close it to stop its worker.
func New[T any](cfg Config, sink Sink[T], opts ...Option) (*Queue[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if sink == nil {
		return nil, fmt.Errorf("%w: nil sink", ErrInvalidConfig)
	}
	s := settings{clock: realClock{}, log: slog.Default()}
	for _, o := range opts {
		o(&s)
	}
	cfg = cfg.WithDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	q := &Queue[T]{
		cfg:     cfg,
		sink:    sink,
		clock:   s.clock,
		log:     s.log.With("queue", cfg.Name),
		buf:     make([]T, 0, min(cfg.Capacity, 4*cfg.BatchSize)),
		wake:    make(chan struct{}, 1),
		closeCh: make(chan struct{}),
		ctx:     ctx,
		cancel:  cancel,
		done:    make(chan struct{}),
	}
	q.stats.Dropped = map[string]int{}
	if s.reg != nil {
		m, err := newMetrics(cfg, s.reg, q.depth)
		if err != nil {
			cancel()
			return nil, err
		}
		q.metrics = m
	}
	go q.run()
	return q, nil
}

// Offer buffers items without blocking and returns how many it accepted; the rest are dropped
// and counted (the buffer is full, or the queue is closing).
func (q *Queue[T]) Offer(items ...T) int {
	if len(items) == 0 {
		return 0
	}
	q.mu.Lock()
	q.stats.Offered += uint64(len(items))
	if q.metrics != nil {
		q.metrics.offered.Add(float64(len(items)))
	}
	if q.closing {
		q.dropLocked(ReasonClosed, len(items))
		q.mu.Unlock()
		return 0
	}
	n := min(len(items), q.cfg.Capacity-len(q.buf)-q.inFlight)
	n = max(n, 0)
	q.buf = append(q.buf, items[:n]...)
	if n < len(items) {
		q.dropLocked(ReasonFull, len(items)-n)
	}
	q.mu.Unlock()
	if n > 0 {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
	return n
}

// Room returns how many items Offer would accept now: none once Close began. A producer that
// can hold or fold its items asks before offering, so that a slow sink slows it instead of
// dropping.
func (q *Queue[T]) Room() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closing {
		return 0
	}
	return max(q.cfg.Capacity-len(q.buf)-q.inFlight, 0)
}

// Stats returns a snapshot of the queue's counters.
func (q *Queue[T]) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.stats
	s.Depth = len(q.buf)
	s.InFlight = q.inFlight
	s.Dropped = make(map[string]int, len(q.stats.Dropped))
	for k, v := range q.stats.Dropped {
		s.Dropped[k] = v
	}
	return s
}

// Close stops accepting items and writes what is buffered, retrying failed batches until ctx is
// done. Items still unwritten then are dropped with ReasonTimeout and Close returns an error
// wrapping ErrCloseTimeout. Close never waits past ctx, even if the sink ignores its context.
// Closing twice is harmless. Close unregisters the queue's metrics.
func (q *Queue[T]) Close(ctx context.Context) error {
	defer q.unregisterOnce.Do(func() {
		if q.metrics != nil {
			q.metrics.unregister()
		}
	})
	q.mu.Lock()
	if !q.closing {
		q.closing = true
		close(q.closeCh)
	}
	q.mu.Unlock()
	select {
	case <-q.done:
		q.cancel()
		return nil
	case <-ctx.Done():
	}
	q.cancel()
	q.mu.Lock()
	left := len(q.buf) + q.inFlight
	q.mu.Unlock()
	// The worker drops the remainder once the cancelled sink returns; give it a moment so the
	// counts are final when the sink honours its context.
	select {
	case <-q.done:
	case <-time.After(100 * time.Millisecond):
	}
	if left == 0 {
		return nil
	}
	return fmt.Errorf("%w: %d items of queue %s unwritten: %w", ErrCloseTimeout, left, q.cfg.Name, ctx.Err())
}

func (q *Queue[T]) depth() float64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return float64(len(q.buf) + q.inFlight)
}

// dropLocked counts n dropped items and logs a warning at most every 10s, so a flood of drops is
// visible without flooding the log.
func (q *Queue[T]) dropLocked(reason string, n int) {
	q.stats.Dropped[reason] += n
	if q.metrics != nil {
		q.metrics.dropped.WithLabelValues(reason).Add(float64(n))
	}
	q.unwarned += n
	now := q.clock.Now()
	if q.lastWarn.IsZero() || now.Sub(q.lastWarn) >= 10*time.Second {
		q.log.Warn("queue dropped items", "reason", reason, "count", q.unwarned,
			"droppedTotal", q.stats.DroppedTotal(), "capacity", q.cfg.Capacity)
		q.lastWarn = now
		q.unwarned = 0
	}
}

// run is the worker: it takes batches and writes them until the queue is closed and empty, or
// Close's deadline cancels it.
func (q *Queue[T]) run() {
	defer close(q.done)
	for {
		batch, ok := q.next()
		if !ok {
			return
		}
		q.write(batch)
	}
}

// next waits for a batch: a full one at once, a partial one after FlushInterval, everything
// without waiting once Close began. It returns false when there is nothing left to do.
func (q *Queue[T]) next() ([]T, bool) {
	var timer <-chan time.Time
	for {
		q.mu.Lock()
		n := len(q.buf)
		closing := q.closing
		if n > 0 && (n >= q.cfg.BatchSize || closing || q.ctx.Err() != nil) {
			batch := q.takeLocked()
			q.mu.Unlock()
			return batch, true
		}
		q.mu.Unlock()
		if n == 0 && closing {
			return nil, false
		}
		if n > 0 && timer == nil {
			timer = q.clock.After(q.cfg.FlushInterval)
		}
		select {
		case <-q.wake:
		case <-timer:
			q.mu.Lock()
			batch := q.takeLocked()
			q.mu.Unlock()
			if len(batch) > 0 {
				return batch, true
			}
			timer = nil
		case <-q.closeCh:
		}
	}
}

func (q *Queue[T]) takeLocked() []T {
	n := min(len(q.buf), q.cfg.BatchSize)
	if n == 0 {
		return nil
	}
	batch := make([]T, n)
	copy(batch, q.buf[:n])
	rest := copy(q.buf, q.buf[n:])
	clear(q.buf[rest:])
	q.buf = q.buf[:rest]
	q.inFlight = n
	return batch
}

// write hands batch to the sink until it succeeds, fails for good, runs out of attempts, or
// Close's deadline passes.
func (q *Queue[T]) write(batch []T) {
	backoff := q.cfg.MinBackoff
	for attempt := 1; ; attempt++ {
		err := q.sink(q.ctx, batch)
		if err == nil {
			q.mu.Lock()
			q.stats.Written += uint64(len(batch))
			q.inFlight = 0
			q.mu.Unlock()
			if q.metrics != nil {
				q.metrics.written.Add(float64(len(batch)))
			}
			return
		}
		q.mu.Lock()
		q.stats.Errors++
		q.mu.Unlock()
		if q.metrics != nil {
			q.metrics.errors.Inc()
		}
		reason := ""
		switch {
		case q.ctx.Err() != nil:
			reason = ReasonTimeout
		case IsPermanent(err):
			reason = ReasonFailed
		case q.cfg.MaxAttempts > 0 && attempt >= q.cfg.MaxAttempts:
			reason = ReasonFailed
		}
		if reason != "" {
			q.log.Error("queue dropped a batch", "reason", reason, "items", len(batch), "attempts", attempt, "err", err)
			q.mu.Lock()
			q.inFlight = 0
			q.dropLocked(reason, len(batch))
			if reason == ReasonTimeout {
				// Close gave up: nothing else will be written.
				q.dropLocked(ReasonTimeout, len(q.buf))
				clear(q.buf)
				q.buf = q.buf[:0]
			}
			q.mu.Unlock()
			return
		}
		wait := jitter(backoff)
		q.log.Warn("queue sink failed; retrying", "attempt", attempt, "items", len(batch), "retryIn", wait, "err", err)
		select {
		case <-q.clock.After(wait):
		case <-q.ctx.Done():
		}
		backoff = min(2*backoff, q.cfg.MaxBackoff)
	}
}

// jitter returns a duration in [d/2, d], so that many writers retrying at once spread out.
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}
