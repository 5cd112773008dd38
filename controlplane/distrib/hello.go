package distrib

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/store"
	"github.com/dsnscale/dsnscale/controlplane/wire"
)

// How an admitted DSN is told what it is missing.
const (
	planUpToDate = "uptodate"
	planDelta    = "delta"
	planSnapshot = "snapshot"
)

// snapshotWait bounds how long admission waits for a group snapshot to be written.
const snapshotWait = 10 * time.Second

// enqueueHello hands a Hello to the worker pool. It runs on the subscription's goroutine, so it
// must not block: when the pool is saturated it answers at once with a retry-after hint.
func (d *Distributor) enqueueHello(msg *nats.Msg) {
	d.endSession(msg.Subject)
	d.helloMu.Lock()
	defer d.helloMu.Unlock()
	q := queuedHello{msg: msg, at: d.clock.Now(), seq: d.latest[msg.Subject] + 1}
	if d.cfg.Identities != nil {
		q.mark = d.cfg.Identities.Mark()
	}
	select {
	case d.hellos <- q:
		d.latest[msg.Subject] = q.seq
		d.m.queueDepth.WithLabelValues("hello").Set(float64(len(d.hellos)))
	default:
		d.m.hellos.WithLabelValues("shed").Inc()
		d.reply(msg, wire.Admission{Status: wire.Retry, Reason: "control plane busy", RetryAfterMs: d.retryAfter(2)})
	}
}

// queuedHello is a Hello waiting for a worker: when it arrived, how many Hellos of its DSN
// had been queued with it, and the identities' mark at its arrival.
type queuedHello struct {
	msg  *nats.Msg
	at   time.Time
	seq  uint64
	mark uint64
}

// stale reports why a queued Hello is not worth answering, or "": a newer Hello of the same DSN
// is queued behind it (outcome "superseded"), or it waited longer than its DSN waits for an
// answer (outcome "expired"). Under a burst, answering such Hellos is what keeps every answer
// late: each DSN gives up first and asks again, and the queue fills with abandoned requests.
func (d *Distributor) stale(q queuedHello) string {
	d.helloMu.Lock()
	defer d.helloMu.Unlock()
	newest := d.latest[q.msg.Subject]
	if q.seq == newest {
		delete(d.latest, q.msg.Subject) // nothing older can still be queued: the queue is FIFO
	}
	switch {
	case q.seq < newest:
		return "superseded"
	case d.clock.Now().Sub(q.at) > d.cfg.HelloMaxWait:
		return "expired"
	}
	return ""
}

func (d *Distributor) helloWorker(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case q := <-d.hellos:
			d.m.queueDepth.WithLabelValues("hello").Set(float64(len(d.hellos)))
			if why := d.stale(q); why != "" {
				d.m.hellos.WithLabelValues(why).Inc()
				continue
			}
			d.handleHello(ctx, q)
		}
	}
}

// retryAfter is a retry-after hint in milliseconds: scale times RetryAfter, jittered by ±50%
// so that DSNs turned away together do not come back together.
func (d *Distributor) retryAfter(scale float64) int {
	base := float64(d.cfg.RetryAfter.Milliseconds()) * scale
	return max(1, int(base*(0.5+rand.Float64())))
}

func (d *Distributor) reply(msg *nats.Msg, adm wire.Admission) {
	if msg.Reply == "" {
		return
	}
	b, err := json.Marshal(&adm)
	if err != nil {
		d.log.Error("encoding an admission", "err", err)
		return
	}
	if err := msg.Respond(b); err != nil {
		d.log.Debug("admission not sent", "err", err)
	}
}

func (d *Distributor) handleHello(ctx context.Context, q queuedHello) {
	msg := q.msg
	if msg.Reply == "" {
		d.m.hellos.WithLabelValues("invalid").Inc()
		d.log.Debug("hello without a reply subject", "subject", msg.Subject)
		return
	}
	var h wire.Hello
	if err := wire.Unmarshal(msg.Data, &h); err != nil {
		d.m.hellos.WithLabelValues("invalid").Inc()
		d.log.Debug("invalid hello", "err", err)
		d.reply(msg, wire.Admission{Status: wire.Rejected, Reason: err.Error()})
		return
	}
	// The subject's id is the one the bus's permissions vouch for; a Hello that claims another
	// is refused rather than trusted.
	if id, ok := wire.DSNFromSubject(msg.Subject); !ok || id != h.DSN {
		d.m.hellos.WithLabelValues("invalid").Inc()
		d.log.Debug("hello for another DSN", "subject", msg.Subject, "dsn", h.DSN)
		d.reply(msg, wire.Admission{Status: wire.Rejected,
			Reason: fmt.Sprintf("dsn: %q is not the id of the subject %s", h.DSN, msg.Subject)})
		return
	}
	adm, outcome := d.admit(ctx, &h, q.mark)
	d.m.hellos.WithLabelValues(outcome).Inc()
	d.reply(msg, adm)
	if d.cfg.Observer != nil {
		d.cfg.Observer.OnHello(&h, adm.Status, d.clock.Now())
	}
}

