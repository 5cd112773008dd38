package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/wire"
	"github.com/dsnscale/dsnscale/inventory"
	"github.com/dsnscale/dsnscale/tsdb/queue"
)

// Fleet is what the inventory needs of the southbound side: the DSN list of api.Fleet, which
// the distributor implements.
type Fleet interface {
	// DSNs lists DSNs (kind DSN, spec model.DSNSpec, status model.DSNStatus) in id order, at
	// most limit after the id continueAfter; next is the id to continue after, or empty.
	DSNs(ctx context.Context, selector map[string]string, limit int, continueAfter string) (items []*model.Object, next string, err error)
}

// fleetPage is how many DSNs a poll asks the fleet for at once.
const fleetPage = 1000

// OnHello records a Hello the control plane answered with status (wire.Admitted, wire.Retry or
// wire.Rejected) at time at: an admission attempt in the inventory's history (outcome admitted,
// shed or rejected) and, when admitted, the DSN's identity, labels and software version. It
// never blocks; the distributor calls it after answering each Hello.
func (in *Ingest) OnHello(h *wire.Hello, status string, at time.Time) {
	if h == nil || !wire.ValidID(h.DSN) {
		return // nothing to file it under
	}
	outcome := inventory.OutcomeRejected
	switch status {
	case wire.Admitted:
		outcome = inventory.OutcomeAdmitted
	case wire.Retry:
		outcome = inventory.OutcomeShed
	}
	ops := []invOp{{kind: opAdmission, id: h.DSN, at: at, outcome: outcome}}
	if status == wire.Admitted {
		rec := in.record(h.DSN, h.Labels, model.DSNSpec{SoftwareVersion: h.SoftwareVersion, Site: h.Labels["site"], Rack: h.Labels["rack"]},
			model.DSNStateAdmitted, h.AppliedRevision, at)
		ops = append(ops, invOp{kind: opUpsert, rec: rec})
		in.markDirty(h.DSN)
	}
	in.invQ.Offer(ops...)
}

// markDirty makes the next poll write id whatever it finds, since an admission just wrote a
// record the poll's memory does not know.
func (in *Ingest) markDirty(id string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.tracked {
		in.dirty[id] = struct{}{}
	}
}

// takeDirty returns and forgets the DSNs marked dirty.
func (in *Ingest) takeDirty() map[string]struct{} {
	in.mu.Lock()
	defer in.mu.Unlock()
	d := in.dirty
	in.dirty = map[string]struct{}{}
	return d
}

// TrackFleet keeps the inventory up to date with f: at once, then every InventoryInterval, it
// lists the fleet and writes the DSNs whose state, labels, software version or applied revision
// changed, or whose last contact moved by LastSeenResolution, and deletes those the fleet no
// longer knows. It returns at once; the polling stops at Close. It may be called once.
func (in *Ingest) TrackFleet(f Fleet) error {
	if f == nil {
		return fmt.Errorf("%w: TrackFleet: nil fleet", ErrConfig)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	switch {
	case in.closed:
		return ErrClosed
	case in.tracked:
		return fmt.Errorf("%w: TrackFleet: already tracking a fleet", ErrConfig)
	}
	in.tracked = true
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		in.pollLoop(f)
	}()
	return nil
}

// seen is what the inventory last got for a DSN; a poll writes a DSN again when it differs.
type seen struct {
	labels   string
	spec     model.DSNSpec
	state    string
	applied  uint64
	lastSeen int64 // last contact, in LastSeenResolution units
}

func (in *Ingest) pollLoop(f Fleet) {
	known := map[string]seen{}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), in.cfg.InventoryInterval)
		go func() {
			select {
			case <-in.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		next, err := in.poll(ctx, f, known)
		cancel()
		if err != nil {
			in.c.pollsFailed.Add(1)
			in.log.Warn("inventory: listing the fleet failed; retrying at the next poll", "err", err)
		} else {
			in.c.pollsOK.Add(1)
			known = next
		}
		select {
		case <-in.stop:
			return
		case <-in.clock.After(in.cfg.InventoryInterval):
		}
	}
}

// poll lists the fleet and offers the changes since known; it returns the new state.
func (in *Ingest) poll(ctx context.Context, f Fleet, known map[string]seen) (map[string]seen, error) {
	now := map[string]seen{}
	dirty := in.takeDirty()
	var ops []invOp
	after := ""
	for {
		items, next, err := f.DSNs(ctx, nil, fleetPage, after)
		if err != nil {
			for id := range dirty {
				in.markDirty(id) // still to do
			}
			return nil, err
		}
		for _, o := range items {
			rec, err := in.fromObject(o)
			if err != nil {
				in.log.Debug("inventory: skipping a DSN", "dsn", o.Metadata.Name, "err", err)
				continue
			}
			s := seen{labels: model.SortedLabels(rec.Labels), spec: model.DSNSpec{SoftwareVersion: rec.SoftwareVersion, Site: rec.Site, Rack: rec.Rack},
				state: rec.State, applied: rec.AppliedRevision}
			if !rec.LastSeen.IsZero() {
				s.lastSeen = rec.LastSeen.UnixNano() / int64(in.cfg.LastSeenResolution)
			}
			now[rec.ID] = s
			_, isDirty := dirty[rec.ID]
			if old, ok := known[rec.ID]; !ok || old != s || isDirty {
				ops = append(ops, invOp{kind: opUpsert, rec: rec})
			}
		}
		if next == "" || len(items) == 0 {
			break
		}
		after = next
	}
	for id := range known {
		if _, ok := now[id]; !ok {
			ops = append(ops, invOp{kind: opDelete, id: id})
		}
	}
	if n := in.invQ.Offer(ops...); n < len(ops) {
		// What did not fit is written at a later poll: forget it, so that it counts as changed.
		for _, op := range ops[n:] {
			if op.kind == opUpsert {
				delete(now, op.rec.ID)
			} else {
				now[op.id] = seen{}
			}
		}
	}
	return now, nil
}

