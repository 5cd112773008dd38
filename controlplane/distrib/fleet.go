package distrib

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"sort"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/api"
	"github.com/dsnscale/dsnscale/controlplane/model"
)

// maxBehindNames caps the stragglers a convergence report names.
const maxBehindNames = 1000

// state is m's state as the DSN status reports it. d.mu must be held.
func (d *Distributor) state(m *dsn, now time.Time) string {
	switch {
	case m.session == "" || m.offline:
		return model.DSNStateOffline
	case m.quarantined:
		return model.DSNStateQuarantined
	case m.applied >= d.rev:
		return model.DSNStateInSync
	case m.ladder > 0 || (m.waitRev != 0 && now.Sub(m.waitSince) >= d.cfg.StragglerDeadline):
		return model.DSNStateLagging
	case m.slot && len(m.acks) == 0:
		return model.DSNStateAdmitted // admitted with a delta or snapshot it has not acked yet
	}
	return model.DSNStateSyncing
}

// object renders m as a DSN object. d.mu must be held.
func (d *Distributor) object(m *dsn, now time.Time) *model.Object {
	st := model.DSNStatus{
		State:           d.state(m, now),
		DesiredRevision: d.rev,
		AppliedRevision: m.applied,
		AdmittedAt:      formatTime(m.admittedAt),
		AckTimes:        make([]model.RevisionAck, len(m.acks)),
		Corrective:      m.corrective,
		LastCorrective:  m.lastCorrective,
	}
	if m.lastError != "" {
		st.LastError, st.LastErrorRevision, st.LastErrorAt = m.lastError, m.lastErrorRev, formatTime(m.lastErrorAt)
	}
	for i, a := range m.acks {
		st.AckTimes[i] = model.RevisionAck{Revision: a.rev, At: formatTime(a.at)}
	}
	if m.session != "" {
		st.LastHeartbeat = formatTime(m.lastHeard)
		if !m.offline {
			st.SessionID = m.session
			st.ConnectedSeconds = now.Sub(m.sessionStart).Seconds()
		}
	}
	spec, _ := json.Marshal(m.spec)
	status, _ := json.Marshal(st)
	return &model.Object{
		APIVersion: model.APIVersion,
		Kind:       model.KindDSN,
		Metadata:   model.Metadata{Name: m.id, Tenant: m.tenant, Labels: maps.Clone(m.labels)},
		Spec:       spec,
		Status:     status,
	}
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// DSN returns the DSN object with its live status, or an error wrapping api.ErrUnknownDSN.
func (d *Distributor) DSN(ctx context.Context, id string) (*model.Object, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	m := d.dsns[id]
	if m == nil {
		return nil, fmt.Errorf("%w: %q", api.ErrUnknownDSN, id)
	}
	return d.object(m, d.clock.Now()), nil
}

// DSNs lists the DSNs whose labels match selector, in id order: at most limit (0 for all)
// after the id continueAfter. next is the id to continue after, or empty at the end.
func (d *Distributor) DSNs(ctx context.Context, selector map[string]string, limit int, continueAfter string) ([]*model.Object, string, error) {
	if limit < 0 {
		return nil, "", fmt.Errorf("limit: %d must not be negative", limit)
	}
	sel := model.Selector{MatchLabels: selector}
	d.mu.RLock()
	defer d.mu.RUnlock()
	ids := make([]string, 0, len(d.dsns))
	for id, m := range d.dsns {
		if id > continueAfter && sel.Matches(m.labels) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	next := ""
	if limit > 0 && len(ids) > limit {
		ids = ids[:limit]
		next = ids[limit-1]
	}
	now := d.clock.Now()
	out := make([]*model.Object, len(ids))
	for i, id := range ids {
		out[i] = d.object(d.dsns[id], now)
	}
	return out, next, nil
}

// Decommission forgets a DSN: its registry entry, session and status. A DSN that says Hello
// afterwards is admitted as a new one.
func (d *Distributor) Decommission(ctx context.Context, id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := d.dsns[id]
	if m == nil {
		return fmt.Errorf("%w: %q", api.ErrUnknownDSN, id)
	}
	d.releaseSlot(m)
	d.leave(m)
	delete(d.dsns, id)
	d.reg.del(id)
	d.m.known.Set(float64(len(d.dsns)))
	d.log.Info("DSN decommissioned", "dsn", id)
	return nil
}

// Convergence reports how many known DSNs have applied rev (0: the distributed revision), names
// the first stragglers and gives the quantiles of the time from the revision's arrival at the
// distributor to each ack at or past it.
func (d *Distributor) Convergence(ctx context.Context, rev uint64) (model.Convergence, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if !d.loaded {
		return model.Convergence{}, ErrNotReady
	}
	if rev == 0 {
		rev = d.rev
	}
	c := model.Convergence{Revision: rev, Total: len(d.dsns), BehindDSNs: []string{}}
	seenAt, timed := d.seen.at(rev)
	var lat []float64
	for id, m := range d.dsns {
		if m.applied < rev {
			c.Behind++
			c.BehindDSNs = append(c.BehindDSNs, id)
			continue
		}
		c.AtOrPast++
		if !timed {
			continue
		}
		for _, a := range m.acks {
			if a.rev >= rev {
				lat = append(lat, float64(a.at.Sub(seenAt).Microseconds())/1000)
				break
			}
		}
	}
	sort.Strings(c.BehindDSNs)
	if len(c.BehindDSNs) > maxBehindNames {
		c.BehindDSNs = c.BehindDSNs[:maxBehindNames]
	}
	if len(lat) > 0 {
		sort.Float64s(lat)
		c.AckLatencyMs = map[string]float64{
			"p50": quantile(lat, 0.50), "p90": quantile(lat, 0.90), "p99": quantile(lat, 0.99), "max": lat[len(lat)-1],
		}
	}
	return c, nil
}

// quantile of sorted xs, nearest rank.
func quantile(xs []float64, q float64) float64 {
	i := int(math.Ceil(q*float64(len(xs)))) - 1
	return xs[min(max(i, 0), len(xs)-1)]
}

// SetLabels gives a DSN new labels, as the northbound API decides (its tenant stays). The DSN
// moves to the group of its new labels and, if it is live, is resynchronised to that group's
// view from a snapshot. It returns the DSN as it now is, or an error wrapping
// api.ErrUnknownDSN.
func (d *Distributor) SetLabels(ctx context.Context, id string, labels map[string]string) (*model.Object, error) {
	labels = maps.Clone(labels)
	if labels == nil {
		labels = map[string]string{}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	m := d.dsns[id]
	if m == nil {
		return nil, fmt.Errorf("%w: %q", api.ErrUnknownDSN, id)
	}
	if !equalLabels(m.labels, labels) {
		m.labels = labels
		m.spec.Site, m.spec.Rack = labels["site"], labels["rack"]
		d.join(m, d.groupFor(m.tenant, labels))
		d.reg.put(m.record())
		// Whatever the DSN applied was another view: it has not converged on this one.
		m.applied, m.relabelled = 0, true
		if m.live() {
			m.waitRev, m.waitSince = d.rev, d.clock.Now()
			d.resync(m, "labels changed")
		}
		d.log.Info("DSN relabelled", "dsn", id, "labels", model.SortedLabels(labels))
	}
	return d.object(m, d.clock.Now()), nil
}
