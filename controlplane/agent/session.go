package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/wire"
)

// Why a session ended.
const (
	endGap        = "gap"
	endRehello    = "rehello"
	endReconnect  = "reconnect"
	endQuarantine = "quarantine"
	endResync     = "resync failed"
	endStopped    = "stopped"
)

// Run speaks the protocol until ctx ends (it then returns nil) or the control plane rejects
// the agent (ErrRejected). With Config.Identity it also renews the identity's certificate once
// two thirds of its life have passed, retrying a failed renewal after MaxBackoff.
func (a *Agent) Run(ctx context.Context) error {
	// Subscribe before the first Hello: pushes may come before the Admission does.
	pushes := make(chan *nats.Msg, a.cfg.PushBuffer)
	sub, err := a.cfg.Conn.ChanSubscribe(wire.PushSubject(a.cfg.ID), pushes)
	if err != nil {
		return fmt.Errorf("agent %s: subscribing to pushes: %w", a.cfg.ID, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if id := a.cfg.Identity; id != nil {
		// The renewals stop before Run returns: the caller may close Conn once it has.
		rctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			id.KeepRenewed(rctx, a.cfg.Conn, a.cfg.MaxBackoff, nil)
		}()
		defer func() {
			stop()
			<-done
		}()
	}

	attempt := 0
	for ctx.Err() == nil {
		adm, err := a.hello(ctx, &attempt)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if err := a.admitted(ctx, adm); err != nil {
			a.log.Debug("admission could not be applied", "err", err)
			if !sleep(ctx, a.backoff(attempt)) {
				return nil
			}
			attempt++
			continue
		}
		attempt = 0
		end := a.serve(ctx, pushes)
		a.log.Debug("session ended", "why", end, "applied", a.Applied())
		switch end {
		case endStopped:
			return nil
		case endQuarantine:
			a.state.Store("quarantined")
			if !sleep(ctx, jitter(a.cfg.QuarantineHold, 0.2)) {
				return nil
			}
		case endRehello, endReconnect:
			a.c.rehellos.Add(1)
		}
	}
	return nil
}

// backoff is the jittered exponential back-off before Hello attempt n: half fixed, half
// random, so that DSNs that failed together spread out.
func (a *Agent) backoff(n int) time.Duration {
	d := a.cfg.MinBackoff << min(n, 20)
	if d <= 0 || d > a.cfg.MaxBackoff {
		d = a.cfg.MaxBackoff
	}
	return d/2 + time.Duration(mrand.Int64N(int64(d/2)+1))
}

// hello sends Hello until the agent is admitted, honouring retry-after hints and backing off
// when there is no answer.
func (a *Agent) hello(ctx context.Context, attempt *int) (*wire.Admission, error) {
	a.state.Store("hello")
	for {
		h := wire.Hello{
			Protocol:        wire.Version,
			DSN:             a.cfg.ID,
			Labels:          a.cfg.Labels,
			SoftwareVersion: a.cfg.SoftwareVersion,
			AppliedRevision: a.Applied(),
			BootID:          a.bootID,
		}
		data, err := json.Marshal(&h)
		if err != nil {
			return nil, fmt.Errorf("agent %s: encoding hello: %w", a.cfg.ID, err)
		}
		a.c.hellos.Add(1)
		rctx, cancel := context.WithTimeout(ctx, a.cfg.HelloTimeout)
		msg, err := a.cfg.Conn.RequestWithContext(rctx, wire.HelloSubject(a.cfg.ID), data)
		cancel()
		var wait time.Duration
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case err != nil:
			a.c.failures.Add(1)
			a.log.Debug("hello unanswered", "err", err)
			wait = a.backoff(*attempt)
			*attempt++
		default:
			var adm wire.Admission
			if err := wire.Unmarshal(msg.Data, &adm); err != nil {
				a.c.failures.Add(1)
				a.log.Debug("bad admission", "err", err)
				wait = a.backoff(*attempt)
				*attempt++
				break
			}
			switch adm.Status {
			case wire.Admitted:
				a.c.admissions.Add(1)
				return &adm, nil
			case wire.Rejected:
				return nil, fmt.Errorf("%w: %s", ErrRejected, adm.Reason)
			case wire.Retry:
				// The hint is already jittered by the control plane; a little more keeps
				// DSNs on the same hint apart.
				a.c.retries.Add(1)
				wait = jitter(time.Duration(adm.RetryAfterMs)*time.Millisecond, 0.1)
			}
		}
		if !sleep(ctx, wait) {
			return nil, ctx.Err()
		}
	}
}

