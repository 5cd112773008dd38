package distrib

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/store"
	"github.com/dsnscale/dsnscale/controlplane/wire"
)

// outboxLowWater is how many pushes may still wait before the next batch is computed. Waiting
// for the bus is what paces distribution: store events that arrive meanwhile join the next
// batch, so a control plane that falls behind sends fewer, larger pushes.
const outboxLowWater = 4096

// readWatch copies store events into the event queue. When the watch fails it watches again
// from the last revision it passed on or, when that history is compacted, queues a reset to a
// fresh snapshot of the store.
func (d *Distributor) readWatch(ctx context.Context, w store.Watcher, from uint64) error {
	last := from
	backoff := 50 * time.Millisecond
	for {
		depth := d.m.queueDepth.WithLabelValues("event")
		for ev := range w.Events() {
			depth.Set(float64(d.events.add(queued{ev: ev, at: d.clock.Now()})))
			last = ev.Revision
		}
		if ctx.Err() != nil {
			return nil
		}
		d.log.Warn("store watch ended; watching again", "from", last, "err", w.Err())
		for {
			var err error
			w, err = d.cfg.Store.Watch(ctx, last)
			if errors.Is(err, store.ErrCompacted) {
				view, rev := d.cfg.Store.Snapshot()
				d.events.add(queued{reset: view, resetRev: rev, at: d.clock.Now()})
				last = rev
				continue
			}
			if errors.Is(err, store.ErrClosed) {
				return err
			}
			if err == nil {
				break
			}
			d.log.Warn("watching the store", "from", last, "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
		}
	}
}

// distributeLoop turns queued store events into pushes, one batch at a time.
func (d *Distributor) distributeLoop(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-d.events.signal:
		}
		if !d.coalesce(ctx) {
			return nil
		}
		d.out.waitBelow(ctx, outboxLowWater)
		items := d.events.take()
		if len(items) > 0 {
			d.distribute(items)
		}
	}
}

// coalesce waits until the oldest store event queued is CoalesceWindow old, so that the events
// of a burst go out as one batch: one delta per group and one push per DSN. The window runs
// from the first event, so a steady stream of writes never holds a batch back for longer. It
// returns false when ctx ends.
func (d *Distributor) coalesce(ctx context.Context) bool {
	first, ok := d.events.oldest()
	if !ok || d.cfg.CoalesceWindow <= 0 {
		return true
	}
	wait := d.cfg.CoalesceWindow - d.clock.Now().Sub(first)
	if wait <= 0 {
		return true
	}
	select {
	case <-ctx.Done():
		return false
	case <-d.clock.After(wait):
		return true
	}
}

func (d *Distributor) distribute(items []queued) {
	start := time.Now() // for the batch-duration metric only
	d.mu.Lock()
	defer d.mu.Unlock()
	var evs []store.Event
	flush := func() {
		if len(evs) > 0 {
			d.applyBatch(evs)
			evs = nil
		}
	}
	for _, it := range items {
		if it.reset != nil {
			flush()
			d.applyReset(it.reset, it.resetRev)
			continue
		}
		if it.ev.Revision <= d.rev || (len(evs) > 0 && it.ev.Revision <= evs[len(evs)-1].Revision) {
			continue
		}
		d.seen.add(it.ev.Revision, it.at)
		evs = append(evs, it.ev)
	}
	flush()
	d.m.batchSeconds.Observe(time.Since(start).Seconds())
}

// applyBatch distributes the events of one batch. d.mu must be held for writing.
func (d *Distributor) applyBatch(evs []store.Event) {
	to := evs[len(evs)-1].Revision
	views := make([]*groupView, 0, len(d.groups))
	for _, g := range d.groups {
		views = append(views, g.view)
	}
	b := newBatch(d.ix, views)
	for _, ev := range evs {
		b.apply(ev)
	}
	d.m.batchEvents.Add(float64(len(evs)))
	d.finish(to, func(g *group) []wire.Change { return b.changes(g.view, to) })
}

// applyReset replaces the index with a fresh store view and distributes the difference.
func (d *Distributor) applyReset(view store.View, rev uint64) {
	if rev <= d.rev {
		d.log.Warn("store snapshot is not past the distributed revision; ignored", "snapshot", rev, "distributed", d.rev)
		return
	}
	old := make(map[*group]map[model.Key]uint64, len(d.groups))
	for _, g := range d.groups {
		old[g] = g.view.revisions(d.ix)
	}
	d.ix = indexView(view, rev)
	for _, g := range d.groups {
		g.view.rebuild(d.ix)
	}
	d.finish(rev, func(g *group) []wire.Change { return diffViews(old[g], g.view.objects(d.ix), rev) })
}

