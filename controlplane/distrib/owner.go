package distrib

import (
	"context"
	"errors"
	"fmt"
	"maps"
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

	mu    sync.Mutex // guards store and l (set when Run starts) and l's state
	store *kvLeases
	l     *leaser

	// held[p] is the Unix time in nanoseconds until which this replica holds partition p (0:
	// not at all); adopted[p] says the registry was read for p since it was gained, and gen[p]
	// counts the gains. The replica serves p while it holds and has adopted it. Handlers read
	// them without the distributor's lock.
	held    []atomic.Int64
	adopted []atomic.Bool
	gen     []atomic.Uint64
	adopt   chan struct{} // signals partitions gained and not adopted yet
}

func newOwnership(parts int) *ownership {
	return &ownership{parts: parts, held: make([]atomic.Int64, parts), adopted: make([]atomic.Bool, parts),
		gen: make([]atomic.Uint64, parts), adopt: make(chan struct{}, 1)}
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
	// Serving is how many partitions this replica serves: those it holds, less those whose
	// registry it is still reading after gaining them.
	Serving int `json:"serving"`
}

// Ownership reports which replica holds each partition, as this replica last read the owners
// bucket; ok is false when ownership is off (Config.Replica empty).
func (d *Distributor) Ownership() (r OwnershipReport, ok bool) {
	o := d.own
	if o == nil {
		return OwnershipReport{}, false
	}
	now := d.clock.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.l == nil {
		return OwnershipReport{}, false // not started
	}
	ents := o.store.entries()
	r = OwnershipReport{Replica: d.cfg.Replica, Partitions: make([]string, o.parts), Live: slices.Clone(o.l.live), Held: map[string]int{}}
	for _, name := range r.Live {
		r.Held[name] = 0
	}
	for _, served := range d.servedPartitions() {
		if served {
			r.Serving++
		}
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
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.l == nil {
		return ""
	}
	return o.ownerLocked(o.store.entries(), Partition(id, o.parts), d.clock.Now())
}

// mine reports whether this replica serves the DSN of id: always without ownership.
func (d *Distributor) mine(id string) bool {
	if d.own == nil {
		return true
	}
	return d.servesPart(Partition(id, d.own.parts))
}

// servesPart reports whether this replica serves partition p now. d.own must be set.
func (d *Distributor) servesPart(p int) bool {
	o := d.own
	return o.adopted[p].Load() && d.clock.Now().UnixNano() < o.held[p].Load()
}

// partition is the partition of DSN id with ownership on, 0 without.
func (d *Distributor) partition(id string) int {
	if d.own == nil {
		return 0
	}
	return Partition(id, d.own.parts)
}

// servedPartitions returns the set of partitions this replica serves now.
func (d *Distributor) servedPartitions() []bool {
	o := d.own
	out := make([]bool, o.parts)
	now := d.clock.Now().UnixNano()
	for p := range out {
		out[p] = o.adopted[p].Load() && now < o.held[p].Load()
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
	d.own.mu.Lock()
	d.own.store, d.own.l = s, newLeaser(d.cfg.Replica, d.cfg.Partitions, d.cfg.Lease, d.clock, s)
	d.own.mu.Unlock()
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
			d.applyHeld(nil)
			rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			d.own.mu.Lock()
			d.own.l.release(rctx)
			d.own.mu.Unlock()
			cancel()
			return nil
		case <-t.C():
			if err := d.ownTick(ctx); err != nil {
				return err
			}
		}
	}
}

// ownTick runs one round of the leases and applies what this replica now holds. Only a
// disagreement on the partition count is fatal.
func (d *Distributor) ownTick(ctx context.Context) error {
	o := d.own
	// Writes that outlast the lease still count: a renewal known to have landed is renewed
	// again on its revision, where an abandoned one would look like a lost lease.
	tctx, cancel := context.WithTimeout(ctx, d.cfg.Lease)
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
	d.applyHeld(held)
	return nil
}

// applyHeld records the partitions held (partition -> end of the lease): it stops serving the
// others at once, and hands those gained to adoptLoop, which serves them once it has read the
// registry.
func (d *Distributor) applyHeld(held map[int]time.Time) {
	o := d.own
	lost := map[int]bool{}
	gained := 0
	for p := range o.held {
		until, ok := held[p]
		switch cur := o.held[p].Load(); {
		case !ok && cur != 0:
			o.adopted[p].Store(false)
			o.held[p].Store(0)
			lost[p] = true
		case ok && cur == 0:
			o.gen[p].Add(1)
			o.held[p].Store(until.UnixNano())
			gained++
		case ok:
			o.held[p].Store(until.UnixNano())
		}
	}
	if len(lost) > 0 {
		d.dropPartitions(lost)
		d.log.Info("partitions lost", "partitions", len(lost))
	}
	if gained > 0 {
		notify(o.adopt)
	}
	d.m.ownedPartitions.Set(float64(len(held)))
}

// adoptLoop reads the registry for the partitions gained and then serves them. It runs apart
// from the lease loop, so that reading a large registry never delays a renewal.
func (d *Distributor) adoptLoop(ctx context.Context) error {
	o := d.own
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-o.adopt:
		}
		gens := map[int]uint64{}
		for p := range o.held {
			if o.held[p].Load() != 0 && !o.adopted[p].Load() {
				gens[p] = o.gen[p].Load()
			}
		}
		if len(gens) == 0 {
			continue
		}
		if err := d.adoptPartitions(ctx, slices.Sorted(maps.Keys(gens))); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			d.log.Warn("partitions not taken over: reading the registry", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-d.clock.After(d.cfg.Lease / 3):
			}
			notify(o.adopt)
			continue
		}
		n := 0
		for p, g := range gens {
			// A partition lost (and perhaps gained again) meanwhile waits for the next read.
			if o.gen[p].Load() == g && o.held[p].Load() != 0 {
				o.adopted[p].Store(true)
				n++
			}
		}
		d.log.Info("partitions gained", "partitions", n)
	}
}

// dropPartitions ends the sessions of the DSNs of the partitions lost: nothing more is pushed
// to them, and their next heartbeat reaches the new owner.
func (d *Distributor) dropPartitions(lost map[int]bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, m := range d.dsns {
		if lost[m.part] {
			d.endSessionLocked(m)
		}
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
			m = &dsn{id: r.ID, pushSubject: wire.PushSubject(r.ID), part: d.partition(r.ID), offline: true}
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
