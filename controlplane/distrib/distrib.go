// Package distrib is the southbound side of the reference control plane: it admits DSNs,
// distributes each one's config view (a snapshot in a JetStream object store, then pushed
// deltas), tracks what every DSN has applied, and acts on stragglers. docs/PROTOCOL.md
// describes the protocol it speaks; package wire holds its messages.
//
// DSNs with the same labels form a group and share a view: the Policies whose selector matches
// the labels and the Networks they name. For every batch of store changes the distributor
// computes each group's delta once, encodes it once and publishes the same bytes to each DSN of
// the group that is where the previous push left it; every DSN's desired revision advances with
// every batch, and DSNs the batch does not touch get a payload-free "current" push, so that a
// DSN has converged on revision N exactly when its applied revision is at least N.
package distrib

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/time/rate"

	"github.com/dsnscale/dsnscale/controlplane/api"
	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/wire"
)

var _ api.Fleet = (*Distributor)(nil)

// ackRing is how many recent acks a DSN's status keeps.
const ackRing = 16

// dsn is the distributor's record of one DSN: its registry entry and its live state.
type dsn struct {
	id          string
	pushSubject string
	part        int    // the DSN's partition with ownership on
	tenant      string // the admitted tenant; empty for a DSN with no admission record
	labels      map[string]string
	spec        model.DSNSpec
	admittedAt  time.Time
	group       *group
	registered  bool // persisted in the registry bucket
	relabelled  bool // labels changed by the API since the last admission: what it has is another view

	// Live state, rebuilt from Hellos, acks and heartbeats.
	session       string
	sessionStart  time.Time
	lastHeard     time.Time
	offline       bool
	quarantined   bool
	applied       uint64
	lastSent      uint64  // the revision the last push sent brings the DSN to
	acks          []ackAt // most recent, oldest first
	lastError     string
	lastErrorRev  uint64 // the revision the DSN was pushed when it failed: what it did not apply
	lastErrorAt   time.Time
	awaitSnapshot bool // a resync waits for the group's snapshot to be written
	replacing     bool // a snapshot was sent: the next ack may lower the applied revision

	// Straggler tracking: the DSN should have reached waitRev, desired since waitSince.
	waitRev        uint64
	waitSince      time.Time
	lastAction     time.Time
	ladder         int // corrective steps taken since the DSN last made progress
	corrective     model.CorrectiveCount
	lastCorrective string

	// A sync slot, held from an admission with a delta or snapshot until the DSN acks
	// slotTarget.
	slot       bool
	slotTarget uint64
	slotSince  time.Time
}

// live reports whether the DSN has a session the distributor pushes to.
func (m *dsn) live() bool { return m.session != "" && !m.offline && !m.quarantined }

// ackAt is one ack: the revision and when it arrived.
type ackAt struct {
	rev uint64
	at  time.Time
}

// group is a label group: its view, members, delta history and snapshot.
type group struct {
	id      string
	tenant  string
	born    uint64 // the distributed revision when the group was created: its log starts there
	view    *groupView
	members map[*dsn]struct{}
	log     deltaLog
	cache   *catchUpCache
	snap    *wire.SnapshotRef
	writing chan struct{} // non-nil while a snapshot write runs; closed when it ends
	waiters int           // admissions waiting for the group's snapshot
}

// Distributor distributes config to DSNs and tracks what they applied. It implements
// api.Fleet. Create it with New and start it with Run.
type Distributor struct {
	cfg   Config
	log   *slog.Logger
	clock Clock
	m     *metrics
	ready chan struct{}

	mu       sync.RWMutex
	loaded   bool
	rev      uint64
	ix       *index
	groups   map[string]*group
	dsns     map[string]*dsn
	bnds     bounds
	seen     revTimes
	syncs    int
	rehello  map[string]time.Time // when each unknown session was last told to Hello again
	refresh  time.Time            // when snapshots were last refreshed on schedule
	maxPush  int
	snapReqs chan *group

	running atomic.Bool
	kv      jetstream.KeyValue
	obsMu   sync.Mutex
	obs     map[string]jetstream.ObjectStore // by tenant
	out     *outbox
	events  *eventQueue
	hellos  chan queuedHello
	helloMu sync.Mutex
	latest  map[string]uint64 // per DSN subject, the number of its newest queued Hello
	reg     *registryWriter
	own     *ownership // nil without ownership: this replica serves every DSN
}