// fromObject turns a DSN object of the fleet into an inventory record.
func (in *Ingest) fromObject(o *model.Object) (inventory.DSNRecord, error) {
	var spec model.DSNSpec
	var st model.DSNStatus
	if len(o.Spec) > 0 {
		if err := json.Unmarshal(o.Spec, &spec); err != nil {
			return inventory.DSNRecord{}, fmt.Errorf("spec: %w", err)
		}
	}
	if len(o.Status) > 0 {
		if err := json.Unmarshal(o.Status, &st); err != nil {
			return inventory.DSNRecord{}, fmt.Errorf("status: %w", err)
		}
	}
	var last time.Time
	if st.LastHeartbeat != "" {
		t, err := time.Parse(time.RFC3339Nano, st.LastHeartbeat)
		if err != nil {
			return inventory.DSNRecord{}, fmt.Errorf("status.lastHeartbeat: %w", err)
		}
		last = t
	}
	state := st.State
	if state == "" {
		state = model.DSNStateOffline
	}
	rec := in.record(o.Metadata.Name, o.Metadata.Labels, spec, state, st.AppliedRevision, last)
	return rec, rec.Validate()
}

// record builds an inventory record, leaving out labels the inventory cannot hold (its label
// keys are stricter than the protocol's) rather than losing the whole DSN.
func (in *Ingest) record(id string, labels map[string]string, spec model.DSNSpec, state string, applied uint64, lastSeen time.Time) inventory.DSNRecord {
	rec := inventory.DSNRecord{
		ID: id, SoftwareVersion: spec.SoftwareVersion, Site: spec.Site, Rack: spec.Rack,
		State: state, AppliedRevision: applied, LastSeen: lastSeen.UTC(),
	}
	if lastSeen.IsZero() {
		rec.LastSeen = time.Time{}
	}
	if len(labels) > 0 {
		rec.Labels = maps.Clone(labels)
		if (inventory.DSNRecord{ID: id, State: state, Labels: rec.Labels}).Validate() != nil {
			for k, v := range rec.Labels {
				if (inventory.DSNRecord{ID: id, State: state, Labels: map[string]string{k: v}}).Validate() != nil {
					delete(rec.Labels, k)
				}
			}
		}
	}
	return rec
}

// Inventory operations, written in the order they were offered.
const (
	opUpsert = iota
	opDelete
	opAdmission
)

type invOp struct {
	kind    int
	rec     inventory.DSNRecord // opUpsert
	id      string              // opDelete, opAdmission
	at      time.Time           // opAdmission
	outcome string              // opAdmission
}

// inventorySink writes a batch of operations in order: runs of upserts in one transaction,
// deletes and admissions one by one. The queue retries a failed batch with the same slice, so
// the sink remembers how far it got and does not record admissions twice.
func (in *Ingest) inventorySink() queue.Sink[invOp] {
	var (
		resumeAt *invOp // the first element of the batch that failed part way
		resumeN  int    // how many of its operations were written
	)
	return func(ctx context.Context, batch []invOp) error {
		if len(batch) == 0 {
			return nil
		}
		i := 0
		if &batch[0] == resumeAt {
			i = resumeN
		}
		for i < len(batch) {
			n, err := in.writeOps(ctx, batch[i:])
			i += n
			if err != nil {
				resumeAt, resumeN = &batch[0], i
				if errors.Is(err, inventory.ErrClosed) {
					return queue.Permanent(err)
				}
				return err
			}
		}
		resumeAt = nil
		return nil
	}
}

// writeOps writes the leading run of upserts of ops, or its first other operation, and returns
// how many operations it consumed.
func (in *Ingest) writeOps(ctx context.Context, ops []invOp) (int, error) {
	n := 0
	for n < len(ops) && ops[n].kind == opUpsert {
		n++
	}
	if n > 0 {
		err := in.inv.UpsertDSNs(ctx, latest(ops[:n])...)
		if errors.Is(err, inventory.ErrInvalid) {
			// Retrying cannot fix it; skip the run rather than lose the rest of the batch.
			in.c.inventoryInvalid.Add(uint64(n))
			in.log.Warn("inventory: records refused", "count", n, "err", err)
			return n, nil
		}
		if err != nil {
			return 0, err
		}
		return n, nil
	}
	var err error
	switch op := ops[0]; op.kind {
	case opDelete:
		err = in.inv.DeleteDSN(ctx, op.id)
		if errors.Is(err, inventory.ErrNotFound) {
			err = nil
		}
	case opAdmission:
		err = in.inv.RecordAdmission(ctx, op.id, op.at, op.outcome)
	}
	if errors.Is(err, inventory.ErrInvalid) {
		in.c.inventoryInvalid.Add(1)
		in.log.Warn("inventory: operation refused", "err", err)
		err = nil
	}
	if err != nil {
		return 0, err
	}
	return 1, nil
}

// latest keeps the last record of each DSN (a transaction may name a DSN once).
func latest(ops []invOp) []inventory.DSNRecord {
	last := make(map[string]int, len(ops))
	for i, op := range ops {
		last[op.rec.ID] = i
	}
	out := make([]inventory.DSNRecord, 0, len(last))
	for i, op := range ops {
		if last[op.rec.ID] == i {
			out = append(out, op.rec)
		}
	}
	return out
}