// admit decides a Hello. It returns the answer and the outcome to count.
func (d *Distributor) admit(ctx context.Context, h *wire.Hello, mark uint64) (wire.Admission, string) {
	ident, admitted, reason, err := d.identify(ctx, h, mark)
	switch {
	case err != nil:
		d.log.Warn("admitted identity not read", "dsn", h.DSN, "err", err)
		return wire.Admission{Status: wire.Retry, Reason: "identity store unavailable", RetryAfterMs: d.retryAfter(1)}, "retry"
	case reason != "":
		d.log.Info("hello refused", "dsn", h.DSN, "reason", reason)
		return wire.Admission{Status: wire.Rejected, Reason: reason}, "rejected"
	}
	a := h.AppliedRevision
	// A DSN ahead of this replica's view, in a replicated control plane, was most likely
	// brought there by another replica (it served the DSN before a failover): read the others'
	// commits before deciding, rather than take its revision for a foreign one and send it
	// back to an older snapshot. The check below then asks the DSN to retry until the
	// distributor has seen them too.
	if _, err := store.Reach(ctx, d.cfg.Store, a); err != nil {
		d.log.Debug("hello from a DSN ahead of this replica", "dsn", h.DSN, "err", err)
	}

	for attempt := 0; attempt < 3; attempt++ {
		// Changes since a revision history does not cover may come from the store; read
		// them before taking the lock, and use them only if nothing moved meanwhile.
		d.mu.RLock()
		cur := d.rev
		late := false // the DSN's group began after a: its history does not reach back to a
		if m := d.dsns[h.DSN]; m != nil && m.group != nil {
			late = a < m.group.born
		}
		needChanges := d.loaded && a > 0 && a < cur && (!d.bnds.covers(a) || late) && a >= d.cfg.Store.CompactedRevision()
		d.mu.RUnlock()
		var (
			evs   []store.Event
			evErr error = errNoChanges
		)
		if needChanges {
			evs, evErr = d.cfg.Store.Changes(a, cur)
		}

		d.mu.Lock()
		if !d.loaded {
			d.mu.Unlock()
			return wire.Admission{Status: wire.Retry, Reason: "control plane starting", RetryAfterMs: d.retryAfter(1)}, "retry"
		}
		if !d.mine(h.DSN) {
			// The partition moved to another replica while the Hello waited; it answers the
			// next one.
			d.mu.Unlock()
			return wire.Admission{Status: wire.Retry, Reason: "DSN moved to another control-plane replica", RetryAfterMs: d.retryAfter(0.25)}, "retry"
		}
		if d.rev != cur {
			if needChanges {
				d.mu.Unlock()
				continue // the changes read may not reach the new revision
			}
			cur = d.rev
		}
		now := d.clock.Now()
		m := d.dsns[h.DSN]
		tenant, labels := ident.Tenant, ident.Labels
		if !admitted && len(h.Labels) == 0 && m != nil && m.registered {
			// A Hello that names no labels keeps the registered ones: it does not wipe them.
			tenant, labels = m.tenant, m.labels
		}
		spec := model.DSNSpec{SoftwareVersion: h.SoftwareVersion, Site: labels["site"], Rack: labels["rack"]}
		known := m != nil && m.registered && !m.relabelled && m.tenant == tenant && equalLabels(m.labels, labels)
		if a > cur {
			if a <= d.cfg.Store.Revision() {
				d.mu.Unlock()
				return wire.Admission{Status: wire.Retry, Reason: "control plane catching up", RetryAfterMs: d.retryAfter(0.25)}, "retry"
			}
			known = false // a revision this store never had: the DSN's config is foreign
		}
		g := d.groupFor(tenant, labels)

		// Decide what the DSN is missing.
		plan := planSnapshot
		var delta *wire.Push
		switch {
		case known && a == cur, a == 0 && len(g.view.policies) == 0:
			plan = planUpToDate
		case known && a < cur:
			var cs []wire.Change
			ok := false
			if d.historyCovers(g, a) {
				cs, ok = g.log.since(a), true
			} else if evErr == nil {
				cs, ok = filterChanges(evs, g.view, d.ix, cur)
			}
			if ok {
				p := pushFor(a, cur, cs)
				if b, err := json.Marshal(p); err == nil && len(b) <= d.cfg.MaxInlineDeltaBytes {
					plan, delta = planDelta, p
				}
			}
		}

		var ref *wire.SnapshotRef
		var catchUp *outMsg
		if plan == planSnapshot {
			var ok bool
			if ref, catchUp, ok = d.usableSnapshot(g); !ok {
				done := d.requestSnapshot(g)
				g.waiters++
				d.mu.Unlock()
				stopped := false
				select {
				case <-done:
				case <-ctx.Done():
					stopped = true
				case <-time.After(snapshotWait):
				}
				d.mu.Lock()
				g.waiters--
				d.mu.Unlock()
				if stopped {
					return wire.Admission{Status: wire.Retry, Reason: "control plane stopping", RetryAfterMs: d.retryAfter(1)}, "retry"
				}
				continue
			}
		}
		if m == nil {
			m = &dsn{id: h.DSN, pushSubject: wire.PushSubject(h.DSN), part: d.partition(h.DSN), admittedAt: now}
			d.dsns[h.DSN] = m
			d.m.known.Set(float64(len(d.dsns)))
		}
		if plan != planUpToDate && !d.takeSlot(m, cur, now) {
			d.mu.Unlock()
			return wire.Admission{Status: wire.Retry, Reason: "too many DSNs syncing", RetryAfterMs: d.retryAfter(1)}, "retry"
		}
		if plan == planUpToDate {
			d.releaseSlot(m)
		}

		// Admit: a new session.
		d.join(m, g)
		if !m.registered || m.tenant != tenant || !equalLabels(m.labels, labels) || m.spec != spec {
			m.tenant, m.labels, m.spec, m.registered = tenant, labels, spec, true
			d.reg.put(m.record())
		}
		m.session, m.sessionStart, m.lastHeard, m.relabelled = newSessionID(), now, now, false
		m.offline, m.quarantined, m.awaitSnapshot, m.replacing = false, false, false, plan == planSnapshot
		m.ladder, m.lastAction = 0, time.Time{}
		m.lastError, m.lastErrorRev, m.lastErrorAt = "", 0, time.Time{}
		adm := wire.Admission{
			Status:              wire.Admitted,
			SessionID:           m.session,
			Revision:            cur,
			HeartbeatIntervalMs: int(d.cfg.HeartbeatInterval.Milliseconds()),
		}
		switch plan {
		case planUpToDate:
			adm.UpToDate = true
			m.applied, m.lastSent = cur, cur
		case planDelta:
			adm.Delta = delta
			m.applied, m.lastSent = a, cur
		case planSnapshot:
			adm.Snapshot = ref
			m.applied, m.lastSent = a, ref.Revision
			if !known {
				m.applied = 0 // whatever it has is not this view at any revision
			}
			if catchUp != nil {
				d.push(m, catchUp)
				m.lastSent = cur
			}
		}
		m.waitRev, m.waitSince = 0, time.Time{}
		if m.applied < cur {
			m.waitRev, m.waitSince = cur, now
		}
		d.mu.Unlock()
		return adm, plan
	}
	return wire.Admission{Status: wire.Retry, Reason: "control plane busy", RetryAfterMs: d.retryAfter(1)}, "retry"
}

