package distrib

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
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

// dsnLocal returns the DSN object as this replica knows it, or an error wrapping
// api.ErrUnknownDSN.
func (d *Distributor) dsnLocal(id string) (*model.Object, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	m := d.dsns[id]
	if m == nil {
		return nil, fmt.Errorf("%w: %q", api.ErrUnknownDSN, id)
	}
	return d.object(m, d.clock.Now()), nil
}

// decommissionLocal forgets a DSN on this replica and in the registry.
func (d *Distributor) decommissionLocal(id string) error {
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

// quantile of sorted xs, nearest rank.
func quantile(xs []float64, q float64) float64 {
	i := int(math.Ceil(q*float64(len(xs)))) - 1
	return xs[min(max(i, 0), len(xs)-1)]
}

// setLabelsLocal relabels a DSN on this replica and in the registry (see SetLabels).
func (d *Distributor) setLabelsLocal(id string, labels map[string]string) (*model.Object, error) {
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