// New returns a Distributor for cfg. It does no I/O: Run does.
func New(cfg Config) (*Distributor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("distrib: registering metrics: %w", err)
	}
	m.coalesceWindow.Set(cfg.CoalesceWindow.Seconds())
	d := &Distributor{
		cfg:      cfg,
		log:      cfg.Logger,
		clock:    cfg.Clock,
		m:        m,
		ready:    make(chan struct{}),
		ix:       newIndex(),
		groups:   map[string]*group{},
		dsns:     map[string]*dsn{},
		bnds:     bounds{limit: cfg.HistoryBatches},
		seen:     revTimes{limit: 1 << 16},
		rehello:  map[string]time.Time{},
		snapReqs: make(chan *group, 4096),
		out:      newOutbox(),
		events:   newEventQueue(),
		hellos:   make(chan queuedHello, cfg.HelloQueue),
		latest:   map[string]uint64{},
	}
	if cfg.Replica != "" {
		d.own = newOwnership(cfg.Partitions)
	}
	return d, nil
}

// Ready reports whether Run has loaded the registry and the store and subscribed to DSNs.
func (d *Distributor) Ready() bool {
	select {
	case <-d.ready:
		return true
	default:
		return false
	}
}

// WaitReady blocks until the distributor is ready or ctx ends.
func (d *Distributor) WaitReady(ctx context.Context) error {
	select {
	case <-d.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Revision is the store revision the distributor has processed: every live DSN's desired
// revision.
func (d *Distributor) Revision() uint64 {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.rev
}

// Run serves DSNs until ctx ends. It returns nil when ctx ends, or the error that stopped it.
func (d *Distributor) Run(ctx context.Context) error {
	if !d.running.CompareAndSwap(false, true) {
		return errors.New("distrib: Run called twice")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := d.open(ctx); err != nil {
		return err
	}
	if d.own != nil {
		if err := d.openOwnership(ctx); err != nil {
			return err
		}
	}

	var (
		wg      sync.WaitGroup
		fatalMu sync.Mutex
		fatal   error
	)
	spawn := func(f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && ctx.Err() == nil {
				fatalMu.Lock()
				fatal = errors.Join(fatal, err)
				fatalMu.Unlock()
				cancel()
			}
		}()
	}

	view, rev := d.cfg.Store.Snapshot()
	w, err := d.cfg.Store.Watch(ctx, rev)
	if err != nil {
		return fmt.Errorf("distrib: watching the store from %d: %w", rev, err)
	}
	d.mu.Lock()
	d.ix = indexView(view, rev)
	d.rev = rev
	d.bnds.reset(rev)
	for _, g := range d.groups {
		g.view.rebuild(d.ix)
	}
	d.loaded = true
	d.m.revision.Set(float64(rev))
	d.mu.Unlock()

	spawn(func(ctx context.Context) error { return d.readWatch(ctx, w, rev) })
	spawn(d.distributeLoop)
	spawn(d.publishLoop)
	spawn(d.maintainLoop)
	spawn(d.snapshotLoop)
	spawn(d.reg.run)
	if d.own != nil {
		if err := d.ownTick(ctx); err != nil {
			cancel()
			wg.Wait()
			return err
		}
		// The registry was just read: the first partitions are served at once.
		for p := range d.own.held {
			if d.own.held[p].Load() != 0 {
				d.own.adopted[p].Store(true)
			}
		}
		spawn(d.ownLoop)
		spawn(d.adoptLoop)
	}
	for i := 0; i < d.cfg.HelloWorkers; i++ {
		spawn(d.helloWorker)
	}

	subs, err := d.subscribe()
	if err != nil {
		cancel()
		wg.Wait()
		return err
	}
	d.mu.RLock()
	d.log.Info("distributor ready", "revision", rev, "dsns", len(d.dsns), "groups", len(d.groups))
	d.mu.RUnlock()
	close(d.ready)

	<-ctx.Done()
	for _, s := range subs {
		_ = s.Unsubscribe()
	}
	wg.Wait()
	return fatal
}

// open creates or binds the buckets and loads the registry.
func (d *Distributor) open(ctx context.Context) error {
	kv, err := d.cfg.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: d.cfg.RegistryBucket, Description: "DSN registry", History: 1, Replicas: d.cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("distrib: registry bucket %q: %w", d.cfg.RegistryBucket, err)
	}
	d.obs = map[string]jetstream.ObjectStore{}
	if _, err := d.snapshotStore(ctx, ""); err != nil {
		return err
	}
	d.kv = kv
	d.reg = newRegistryWriter(kv, d.log, d.m)
	recs, err := loadRegistry(ctx, kv, d.log)
	if err != nil {
		return err
	}
	d.maxPush = int(d.cfg.Conn.MaxPayload()) - 4096
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range recs {
		m := &dsn{id: r.ID, pushSubject: wire.PushSubject(r.ID), part: d.partition(r.ID), tenant: r.Tenant, labels: r.Labels, spec: r.Spec,
			admittedAt: r.AdmittedAt, registered: true, offline: true}
		d.dsns[r.ID] = m
		d.join(m, d.groupFor(r.Tenant, r.Labels))
	}
	d.m.known.Set(float64(len(d.dsns)))
	return nil
}

// subscribe subscribes to Hellos, acks and heartbeats, and with ownership to the fleet-wide
// reads of other replicas.
func (d *Distributor) subscribe() ([]*nats.Subscription, error) {
	nc := d.cfg.Conn
	var subs []*nats.Subscription
	add := func(subject string, h nats.MsgHandler) error {
		var s *nats.Subscription
		var err error
		if d.own == nil {
			s, err = nc.QueueSubscribe(subject, wire.QueueGroup, h)
		} else {
			// Every replica hears every DSN and keeps those of its partitions.
			s, err = nc.Subscribe(subject, d.owned(h))
		}
		if err != nil {
			return fmt.Errorf("distrib: subscribing to %s: %w", subject, err)
		}
		_ = s.SetPendingLimits(1<<20, 256<<20)
		subs = append(subs, s)
		return nil
	}
	err := errors.Join(
		add(wire.AllHellos, d.enqueueHello),
		add(wire.AllAcks, d.handleAck),
		add(wire.AllHeartbeats, d.handleHeartbeat),
	)
	if err == nil && d.own != nil {
		var s *nats.Subscription
		if s, err = d.subscribeFleet(); err == nil {
			subs = append(subs, s)
		}
	}
	if err == nil {
		err = nc.Flush()
	}
	if err != nil {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
		return nil, err
	}
	return subs, nil
}

// publishLoop drains the outbox onto the bus, paced by MaxPushRate.
func (d *Distributor) publishLoop(ctx context.Context) error {
	var lim *rate.Limiter
	if d.cfg.MaxPushRate > 0 {
		lim = rate.NewLimiter(rate.Limit(d.cfg.MaxPushRate), max(1, int(d.cfg.MaxPushRate/10)))
	}
	counters := map[string]interface{ Inc() }{}
	for _, t := range []string{wire.PushDelta, wire.PushCurrent, wire.PushResync, wire.PushQuarantine, wire.PushRehello} {
		counters[t] = d.m.pushes.WithLabelValues(t)
	}
	var buf []outMsg
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-d.out.signal:
		}
		for {
			batch := d.out.take(buf)
			if len(batch) == 0 {
				break
			}
			var bytes int
			for i, msg := range batch {
				if lim != nil {
					if err := lim.Wait(ctx); err != nil {
						return nil
					}
				}
				if err := d.cfg.Conn.Publish(msg.subject, msg.data); err != nil {
					d.m.pushErrors.Inc()
					d.log.Debug("push not published", "subject", msg.subject, "err", err)
				}
				counters[msg.typ].Inc()
				bytes += len(msg.data)
				if i%512 == 511 {
					d.out.done(512)
				}
			}
			d.out.done(len(batch) % 512)
			d.m.pushBytes.Add(float64(bytes))
			clear(batch)
			buf = batch
		}
	}
}