// admitted brings the config to what the Admission says.
func (a *Agent) admitted(ctx context.Context, adm *wire.Admission) error {
	a.session = adm.SessionID
	a.admitRev = adm.Revision
	a.interval = time.Duration(adm.HeartbeatIntervalMs) * time.Millisecond
	switch {
	case adm.UpToDate:
		a.c.upToDate.Add(1)
		a.setApplied(adm.Revision, nil, false)
		return nil // a version check: nothing to acknowledge
	case adm.Delta != nil:
		a.c.deltas.Add(1)
		if !a.applyDelta(adm.Delta) {
			return fmt.Errorf("inline delta from %d does not apply to revision %d", adm.Delta.From, a.Applied())
		}
	case adm.Snapshot != nil:
		a.c.snapshots.Add(1)
		a.state.Store("syncing")
		if err := a.loadSnapshot(ctx, adm.Snapshot); err != nil {
			return err
		}
	}
	a.ack()
	return nil
}

// serve follows pushes and heartbeats until the session ends.
func (a *Agent) serve(ctx context.Context, pushes <-chan *nats.Msg) string {
	a.state.Store("serving")
	reconnects := a.cfg.Conn.Stats().Reconnects
	// The first heartbeat comes at a random point of the interval, to spread DSNs out.
	timer := time.NewTimer(time.Duration(mrand.Int64N(int64(a.interval)) + 1))
	defer timer.Stop()
	pendingAck := false
	for {
		// Ack once the pushes that arrived together are applied.
		if pendingAck && len(pushes) == 0 {
			a.ack()
			pendingAck = false
		}
		select {
		case <-ctx.Done():
			return endStopped
		case <-a.kick:
			return endReconnect
		case <-timer.C:
			if n := a.cfg.Conn.Stats().Reconnects; n != reconnects {
				return endReconnect
			}
			a.heartbeat()
			timer.Reset(a.interval)
		case msg := <-pushes:
			a.c.pushes.Add(1)
			var p wire.Push
			if err := wire.Unmarshal(msg.Data, &p); err != nil {
				a.log.Debug("bad push", "err", err)
				continue
			}
			if a.cfg.DropPush != nil && a.cfg.DropPush(&p) {
				continue
			}
			switch p.Type {
			case wire.PushDelta, wire.PushCurrent:
				applied := a.Applied()
				switch {
				case p.To <= applied:
					a.c.duplicates.Add(1)
				case p.From > applied && p.To <= a.admitRev:
					// Sent before this session's admission and overtaken by it.
					a.c.duplicates.Add(1)
				case p.From > applied:
					a.c.gaps.Add(1)
					return endGap
				default:
					a.applyDelta(&p)
					pendingAck = true
				}
			case wire.PushResync:
				a.c.resyncs.Add(1)
				a.state.Store("syncing")
				if err := a.loadSnapshot(ctx, p.Snapshot); err != nil {
					a.log.Debug("resync failed", "err", err)
					return endResync
				}
				a.state.Store("serving")
				pendingAck = true
			case wire.PushQuarantine:
				a.c.quarantines.Add(1)
				return endQuarantine
			case wire.PushRehello:
				return endRehello
			}
		}
	}
}

// applyDelta applies a delta or current push if its From is at or below the applied
// revision, and reports whether it did.
func (a *Agent) applyDelta(p *wire.Push) bool {
	applied := a.Applied()
	if p.From > applied {
		return false
	}
	if p.To <= applied {
		return true
	}
	a.setApplied(p.To, p.Changes, false)
	a.c.applied.Add(1)
	return true
}

// setApplied applies changes (replacing the whole config when replace is set) and records rev.
func (a *Agent) setApplied(rev uint64, changes []wire.Change, replace bool) {
	a.mu.Lock()
	if replace {
		clear(a.objects)
	}
	for i := range changes {
		c := &changes[i]
		k := c.Key()
		cur, ok := a.objects[k]
		switch c.Op {
		case wire.OpPut:
			if !ok || c.Revision > cur.rev {
				a.objects[k] = held{obj: c.Object, rev: c.Revision}
			}
		case wire.OpDelete:
			if ok && c.Revision > cur.rev {
				delete(a.objects, k)
			}
		}
	}
	old := a.applied.Swap(rev)
	a.mu.Unlock()
	if rev > old && a.cfg.OnApply != nil {
		a.cfg.OnApply(rev, time.Now())
	}
}

