package admission

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultFenceWait bounds how long an IdentityView read waits for its fence before it reads the bucket
// itself.
const DefaultFenceWait = 3 * time.Second

// IdentityView is an in-memory copy of the identity bucket, kept current by a watch. It serves the
// southbound Hello, which must know a DSN's admitted identity: a bucket read per Hello costs a
// JetStream round trip, and under a reconnect storm those round trips, not the work of
// admitting, set how fast a control plane takes its fleet back.
//
// A read is as fresh as a direct read made when its mark was taken: Mark is called when the
// request arrives, and Get waits, if it must, for a fence that began after the mark. A fence
// asks the bucket's stream for its last sequence and waits until the watch has delivered it,
// so an admission recorded on any replica before the mark is seen. One fence serves every
// read marked before it began: under load, reads queued behind others find their fence done
// and do not wait at all.
type IdentityView struct {
	ids       *Identities
	log       *slog.Logger
	fenceWait time.Duration

	mu      sync.Mutex
	recs    map[string]viewEntry
	applied uint64        // highest stream sequence the watch delivered
	started uint64        // fences begun
	done    uint64        // fences ended; they end in order
	good    uint64        // the last fence that ended with the watch caught up
	ended   error         // why the watch ended, if it did: reads then go to the bucket
	changed chan struct{} // closed and replaced whenever the fields above move
	want    chan struct{} // a fence is wanted
}

type viewEntry struct {
	rec Admitted
	err error // the record could not be decoded
}

// Watch starts an IdentityView of the bucket, which it keeps until ctx ends. It returns once the view
// holds every record the bucket had.
func (s *Identities) Watch(ctx context.Context, log *slog.Logger) (*IdentityView, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w, err := s.kv.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: watching identities: %w", ErrUnavailable, err)
	}
	v := &IdentityView{ids: s, log: log, fenceWait: DefaultFenceWait, recs: map[string]viewEntry{},
		changed: make(chan struct{}), want: make(chan struct{}, 1)}
	caughtUp := make(chan struct{})
	go v.follow(ctx, w, caughtUp)
	select {
	case <-caughtUp:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	v.mu.Lock()
	ended := v.ended
	v.mu.Unlock()
	if ended != nil {
		return nil, fmt.Errorf("%w: the identity watch ended before it caught up", ErrUnavailable)
	}
	go v.fence(ctx)
	return v, nil
}

// apply records one delivered entry.
func (v *IdentityView) apply(e jetstream.KeyValueEntry) {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch e.Operation() {
	case jetstream.KeyValuePut:
		var a Admitted
		err := json.Unmarshal(e.Value(), &a)
		if err != nil {
			err = fmt.Errorf("admission: identity record %s: %w", e.Key(), err)
		}
		v.recs[e.Key()] = viewEntry{rec: a, err: err}
	default: // deleted or purged
		delete(v.recs, e.Key())
	}
	v.applied = max(v.applied, e.Revision())
	v.broadcastLocked()
}

func (v *IdentityView) broadcastLocked() {
	close(v.changed)
	v.changed = make(chan struct{})
}

// follow applies the watch's updates until ctx ends. It closes caughtUp once every record the
// bucket held when the watch began has been applied, or when the watch ends before that.
func (v *IdentityView) follow(ctx context.Context, w jetstream.KeyWatcher, caughtUp chan struct{}) {
	defer func() { _ = w.Stop() }()
	defer func() {
		select {
		case <-caughtUp:
		default:
			close(caughtUp)
		}
	}()
	for {
		select {
		case <-ctx.Done():
			v.end(ctx.Err())
			return
		case e, ok := <-w.Updates():
			switch {
			case !ok:
				v.end(errors.New("the identity watch ended"))
				if ctx.Err() == nil {
					v.log.Warn("identity watch ended: Hellos read the bucket directly")
				}
				return
			case e == nil: // the end of the records the bucket held
				close(caughtUp)
			default:
				v.apply(e)
			}
		}
	}
}

// end records that the view no longer follows the bucket: reads go to the bucket from now on.
func (v *IdentityView) end(why error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.ended = why
	v.broadcastLocked()
}

// fence runs fences, one at a time, while reads want them.
func (v *IdentityView) fence(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-v.want:
		}
		v.mu.Lock()
		v.started++
		n := v.started
		v.mu.Unlock()
		ok := v.catchUp(ctx)
		v.mu.Lock()
		v.done = n
		if ok {
			v.good = n
		}
		v.broadcastLocked()
		v.mu.Unlock()
	}
}

// catchUp reads the stream's last sequence and waits until the watch has delivered it.
func (v *IdentityView) catchUp(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, v.fenceWait)
	defer cancel()
	st, err := v.ids.kv.Status(ctx)
	if err != nil {
		v.log.Debug("identity fence: bucket status not read", "err", err)
		return false
	}
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok {
		return false
	}
	last := bs.StreamInfo().State.LastSeq
	for {
		v.mu.Lock()
		applied, ended, ch := v.applied, v.ended, v.changed
		v.mu.Unlock()
		switch {
		case applied >= last:
			return true
		case ended != nil:
			return false
		}
		select {
		case <-ch:
		case <-ctx.Done():
			v.log.Debug("identity fence: the watch lags the bucket", "applied", applied, "last", last)
			return false
		}
	}
}

// Mark returns the mark of a read that must see every record written before now. It asks for
// a fence at once, so that the fence runs while the read waits its turn: a Hello taken up by a
// worker then usually finds its fence done.
func (v *IdentityView) Mark() uint64 {
	v.mu.Lock()
	mark := v.started
	v.mu.Unlock()
	select {
	case v.want <- struct{}{}:
	default: // a fence is asked for already; it begins after this mark
	}
	return mark
}

// Get returns dsn's record as Identities.Get would have returned it when mark was taken (or
// later). When the view cannot vouch for that (its watch ended or lags, or the bucket did not
// answer a fence), it reads the bucket itself.
func (v *IdentityView) Get(ctx context.Context, dsn string, mark uint64) (Admitted, bool, error) {
	if ok, err := v.await(ctx, mark); err != nil {
		return Admitted{}, false, err
	} else if !ok {
		return v.ids.Get(ctx, dsn)
	}
	v.mu.Lock()
	e, found := v.recs[dsn]
	v.mu.Unlock()
	if e.err != nil {
		return Admitted{}, false, e.err
	}
	return e.rec, found, nil
}

// await waits until a fence begun after mark has ended. It reports whether the view is then
// as fresh as the bucket was at mark.
func (v *IdentityView) await(ctx context.Context, mark uint64) (bool, error) {
	for {
		v.mu.Lock()
		done, good, started, ended, ch := v.done, v.good, v.started, v.ended, v.changed
		v.mu.Unlock()
		switch {
		case ended != nil:
			return false, nil
		case done > mark:
			return good > mark, nil
		case started <= mark: // no fence after the mark is under way: ask for one
			select {
			case v.want <- struct{}{}:
			default:
			}
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false, fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
		}
	}
}
