// Package sched runs the events of many simulated DSNs on a few goroutines: one timer heap for
// everything that is due later, and a small pool of workers, each owning a shard of the keys so
// that the events of one key run one at a time and in order. A sleeping DSN costs one heap
// entry, not a goroutine or a timer.
package sched

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// Clock is the time source. Under testing/synctest the real clock is virtual, so tests use
// Real inside a bubble.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) *time.Timer
}

// Real is the system clock.
type Real struct{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// NewTimer returns time.NewTimer(d).
func (Real) NewTimer(d time.Duration) *time.Timer { return time.NewTimer(d) }

// Event is something for one key to handle. Kind, Seq and Data mean whatever the handler says;
// Seq typically lets a handler drop timers it has since superseded.
type Event struct {
	Key  int32
	Kind uint8
	Seq  uint32
	Data any
}

// Handler handles one event on the worker that owns ev.Key.
type Handler func(worker int, ev Event)

// Config configures a Scheduler.
type Config struct {
	Clock Clock
	// Workers is the number of worker goroutines (default 2).
	Workers int
	// Resolution batches timers: a timer may run up to this much late, so that timers due
	// close together run in one batch (default 2ms).
	Resolution time.Duration
}

type entry struct {
	when int64
	ev   Event
}

type timerHeap []entry

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].when < h[j].when }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(entry)) }
func (h *timerHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

type shard struct {
	mu     sync.Mutex
	queue  []Event
	notify chan struct{}
}

// Scheduler is the timer heap and the worker pool.
type Scheduler struct {
	clock   Clock
	res     time.Duration
	handler Handler

	mu     sync.Mutex
	timers timerHeap
	wake   chan struct{}

	shards []*shard
}

// New returns a scheduler; Run starts it.
func New(cfg Config, h Handler) *Scheduler {
	if cfg.Clock == nil {
		cfg.Clock = Real{}
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.Resolution <= 0 {
		cfg.Resolution = 2 * time.Millisecond
	}
	s := &Scheduler{clock: cfg.Clock, res: cfg.Resolution, handler: h, wake: make(chan struct{}, 1)}
	for range cfg.Workers {
		s.shards = append(s.shards, &shard{notify: make(chan struct{}, 1)})
	}
	return s
}

// Workers is the number of workers.
func (s *Scheduler) Workers() int { return len(s.shards) }

// Now is the scheduler's clock.
func (s *Scheduler) Now() time.Time { return s.clock.Now() }

// Pending is the number of timers in the heap (superseded ones included).
func (s *Scheduler) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.timers)
}

// At schedules ev for time t.
func (s *Scheduler) At(t time.Time, ev Event) {
	when := t.UnixNano()
	s.mu.Lock()
	heap.Push(&s.timers, entry{when: when, ev: ev})
	first := s.timers[0].when == when
	s.mu.Unlock()
	if first {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// After schedules ev d from now.
func (s *Scheduler) After(d time.Duration, ev Event) { s.At(s.clock.Now().Add(d), ev) }

// Post queues ev to run as soon as its worker is free.
func (s *Scheduler) Post(ev Event) {
	sh := s.shards[int(uint32(ev.Key))%len(s.shards)]
	sh.mu.Lock()
	sh.queue = append(sh.queue, ev)
	n := len(sh.queue)
	sh.mu.Unlock()
	if n == 1 {
		select {
		case sh.notify <- struct{}{}:
		default:
		}
	}
}

// Run runs the timer loop and the workers until ctx ends.
func (s *Scheduler) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for i, sh := range s.shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.work(ctx, i, sh)
		}()
	}
	s.loop(ctx)
	wg.Wait()
}

func (s *Scheduler) loop(ctx context.Context) {
	t := s.clock.NewTimer(time.Hour)
	defer t.Stop()
	due := make([]Event, 0, 256)
	for {
		s.mu.Lock()
		now := s.clock.Now().UnixNano()
		for len(s.timers) > 0 && s.timers[0].when <= now {
			due = append(due, heap.Pop(&s.timers).(entry).ev)
		}
		// Never early (handlers may rely on it being time), at most one resolution late: the
		// timers of a resolution window run in one batch.
		wait := time.Hour
		if len(s.timers) > 0 {
			wait = max(time.Duration(s.timers[0].when-now), s.res)
		}
		s.mu.Unlock()
		for _, ev := range due {
			s.Post(ev)
		}
		clear(due)
		due = due[:0]
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
	}
}

func (s *Scheduler) work(ctx context.Context, worker int, sh *shard) {
	var batch []Event
	for {
		sh.mu.Lock()
		batch, sh.queue = sh.queue, batch[:0]
		sh.mu.Unlock()
		for _, ev := range batch {
			s.handler(worker, ev)
		}
		clear(batch)
		if len(batch) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-sh.notify:
		}
	}
}
