package distrib

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dsnscale/dsnscale/controlplane/wire"
)

// Ownership: when several control-plane replicas share one bus and one set of buckets
// (Config.Replica set), DSNs are split into Config.Partitions partitions by a stable hash of
// their id, and each partition is leased by one replica in the owners bucket. A replica serves
// (admits, pushes to, tracks) only the DSNs of the partitions it holds; the others' messages
// reach it too and are dropped after a hash of the subject's id. When it gains a partition it
// re-reads the registry, so that the DSNs it takes over are known (an up-to-date one is
// admitted with a version check), and the takeover itself needs nothing new from DSNs: their
// heartbeats carry a session the new owner does not know, which it answers with a rehello
// push, as a restarted control plane does. When it loses a partition it ends those DSNs'
// sessions at once, so nothing more is pushed to them.

// ownership is a Distributor's share of the partitions.
type ownership struct {
	parts int
	store *kvLeases

	mu sync.Mutex // guards l
	l  *leaser

	// serving[p] is the Unix time in nanoseconds until which this replica serves partition p
	// (0: not at all). Handlers read it without the distributor's lock.
	serving []atomic.Int64
}

// OwnershipReport says which replica serves which partition of the DSNs.
type OwnershipReport struct {
	// Replica is the replica that made the report.
	Replica string `json:"replica"`
	// Partitions[p] is the replica holding partition p, or empty when none does (it expired
	// and has not been taken yet).
	Partitions []string `json:"partitions"`
	// Live are the replicas whose heartbeat moved within a lease period, this one included.
	Live []string `json:"live"`
	// Held is how many partitions each live replica holds.
	Held map[string]int `json:"held"`
}

// Ownership reports which replica holds each partition, as this replica last read the owners
// bucket; ok is false when ownership is off (Config.Replica empty).
func (d *Distributor) Ownership() (r OwnershipReport, ok bool) {
	o := d.own
	if o == nil {
		return OwnershipReport{}, false
	}
	now := d.clock.Now()
	ents := o.store.entries()
	o.mu.Lock()
	defer o.mu.Unlock()
	r = OwnershipReport{Replica: d.cfg.Replica, Partitions: make([]string, o.parts), Live: slices.Clone(o.l.live), Held: map[string]int{}}
	for _, name := range r.Live {
		r.Held[name] = 0
	}
	for p := range r.Partitions {
		if owner := o.ownerLocked(ents, p, now); owner != "" {
			r.Partitions[p] = owner
			r.Held[owner]++
		}
	}
	return r, true
}

// ownerLocked is the replica holding p as last read: the lease's owner unless the lease has
// not moved for a lease period (it expired). o.mu must be held.
func (o *ownership) ownerLocked(ents map[string]leaseEntry, p int, now time.Time) string {
	if o.l.owns(p, now) {
		return o.l.name
	}
	k := partitionKey(p)
	e, ok := ents[k]
	if !ok {
		return ""
	}
	if s, seen := o.l.seen[k]; seen && s.revision == e.revision && now.Sub(s.at) >= o.l.lease {
		return ""
	}
	return ownerOf(e.value)
}

// ownerOfDSN is the replica holding id's partition, or empty when none does.
func (d *Distributor) ownerOfDSN(id string) string {
	o := d.own
	ents := o.store.entries()
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.ownerLocked(ents, Partition(id, o.parts), d.clock.Now())
}

// mine reports whether this replica serves the DSN of id: always without ownership.
func (d *Distributor) mine(id string) bool {
	o := d.own
	if o == nil {
		return true
	}
	u := o.serving[Partition(id, o.parts)].Load()
	return u != 0 && d.clock.Now().UnixNano() < u
}

// servedPartitions returns the set of partitions this replica serves now.
func (d *Distributor) servedPartitions() []bool {
	o := d.own
	out := make([]bool, o.parts)
	now := d.clock.Now().UnixNano()
	for p := range out {
		u := o.serving[p].Load()
		out[p] = u != 0 && now < u
	}
	return out
}