// identify returns the tenant and labels a Hello's DSN is admitted with. For a DSN with an
// admission record they are the recorded ones (admitted is true); a Hello may repeat any of the
// recorded labels or name none, but a label that is not recorded, or has another value, gets
// a rejection reason. For a DSN without one the Hello's labels are taken as they are.
func (d *Distributor) identify(ctx context.Context, h *wire.Hello, mark uint64) (id Identity, admitted bool, reason string, err error) {
	if d.cfg.Identities != nil {
		id, admitted, err = d.cfg.Identities.Admitted(ctx, h.DSN, mark)
		if err != nil {
			return Identity{}, false, "", err
		}
	}
	if !admitted {
		id = Identity{Labels: maps.Clone(h.Labels)}
		if id.Labels == nil {
			id.Labels = map[string]string{}
		}
		return id, false, "", nil
	}
	id.Labels = maps.Clone(id.Labels)
	if id.Labels == nil {
		id.Labels = map[string]string{}
	}
	for _, k := range slices.Sorted(maps.Keys(h.Labels)) {
		v := h.Labels[k]
		have, ok := id.Labels[k]
		switch {
		case !ok:
			return Identity{}, true, fmt.Sprintf("labels.%s: the DSN was not admitted with this label; labels change only through the API (admitted labels: %s)",
				k, model.SortedLabels(id.Labels)), nil
		case have != v:
			return Identity{}, true, fmt.Sprintf("labels.%s: %q differs from the admitted value %q; labels change only through the API (admitted labels: %s)",
				k, v, have, model.SortedLabels(id.Labels)), nil
		}
	}
	return id, true, "", nil
}

// errNoChanges stands for store changes that were not read.
var errNoChanges = errors.New("store changes not read")

// pushFor builds a delta push, or a current push when there are no changes.
func pushFor(from, to uint64, cs []wire.Change) *wire.Push {
	if len(cs) == 0 {
		return &wire.Push{Type: wire.PushCurrent, From: from, To: to}
	}
	return &wire.Push{Type: wire.PushDelta, From: from, To: to, Changes: cs}
}