// loadSnapshot fetches a snapshot object and replaces the config with it. The object may have
// been rewritten since the reference was made: a later revision is as good.
func (a *Agent) loadSnapshot(ctx context.Context, ref *wire.SnapshotRef) error {
	obs, err := a.stores.get(ctx, ref.Bucket)
	if err != nil {
		return err
	}
	var lastErr error
	for try := 0; try < 3; try++ {
		if try > 0 && !sleep(ctx, jitter(100*time.Millisecond<<try, 0.5)) {
			return ctx.Err()
		}
		data, err := obs.GetBytes(ctx, ref.Object)
		if err != nil {
			lastErr = fmt.Errorf("fetching snapshot %s/%s: %w", ref.Bucket, ref.Object, err)
			continue
		}
		var s wire.Snapshot
		if err := wire.Unmarshal(data, &s); err != nil {
			lastErr = fmt.Errorf("snapshot %s/%s: %w", ref.Bucket, ref.Object, err)
			continue
		}
		if s.Revision < ref.Revision {
			lastErr = fmt.Errorf("snapshot %s/%s: revision %d, older than the expected %d", ref.Bucket, ref.Object, s.Revision, ref.Revision)
			continue
		}
		if s.Revision == ref.Revision && ref.SHA256 != "" {
			if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != ref.SHA256 {
				lastErr = fmt.Errorf("snapshot %s/%s: sha256 mismatch", ref.Bucket, ref.Object)
				continue
			}
		}
		changes := make([]wire.Change, len(s.Objects))
		for i := range s.Objects {
			o := &s.Objects[i]
			k := o.Key()
			changes[i] = wire.Change{Op: wire.OpPut, Kind: k.Kind, Tenant: k.Tenant, Name: k.Name,
				Revision: revisionOf(o, s.Revision), Object: o}
		}
		a.setApplied(s.Revision, changes, true)
		return nil
	}
	return lastErr
}

func (a *Agent) ack() {
	rev := a.Applied()
	data, _ := json.Marshal(&wire.Ack{DSN: a.cfg.ID, SessionID: a.session, Revision: rev})
	if err := a.cfg.Conn.Publish(wire.AckSubject(a.cfg.ID), data); err == nil {
		a.c.acks.Add(1)
		if a.cfg.OnAck != nil {
			a.cfg.OnAck(rev, time.Now())
		}
	}
}

func (a *Agent) heartbeat() {
	data, _ := json.Marshal(&wire.Heartbeat{DSN: a.cfg.ID, SessionID: a.session, AppliedRevision: a.Applied(),
		State: wire.StateServing, SentUnixNano: time.Now().UnixNano()})
	if err := a.cfg.Conn.Publish(wire.HeartbeatSubject(a.cfg.ID), data); err == nil {
		a.c.heartbeats.Add(1)
	}
}

// revisionOf is an object's revision from its resourceVersion, or fallback.
func revisionOf(o *model.Object, fallback uint64) uint64 {
	if v, err := strconv.ParseUint(o.Metadata.ResourceVersion, 10, 64); err == nil && v > 0 {
		return v
	}
	return fallback
}

// storeCache binds object stores once per connection rather than once per fetch.
type storeCache struct {
	js jetstream.JetStream
	nc *nats.Conn
	mu sync.Mutex
	m  map[string]jetstream.ObjectStore
}

func (c *storeCache) get(ctx context.Context, bucket string) (jetstream.ObjectStore, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if obs := c.m[bucket]; obs != nil {
		return obs, nil
	}
	if c.js == nil {
		js, err := jetstream.New(c.nc)
		if err != nil {
			return nil, fmt.Errorf("jetstream: %w", err)
		}
		c.js = js
	}
	obs, err := c.js.ObjectStore(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("binding object store %q: %w", bucket, err)
	}
	if c.m == nil {
		c.m = map[string]jetstream.ObjectStore{}
	}
	c.m[bucket] = obs
	return obs, nil
}