// snapshotStore returns the object store of tenant's group snapshots, creating its bucket on
// first use. Each tenant has a bucket of its own so that the bus's per-identity permissions
// can refuse a DSN every other tenant's snapshots.
func (d *Distributor) snapshotStore(ctx context.Context, tenant string) (jetstream.ObjectStore, error) {
	d.obsMu.Lock()
	defer d.obsMu.Unlock()
	if o := d.obs[tenant]; o != nil {
		return o, nil
	}
	bucket := wire.SnapshotBucketFor(tenant)
	o, err := d.cfg.JS.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: bucket, Description: "DSN group snapshots", Replicas: d.cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("distrib: snapshot bucket %q: %w", bucket, err)
	}
	d.obs[tenant] = o
	return o, nil
}

// groupFor returns the group of tenant's DSNs with labels, creating it (and computing its
// view) if needed. d.mu must be held for writing.
func (d *Distributor) groupFor(tenant string, labels map[string]string) *group {
	id := wire.GroupIDFor(tenant, labels)
	if g := d.groups[id]; g != nil {
		return g
	}
	g := &group{id: id, tenant: tenant, born: d.rev, view: newGroupView(tenant, labels, d.ix), members: map[*dsn]struct{}{}}
	d.groups[id] = g
	return g
}

// join moves m into g. d.mu must be held for writing.
func (d *Distributor) join(m *dsn, g *group) {
	if m.group == g {
		return
	}
	d.leave(m)
	m.group = g
	g.members[m] = struct{}{}
}