// owned wraps a handler of per-DSN subjects so that it sees only the DSNs this replica serves.
func (d *Distributor) owned(h nats.MsgHandler) nats.MsgHandler {
	return func(msg *nats.Msg) {
		id, ok := wire.DSNFromSubject(msg.Subject)
		if !ok {
			id = msg.Subject // invalid: one replica (by hash) reports it
		}
		if !d.mine(id) {
			return
		}
		h(msg)
	}
}

// openOwnership binds the owners bucket and starts reading it.
func (d *Distributor) openOwnership(ctx context.Context) error {
	kv, err := d.cfg.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: d.cfg.OwnersBucket, Description: "DSN partition leases", History: 1, Replicas: d.cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("distrib: owners bucket %q: %w", d.cfg.OwnersBucket, err)
	}
	s := &kvLeases{kv: kv, cur: map[string]leaseEntry{}, log: d.log}
	if err := s.load(ctx); err != nil {
		return err
	}
	d.own = &ownership{parts: d.cfg.Partitions, store: s, serving: make([]atomic.Int64, d.cfg.Partitions),
		l: newLeaser(d.cfg.Replica, d.cfg.Partitions, d.cfg.Lease, d.clock, s)}
	return nil
}

// ownLoop renews and rebalances the leases every third of a lease period until ctx ends, then
// stops serving and releases them so that the other replicas take over at once.
func (d *Distributor) ownLoop(ctx context.Context) error {
	t := d.clock.NewTicker(d.cfg.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			d.applyHeld(ctx, nil)
			rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			d.own.mu.Lock()
			d.own.l.release(rctx)
			d.own.mu.Unlock()
			cancel()
			return nil
		case <-t.C():
			if err := d.ownTick(ctx, true); err != nil {
				return err
			}
		}
	}
}

// ownTick runs one round of the leases and serves what this replica now holds. reload re-reads
// the registry for the partitions gained. Only a disagreement on the partition count is fatal.
func (d *Distributor) ownTick(ctx context.Context, reload bool) error {
	o := d.own
	tctx, cancel := context.WithTimeout(ctx, d.cfg.Lease/3)
	o.mu.Lock()
	err := o.l.tick(tctx)
	held := o.l.held(d.clock.Now())
	o.mu.Unlock()
	cancel()
	if errors.Is(err, errPartitionCount) {
		return fmt.Errorf("distrib: %w", err)
	}
	if err != nil && ctx.Err() == nil {
		d.log.Warn("partition leases", "err", err)
	}
	if !reload {
		for p, until := range held {
			o.serving[p].Store(until.UnixNano())
		}
		d.m.ownedPartitions.Set(float64(len(held)))
		return nil
	}
	d.applyHeld(ctx, held)
	return nil
}

// applyHeld makes the partitions served those of held (partition -> end of the lease): it
// stops serving the others at once and, for those gained, reads the registry before serving
// them.
func (d *Distributor) applyHeld(ctx context.Context, held map[int]time.Time) {
	o := d.own
	lost := map[int]bool{}
	var gained []int
	for p := range o.serving {
		until, ok := held[p]
		switch cur := o.serving[p].Load(); {
		case !ok && cur != 0:
			o.serving[p].Store(0)
			lost[p] = true
		case ok && cur == 0:
			gained = append(gained, p)
		case ok:
			o.serving[p].Store(until.UnixNano())
		}
	}
	if len(lost) > 0 {
		d.dropPartitions(lost)
		d.log.Info("partitions lost", "partitions", len(lost))
	}
	if len(gained) > 0 {
		if err := d.adoptPartitions(ctx, gained); err != nil {
			d.log.Warn("partitions not taken over: reading the registry", "err", err)
			return // taken on the next round
		}
		for _, p := range gained {
			o.serving[p].Store(held[p].UnixNano())
		}
		d.log.Info("partitions gained", "partitions", len(gained))
	}
	d.m.ownedPartitions.Set(float64(len(held)))
}

// dropPartitions ends the sessions of the DSNs of the partitions lost: nothing more is pushed
// to them, and their next heartbeat reaches the new owner.
func (d *Distributor) dropPartitions(lost map[int]bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, m := range d.dsns {
		if m.session == "" || !lost[Partition(m.id, d.own.parts)] {
			continue
		}
		m.session = ""
		m.waitRev, m.waitSince = 0, time.Time{}
		m.awaitSnapshot, m.replacing = false, false
		d.releaseSlot(m)
	}
}

