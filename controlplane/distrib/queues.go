package distrib

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/store"
)

// outMsg is one push waiting to be published.
type outMsg struct {
	subject string
	data    []byte
	typ     string
}

// outbox holds pushes in the order the distributor decided them; one publisher drains it, so
// that a DSN receives its pushes in order whichever goroutine decided them.
type outbox struct {
	mu       sync.Mutex
	q        []outMsg
	depth    atomic.Int64 // queued plus being published
	signal   chan struct{}
	progress chan struct{}
}

func newOutbox() *outbox {
	return &outbox{signal: make(chan struct{}, 1), progress: make(chan struct{}, 1)}
}

func (o *outbox) add(m outMsg) {
	o.mu.Lock()
	o.q = append(o.q, m)
	o.mu.Unlock()
	o.depth.Add(1)
	notify(o.signal)
}

// take returns the queued pushes, or nil if there are none, and gives spare (a slice the
// caller is done with) to the queue for reuse.
func (o *outbox) take(spare []outMsg) []outMsg {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.q) == 0 {
		return nil
	}
	out := o.q
	o.q = spare[:0]
	return out
}

func (o *outbox) done(n int) {
	o.depth.Add(int64(-n))
	notify(o.progress)
}

// waitBelow blocks until fewer than n pushes wait, or ctx ends.
func (o *outbox) waitBelow(ctx context.Context, n int64) {
	for o.depth.Load() >= n {
		select {
		case <-ctx.Done():
			return
		case <-o.progress:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// queued is one item of the event queue: a store event, or a reset to a new store view after
// the watch lost its place.
type queued struct {
	ev       store.Event
	at       time.Time
	reset    store.View
	resetRev uint64
}

// eventQueue passes store events from the watch reader to the distribution loop without ever
// blocking the reader, so that a slow distribution coalesces events instead of losing the watch.
type eventQueue struct {
	mu     sync.Mutex
	q      []queued
	signal chan struct{}
}

func newEventQueue() *eventQueue { return &eventQueue{signal: make(chan struct{}, 1)} }

// add queues it and returns how many items are queued.
func (e *eventQueue) add(it queued) int {
	e.mu.Lock()
	e.q = append(e.q, it)
	n := len(e.q)
	e.mu.Unlock()
	notify(e.signal)
	return n
}

func (e *eventQueue) take() []queued {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.q
	e.q = nil
	return out
}

// oldest returns when the first item queued was read, if any is.
func (e *eventQueue) oldest() (time.Time, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.q) == 0 {
		return time.Time{}, false
	}
	return e.q[0].at, true
}

func (e *eventQueue) len() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.q)
}

// revTimes remembers when the distributor first saw each recent revision, to measure
// propagation from commit to ack.
type revTimes struct {
	limit int
	revs  []uint64
	times []time.Time
}

func (r *revTimes) add(rev uint64, at time.Time) {
	if n := len(r.revs); n > 0 && r.revs[n-1] >= rev {
		return
	}
	r.revs = append(r.revs, rev)
	r.times = append(r.times, at)
	if over := len(r.revs) - r.limit; over > 0 {
		over = max(over, r.limit/8)
		r.revs = append(r.revs[:0], r.revs[over:]...)
		r.times = append(r.times[:0], r.times[over:]...)
	}
}

// at returns when rev (or the first later revision seen) was seen.
func (r *revTimes) at(rev uint64) (time.Time, bool) {
	i, found := slices.BinarySearch(r.revs, rev)
	if i == len(r.revs) || (i == 0 && !found) {
		return time.Time{}, false // not seen yet, or before the remembered window
	}
	return r.times[i], true
}