// leave takes m out of its group, dropping the group when it empties.
func (d *Distributor) leave(m *dsn) {
	g := m.group
	if g == nil {
		return
	}
	delete(g.members, m)
	m.group = nil
}

// dropEmptyGroups forgets groups nobody belongs to or waits for. d.mu must be held for writing.
func (d *Distributor) dropEmptyGroups() {
	for id, g := range d.groups {
		if len(g.members) == 0 && g.writing == nil && g.waiters == 0 {
			delete(d.groups, id)
		}
	}
}

// push queues an encoded push for m. d.mu must be held, so that pushes leave in the order
// they were decided.
func (d *Distributor) push(m *dsn, p *outMsg) {
	if d.own != nil && !d.servesPart(m.part) {
		// The lease lapsed and has not been renewed yet: another replica may hold the
		// partition by now. The session ends, so that the DSN is brought current by a Hello
		// rather than by pushes it would miss.
		d.endSessionLocked(m)
		return
	}
	d.out.add(outMsg{subject: m.pushSubject, data: p.data, typ: p.typ})
}

// takeSlot gives m a sync slot for an admission towards target, if one is free.
func (d *Distributor) takeSlot(m *dsn, target uint64, now time.Time) bool {
	if !m.slot {
		if d.syncs >= d.cfg.MaxConcurrentSyncs {
			return false
		}
		d.syncs++
	}
	m.slot, m.slotTarget, m.slotSince = true, target, now
	d.m.syncsInFlight.Set(float64(d.syncs))
	return true
}

func (d *Distributor) releaseSlot(m *dsn) {
	if m.slot {
		m.slot = false
		d.syncs--
		d.m.syncsInFlight.Set(float64(d.syncs))
	}
}

func newSessionID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func equalLabels(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