// adoptPartitions re-reads the registry for the DSNs of the partitions gained: DSNs registered
// by other replicas since this one loaded it become known (offline until they say Hello), and
// DSNs decommissioned meanwhile are forgotten.
func (d *Distributor) adoptPartitions(ctx context.Context, gained []int) error {
	recs, err := loadRegistry(ctx, d.kv, d.log)
	if err != nil {
		return err
	}
	in := make([]bool, d.own.parts)
	for _, p := range gained {
		in[p] = true
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	present := map[string]bool{}
	for _, r := range recs {
		if !in[Partition(r.ID, d.own.parts)] {
			continue
		}
		present[r.ID] = true
		m := d.dsns[r.ID]
		if m == nil {
			m = &dsn{id: r.ID, pushSubject: wire.PushSubject(r.ID), offline: true}
			d.dsns[r.ID] = m
		} else if m.session != "" {
			continue
		}
		m.tenant, m.labels, m.spec, m.admittedAt, m.registered, m.relabelled = r.Tenant, r.Labels, r.Spec, r.AdmittedAt, true, false
		d.join(m, d.groupFor(r.Tenant, r.Labels))
	}
	for id, m := range d.dsns {
		if in[Partition(id, d.own.parts)] && !present[id] && m.session == "" {
			d.releaseSlot(m)
			d.leave(m)
			delete(d.dsns, id)
		}
	}
	d.m.known.Set(float64(len(d.dsns)))
	return nil
}

// kvLeases is the owners bucket, read through a watch that keeps the latest entries.
type kvLeases struct {
	kv  jetstream.KeyValue
	log interface {
		Warn(msg string, args ...any)
	}
	mu  sync.Mutex
	cur map[string]leaseEntry
}

// load reads the bucket's entries and keeps following it until ctx ends.
func (s *kvLeases) load(ctx context.Context) error {
	w, err := s.kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("distrib: reading the owners bucket: %w", err)
	}
	for {
		select {
		case <-ctx.Done():
			_ = w.Stop()
			return ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("distrib: reading the owners bucket: watch closed")
			}
			if e == nil {
				go s.follow(ctx, w)
				return nil
			}
			s.apply(e)
		}
	}
}

func (s *kvLeases) apply(e jetstream.KeyValueEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.Operation() == jetstream.KeyValuePut {
		s.cur[e.Key()] = leaseEntry{value: e.Value(), revision: e.Revision()}
	} else {
		delete(s.cur, e.Key())
	}
}

// follow applies the watch's updates; when the watch ends before ctx, it watches again.
func (s *kvLeases) follow(ctx context.Context, w jetstream.KeyWatcher) {
	for {
		for e := range w.Updates() {
			if e != nil {
				s.apply(e)
			}
		}
		_ = w.Stop()
		for {
			if ctx.Err() != nil {
				return
			}
			var err error
			if w, err = s.kv.WatchAll(ctx); err == nil {
				break
			}
			s.log.Warn("watching the owners bucket", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
}

func (s *kvLeases) entries() map[string]leaseEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]leaseEntry, len(s.cur))
	for k, e := range s.cur {
		out[k] = e
	}
	return out
}

func (s *kvLeases) create(ctx context.Context, key string, value []byte) (uint64, error) {
	rev, err := s.kv.Create(ctx, key, value)
	return rev, leaseErr(err)
}

func (s *kvLeases) update(ctx context.Context, key string, value []byte, last uint64) (uint64, error) {
	rev, err := s.kv.Update(ctx, key, value, last)
	return rev, leaseErr(err)
}

func (s *kvLeases) remove(ctx context.Context, key string, last uint64) error {
	return leaseErr(s.kv.Delete(ctx, key, jetstream.LastRevision(last)))
}

func leaseErr(err error) error {
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return fmt.Errorf("%w: %w", errLeaseConflict, err)
	}
	return err
}
