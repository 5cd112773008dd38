package store

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/dsnscale/dsnscale/controlplane/model"
)

// watchChunk is how many events a watcher copies out of the log at a time.
const watchChunk = 256

// appendEventsLocked adds committed events to the log, drops what exceeds the log's bound and
// wakes the watchers. Events at or below the compaction horizon (met while rebuilding) are
// skipped.
func (s *KV) appendEventsLocked(evs []Event) {
	for _, ev := range evs {
		if ev.Revision > s.horizon {
			s.events = append(s.events, ev)
		}
	}
	if over := len(s.events) - s.cfg.MaxHistoryEvents; over > 0 {
		s.logFloor = max(s.logFloor, s.events[over-1].Revision)
		s.dropEventsLocked(over)
	}
	s.metrics.eventLog.Set(float64(len(s.events)))
	if len(evs) > 0 {
		s.notifyLocked()
	}
}

// dropEventsLocked removes the n oldest events.
func (s *KV) dropEventsLocked(n int) {
	clear(s.events[:n]) // let the dropped objects go
	s.events = s.events[n:]
	if cap(s.events) > 2*len(s.events)+1024 {
		s.events = slices.Clone(s.events)
	}
}

func (s *KV) notifyLocked() {
	for w := range s.watchers {
		select {
		case w.notify <- struct{}{}:
		default:
		}
	}
}

// firstAfterLocked is the index of the first event with a revision above rev.
func (s *KV) firstAfterLocked(rev Revision) int {
	return sort.Search(len(s.events), func(i int) bool { return s.events[i].Revision > rev })
}

// Watch delivers every event with revision > from, once and in order: first from the event
// log, then as commits happen. The events' objects are shared: receivers must not modify them.
// A watch ends with ErrSlowWatcher when it falls more than Config.WatchBuffer events behind the
// events committed since it started, with ErrCompacted when Compact drops events it has not
// received, and with ErrClosed when the store closes. It never slows down Commit.
func (s *KV) Watch(ctx context.Context, from Revision) (Watcher, error) {
	s.logMu.Lock()
	if s.isClosed.Load() {
		s.logMu.Unlock()
		return nil, ErrClosed
	}
	if floor := s.compactedLocked(); from < floor {
		s.logMu.Unlock()
		return nil, fmt.Errorf("watch from revision %d: history is compacted up to %d: %w", from, floor, ErrCompacted)
	}
	w := &watcher{
		s:      s,
		ch:     make(chan Event),
		notify: make(chan struct{}, 1),
		cursor: from,
		live:   max(from, s.snap.Load().rev),
	}
	s.watchers[w] = struct{}{}
	s.wg.Add(1)
	s.metrics.watchers.Inc()
	s.logMu.Unlock()
	go w.run(ctx)
	return w, nil
}

type watcher struct {
	s      *KV
	ch     chan Event
	notify chan struct{}
	cursor Revision // last revision delivered (or the start)
	live   Revision // events above it count towards the watcher's lag

	mu  sync.Mutex
	err error
}

func (w *watcher) Events() <-chan Event { return w.ch }

func (w *watcher) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *watcher) run(ctx context.Context) {
	s := w.s
	defer s.wg.Done()
	defer close(w.ch)
	defer func() {
		s.logMu.Lock()
		delete(s.watchers, w)
		s.logMu.Unlock()
		s.metrics.watchers.Dec()
	}()
	fail := func(err error) {
		w.mu.Lock()
		w.err = err
		w.mu.Unlock()
	}
	buf := make([]Event, 0, watchChunk)
	for {
		var err error
		buf, err = w.next(buf[:0])
		if err != nil {
			fail(err)
			return
		}
		if len(buf) == 0 {
			select {
			case <-w.notify:
				continue
			case <-ctx.Done():
				return
			case <-s.closing:
				fail(ErrClosed)
				return
			}
		}
		for _, ev := range buf {
		send:
			for {
				select {
				case w.ch <- ev:
					w.cursor = ev.Revision
					break send
				case <-w.notify:
					if err := w.check(); err != nil {
						fail(err)
						return
					}
				case <-ctx.Done():
					return
				case <-s.closing:
					fail(ErrClosed)
					return
				}
			}
		}
	}
}

// next copies the events after the cursor into buf, or says why the watch must end.
func (w *watcher) next(buf []Event) ([]Event, error) {
	s := w.s
	s.logMu.RLock()
	defer s.logMu.RUnlock()
	if err := w.checkLocked(); err != nil {
		return buf, err
	}
	i := s.firstAfterLocked(w.cursor)
	j := min(len(s.events), i+watchChunk)
	return append(buf, s.events[i:j]...), nil
}

func (w *watcher) check() error {
	w.s.logMu.RLock()
	defer w.s.logMu.RUnlock()
	return w.checkLocked()
}

func (w *watcher) checkLocked() error {
	s := w.s
	if w.cursor < s.horizon {
		return fmt.Errorf("watch at revision %d: history is compacted up to %d: %w", w.cursor, s.horizon, ErrCompacted)
	}
	if w.cursor < s.logFloor {
		return fmt.Errorf("watch at revision %d: events up to %d were dropped from the log: %w", w.cursor, s.logFloor, ErrSlowWatcher)
	}
	if lag := len(s.events) - s.firstAfterLocked(max(w.cursor, w.live)); lag > s.cfg.WatchBuffer {
		return fmt.Errorf("watch at revision %d: %d events behind, more than the buffer of %d: %w", w.cursor, lag, s.cfg.WatchBuffer, ErrSlowWatcher)
	}
	return nil
}

// Changes returns the events with revision in (from, to], coalesced to the latest per key
// (deletes included), oldest first. to above the current revision means up to it. The events'
// objects are shared: callers must not modify them.
func (s *KV) Changes(from, to Revision) ([]Event, error) {
	if s.isClosed.Load() {
		return nil, ErrClosed
	}
	if to < from {
		return nil, fmt.Errorf("changes in (%d, %d]: the range is reversed: %w", from, to, ErrInvalid)
	}
	s.logMu.RLock()
	defer s.logMu.RUnlock()
	if floor := s.compactedLocked(); from < floor {
		return nil, fmt.Errorf("changes from revision %d: history is compacted up to %d: %w", from, floor, ErrCompacted)
	}
	i, j := s.firstAfterLocked(from), s.firstAfterLocked(to)
	seen := make(map[model.Key]struct{}, j-i)
	var out []Event
	for k := j - 1; k >= i; k-- {
		ev := s.events[k]
		if _, dup := seen[ev.Key]; dup {
			continue
		}
		seen[ev.Key] = struct{}{}
		out = append(out, ev)
	}
	slices.Reverse(out)
	return out, nil
}
