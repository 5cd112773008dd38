package distrib

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/wire"
)

// snapshotWriters is how many group snapshots are written at once.
const snapshotWriters = 4

// requestSnapshot asks for g's snapshot to be written at the distributed revision, unless a
// write is already running, and returns a channel closed when the write ends. d.mu must be
// held for writing.
func (d *Distributor) requestSnapshot(g *group) <-chan struct{} {
	if g.writing != nil {
		return g.writing
	}
	done := make(chan struct{})
	select {
	case d.snapReqs <- g:
		g.writing = done
	default:
		close(done) // the writers are saturated; the caller will ask again
	}
	return done
}

// snapshotObject names g's snapshot object. Replicas serving members of one group each write
// their own, at their own distributed revision: a shared one could be overwritten by another
// replica's at a revision the reference does not name.
func (d *Distributor) snapshotObject(g *group) string {
	if d.own == nil {
		return wire.SnapshotObject(g.id)
	}
	return wire.SnapshotObject(g.id) + "." + d.cfg.Replica
}

// snapshotLoop runs the snapshot writers.
func (d *Distributor) snapshotLoop(ctx context.Context) error {
	var wg sync.WaitGroup
	for i := 0; i < snapshotWriters; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case g := <-d.snapReqs:
					d.writeSnapshot(ctx, g)
				}
			}
		}()
	}
	wg.Wait()
	// Release admissions waiting on writes that will not happen.
	d.mu.Lock()
	defer d.mu.Unlock()
	for {
		select {
		case g := <-d.snapReqs:
			if g.writing != nil {
				close(g.writing)
				g.writing = nil
			}
		default:
			return nil
		}
	}
}

// writeSnapshot writes g's view at the distributed revision to the object store, then resyncs
// the members that were waiting for it.
func (d *Distributor) writeSnapshot(ctx context.Context, g *group) {
	d.mu.RLock()
	rev := d.rev
	entries := g.view.objects(d.ix)
	d.mu.RUnlock()

	snap := wire.Snapshot{Group: g.id, Revision: rev, Objects: make([]model.Object, len(entries))}
	for i, e := range entries {
		snap.Objects[i] = *e.obj
	}
	data, err := json.Marshal(&snap)
	if err == nil {
		var obs jetstream.ObjectStore
		if obs, err = d.snapshotStore(ctx, g.tenant); err == nil {
			_, err = obs.PutBytes(ctx, d.snapshotObject(g), data)
		}
	}
	sum := sha256.Sum256(data)

	d.mu.Lock()
	defer d.mu.Unlock()
	close(g.writing)
	g.writing = nil
	if err != nil {
		d.m.snapshotWrites.WithLabelValues("error").Inc()
		if !errors.Is(err, context.Canceled) {
			d.log.Warn("writing a group snapshot", "group", g.id, "revision", rev, "err", err)
		}
		return
	}
	d.m.snapshotWrites.WithLabelValues("ok").Inc()
	d.m.snapshotBytes.Add(float64(len(data)))
	if g.snap == nil || g.snap.Revision <= rev {
		g.snap = &wire.SnapshotRef{Bucket: wire.SnapshotBucketFor(g.tenant), Object: d.snapshotObject(g),
			Revision: rev, Size: len(data), SHA256: hex.EncodeToString(sum[:])}
	}
	for m := range g.members {
		if m.awaitSnapshot && m.live() {
			d.resync(m, "resynchronising from a fresh snapshot")
		}
	}
}

// RefreshSnapshots writes every group's snapshot at the current revision now, rather than at
// the next scheduled refresh, and waits for the writes to end.
func (d *Distributor) RefreshSnapshots(ctx context.Context) error {
	if !d.Ready() {
		return ErrNotReady
	}
	d.mu.Lock()
	var waits []<-chan struct{}
	for _, g := range d.groups {
		if g.snap == nil || g.snap.Revision < d.rev {
			waits = append(waits, d.requestSnapshot(g))
		}
	}
	d.mu.Unlock()
	for _, w := range waits {
		select {
		case <-w:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
