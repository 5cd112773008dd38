package distrib

import (
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dsnscale/dsnscale/controlplane/wire"
)

// rehelloPush is the one push every unknown session gets.
var rehelloPush, _ = json.Marshal(&wire.Push{Type: wire.PushRehello, Reason: "no session: send Hello"})

// handleAck records an Ack. It runs on the subscription's goroutine and only takes the lock
// briefly.
func (d *Distributor) handleAck(msg *nats.Msg) {
	id, okSubject := wire.DSNFromSubject(msg.Subject)
	var a wire.Ack
	if err := wire.Unmarshal(msg.Data, &a); err != nil || !okSubject || a.DSN != id {
		d.m.acks.WithLabelValues("invalid").Inc()
		d.log.Debug("invalid ack", "subject", msg.Subject, "err", err)
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	m := d.dsns[id]
	switch {
	case m == nil:
		d.m.acks.WithLabelValues("unknown_dsn").Inc()
		d.log.Debug("ack from an unknown DSN", "dsn", id)
		return
	case m.session != a.SessionID:
		d.m.acks.WithLabelValues("unknown_session").Inc()
		d.log.Debug("ack for another session", "dsn", id, "session", a.SessionID)
		return
	case a.Revision > d.rev:
		d.m.acks.WithLabelValues("invalid").Inc()
		d.log.Debug("ack of a revision not distributed yet", "dsn", id, "revision", a.Revision, "distributed", d.rev)
		return
	}
	now := d.clock.Now()
	d.heard(m, now)
	if a.Error != "" {
		d.m.acks.WithLabelValues("error").Inc()
		d.log.Debug("DSN failed to apply", "dsn", id, "revision", a.Revision, "error", a.Error)
		m.lastError, m.lastErrorRev, m.lastErrorAt = a.Error, m.lastSent, now
		return
	}
	d.m.acks.WithLabelValues("ok").Inc()
	m.lastError, m.lastErrorRev, m.lastErrorAt = "", 0, time.Time{}
	if n := len(m.acks); n == 0 || m.acks[n-1].rev != a.Revision {
		m.acks = append(m.acks, ackAt{rev: a.Revision, at: now})
		if len(m.acks) > ackRing {
			m.acks = append(m.acks[:0], m.acks[len(m.acks)-ackRing:]...)
		}
	}
	// A lower ack means the DSN's config went back, which only a snapshot does; otherwise it
	// is an ack overtaken by a heartbeat (they arrive on different subscriptions).
	if a.Revision > m.applied || m.replacing {
		m.applied = a.Revision
	}
	m.replacing = false
	d.progress(m, now)
}

// endSession ends the session of the DSN whose Hello subject is given, before its Hello is
// decided. A DSN says Hello only when it has no session (it restarted, lost its session or was
// told to), so whatever would still be pushed to the old one would reach a DSN whose admission
// will bring it current anyway: a leftover it would receive twice. Only the DSN can publish on
// its subject. It runs on the subscription's goroutine and only takes the lock briefly.
func (d *Distributor) endSession(subject string) {
	id, ok := wire.DSNFromSubject(subject)
	if !ok {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if m := d.dsns[id]; m != nil {
		d.endSessionLocked(m)
	}
}

// endSessionLocked ends m's session: nothing more is pushed to it. d.mu must be held for
// writing.
func (d *Distributor) endSessionLocked(m *dsn) {
	if m.session == "" {
		return
	}
	m.session = ""
	m.waitRev, m.waitSince = 0, time.Time{}
	d.releaseSlot(m)
}

// handleHeartbeat records a Heartbeat. A heartbeat for a session the distributor does not
// know (it restarted, or the DSN was decommissioned) is answered with a rehello push.
func (d *Distributor) handleHeartbeat(msg *nats.Msg) {
	id, okSubject := wire.DSNFromSubject(msg.Subject)
	var hb wire.Heartbeat
	if err := wire.Unmarshal(msg.Data, &hb); err != nil || !okSubject || hb.DSN != id {
		d.m.heartbeats.WithLabelValues("invalid").Inc()
		d.log.Debug("invalid heartbeat", "subject", msg.Subject, "err", err)
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.clock.Now()
	m := d.dsns[id]
	if m == nil || m.session != hb.SessionID {
		d.m.heartbeats.WithLabelValues("unknown_session").Inc()
		if at, ok := d.rehello[id]; !ok || now.Sub(at) >= d.cfg.HeartbeatInterval {
			d.rehello[id] = now
			d.out.add(outMsg{subject: wire.PushSubject(id), data: rehelloPush, typ: wire.PushRehello})
		}
		return
	}
	d.m.heartbeats.WithLabelValues("ok").Inc()
	d.heard(m, now)
	if hb.AppliedRevision > m.applied && hb.AppliedRevision <= d.rev {
		m.applied = hb.AppliedRevision
	}
	d.progress(m, now)
}

// heard notes that m is alive; a DSN that was offline gets what it missed.
func (d *Distributor) heard(m *dsn, now time.Time) {
	m.lastHeard = now
	if m.offline {
		m.offline = false
		m.lastSent = m.applied // nothing was pushed while it was offline
		if m.applied < d.rev && m.waitRev == 0 {
			m.waitRev, m.waitSince = d.rev, now
		}
	}
}

// progress updates m's sync slot and straggler tracking after its applied revision changed,
// and sends a catch-up if nothing in flight brings it to the distributed revision.
func (d *Distributor) progress(m *dsn, now time.Time) {
	if m.lastSent < m.applied {
		m.lastSent = m.applied
	}
	if m.slot && m.applied >= m.slotTarget {
		d.releaseSlot(m)
	}
	if m.waitRev != 0 && m.applied >= m.waitRev {
		m.ladder, m.lastAction = 0, time.Time{}
		m.waitRev = 0
		if m.applied < d.rev {
			m.waitRev, m.waitSince = d.rev, now
		}
	}
	d.catchUp(m)
}