// finish advances the distributed revision to to, records each group's delta and pushes it:
// the group's push is encoded once and the same bytes go to every member the previous push
// left at the previous revision; other members get a catch-up of their own.
func (d *Distributor) finish(to uint64, changesFor func(*group) []wire.Change) {
	prev := d.rev
	now := d.clock.Now()
	d.rev = to
	d.bnds.add(to)
	oldest := d.bnds.oldest()
	var current *outMsg // the same current push serves every group without changes
	for _, g := range d.groups {
		cs := changesFor(g)
		g.log = g.log.add(groupDelta{from: prev, to: to, changes: cs}, oldest)
		g.cache = nil
		var shared *outMsg
		for m := range g.members {
			if !m.live() {
				continue
			}
			if m.waitRev == 0 && m.applied < to {
				m.waitRev, m.waitSince = to, now
			}
			if m.lastSent == prev {
				if shared == nil {
					if len(cs) == 0 {
						if current == nil {
							current = d.encode(pushFor(prev, to, nil))
						}
						shared = current
					} else {
						shared = d.encode(pushFor(prev, to, cs))
					}
				}
				if shared.data != nil && len(shared.data) <= d.maxPush {
					d.push(m, shared)
					m.lastSent = to
					continue
				}
			}
			d.catchUp(m)
		}
	}
	d.m.revision.Set(float64(to))
	d.m.batches.Inc()
	d.m.queueDepth.WithLabelValues("event").Set(float64(d.events.len()))
}

// encode encodes a push once; on failure (which would be a bug) data is nil.
func (d *Distributor) encode(p *wire.Push) *outMsg {
	b, err := json.Marshal(p)
	if err != nil {
		d.log.Error("encoding a push", "type", p.Type, "err", err)
	}
	return &outMsg{data: b, typ: p.Type}
}

// catchUp sends m what brings it from the last push sent to the distributed revision: a delta
// from history, or a resync. d.mu must be held for writing.
func (d *Distributor) catchUp(m *dsn) {
	if !m.live() || m.lastSent >= d.rev || m.awaitSnapshot {
		return
	}
	if p, ok := d.deltaFrom(m.group, m.lastSent); ok {
		d.push(m, p)
		m.lastSent = d.rev
		return
	}
	d.resync(m, "history does not reach back to the applied revision")
}

// deltaFrom is the push that brings a member of g from revision from to the distributed one,
// if history covers from and the push fits in a message.
func (d *Distributor) deltaFrom(g *group, from uint64) (*outMsg, bool) {
	if !d.historyCovers(g, from) {
		return nil, false
	}
	if c := g.cache; c != nil && c.from == from {
		return c.msg, c.msg.data != nil && len(c.msg.data) <= d.maxPush
	}
	p := d.encode(pushFor(from, d.rev, g.log.since(from)))
	g.cache = &catchUpCache{from: from, msg: p}
	return p, p.data != nil && len(p.data) <= d.maxPush
}

// resync tells m to replace its config with the group's snapshot, then catch up from it. If
// the group has no usable snapshot yet, one is written first.
func (d *Distributor) resync(m *dsn, reason string) {
	ref, catch, ok := d.usableSnapshot(m.group)
	if !ok {
		m.awaitSnapshot = true
		d.requestSnapshot(m.group)
		return
	}
	m.awaitSnapshot = false
	d.push(m, d.encode(&wire.Push{Type: wire.PushResync, To: ref.Revision, Snapshot: ref, Reason: reason}))
	m.lastSent = ref.Revision
	m.replacing = true
	if catch != nil {
		d.push(m, catch)
		m.lastSent = d.rev
	}
}

// usableSnapshot returns g's snapshot and the push that catches up from it (nil if the
// snapshot is current), when there is a snapshot history can catch up from.
func (d *Distributor) usableSnapshot(g *group) (*wire.SnapshotRef, *outMsg, bool) {
	s := g.snap
	if s == nil {
		return nil, nil, false
	}
	if s.Revision == d.rev {
		return s, nil, true
	}
	p, ok := d.deltaFrom(g, s.Revision)
	if !ok {
		return nil, nil, false
	}
	return s, p, true
}

// historyCovers reports whether g's delta log holds every change of its view after rev: rev
// is a batch boundary history still has, and g existed then (a group created later, by a new
// label set or by a replica taking over a partition, logs only the batches after it).
func (d *Distributor) historyCovers(g *group, rev uint64) bool {
	return rev >= g.born && d.bnds.covers(rev)
}

// catchUpCache keeps a group's last catch-up push: after a restart storm, many members catch
// up from the same snapshot revision.
type catchUpCache struct {
	from uint64
	msg  *outMsg
}
