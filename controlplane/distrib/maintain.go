package distrib

import (
	"context"
	"fmt"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/wire"
)

// Corrective actions, in the order a straggler gets them.
const (
	actionResend     = "resend"
	actionResync     = "resync"
	actionQuarantine = "quarantine"
)

// maintainLoop checks liveness, sync slots, stragglers and snapshot freshness on every tick.
func (d *Distributor) maintainLoop(ctx context.Context) error {
	t := d.clock.NewTicker(d.cfg.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
			d.maintain()
		}
	}
}

func (d *Distributor) maintain() {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.clock.Now()
	var connected, behind int
	var maxLag uint64
	for _, m := range d.dsns {
		if m.session == "" || m.offline {
			continue
		}
		if now.Sub(m.lastHeard) > d.cfg.OfflineAfter {
			m.offline = true
			m.waitRev = 0
			d.releaseSlot(m)
			d.log.Info("DSN offline", "dsn", m.id, "lastHeard", m.lastHeard)
			continue
		}
		connected++
		if m.slot && now.Sub(m.slotSince) > d.cfg.SyncTimeout {
			d.releaseSlot(m)
		}
		if m.quarantined {
			continue
		}
		if m.applied < d.rev {
			behind++
			maxLag = max(maxLag, d.rev-m.applied)
		}
		if m.waitRev != 0 && now.Sub(later(m.waitSince, m.lastAction)) >= d.cfg.StragglerDeadline {
			d.correct(m, now)
		}
	}
	d.m.connected.Set(float64(connected))
	d.m.behind.Set(float64(behind))
	d.m.maxLag.Set(float64(maxLag))
	d.m.known.Set(float64(len(d.dsns)))
	d.m.queueDepth.WithLabelValues("push").Set(float64(d.out.depth.Load()))
	d.m.queueDepth.WithLabelValues("hello").Set(float64(len(d.hellos)))
	d.m.queueDepth.WithLabelValues("event").Set(float64(d.events.len()))

	for id, at := range d.rehello {
		if now.Sub(at) >= d.cfg.HeartbeatInterval {
			delete(d.rehello, id)
		}
	}
	d.dropEmptyGroups()
	refresh := now.Sub(d.refresh) >= d.cfg.SnapshotRefresh
	if refresh {
		d.refresh = now
	}
	for _, g := range d.groups {
		if refresh && (g.snap == nil || g.snap.Revision < d.rev) {
			d.requestSnapshot(g)
			continue
		}
		for m := range g.members {
			if m.awaitSnapshot { // an earlier write failed or was not started
				d.requestSnapshot(g)
				break
			}
		}
	}
}

// correct takes the next corrective action against a straggler: resend what it misses, then
// force a resync from the snapshot, then quarantine it. d.mu must be held for writing.
func (d *Distributor) correct(m *dsn, now time.Time) {
	var action string
	switch m.ladder {
	case 0:
		action = actionResend
		m.corrective.Resends++
		m.lastSent = m.applied
		m.awaitSnapshot = false
		d.catchUp(m)
	case 1:
		action = actionResync
		m.corrective.Resyncs++
		d.resync(m, fmt.Sprintf("forced resync: applied %d, desired %d", m.applied, d.rev))
	default:
		action = actionQuarantine
		m.corrective.Quarantines++
		reason := fmt.Sprintf("quarantined: applied %d, desired %d after a resend and a resync", m.applied, d.rev)
		d.push(m, d.encode(&wire.Push{Type: wire.PushQuarantine, Reason: reason}))
		m.quarantined = true
		m.waitRev = 0
		d.releaseSlot(m)
	}
	m.ladder++
	m.lastAction = now
	m.lastCorrective = action
	d.m.corrective.WithLabelValues(action).Inc()
	d.log.Info("corrective action", "dsn", m.id, "action", action, "applied", m.applied, "desired", d.rev)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
