package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// horizonKey holds the compaction horizon in the companion bucket.
const horizonKey = "compacted"

// Compact drops history at or below rev, never current state. It first persists rev as the
// horizon, so that Watch and Changes from below it give ErrCompacted from now on and after a
// restart, then drops the in-memory events and finally purges from the stream every message
// at or below rev that a later one of the same key supersedes, and deletes whose marker is at
// or below rev. Compacting to or below the current horizon does nothing; above the current
// revision is ErrInvalid. Commits wait while it runs.
func (s *KV) Compact(ctx context.Context, rev Revision) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if rev > s.applied {
		return fmt.Errorf("compact to revision %d: beyond the current revision %d: %w", rev, s.applied, ErrInvalid)
	}
	s.logMu.RLock()
	horizon := s.horizon
	s.logMu.RUnlock()
	if rev <= horizon {
		return nil
	}
	start := time.Now()
	if _, err := s.meta.Put(ctx, horizonKey, []byte(strconv.FormatUint(rev, 10))); err != nil {
		return fmt.Errorf("compact to revision %d: persist the horizon: %w", rev, err)
	}

	s.logMu.Lock()
	s.horizon = rev
	s.dropEventsLocked(s.firstAfterLocked(rev))
	s.metrics.eventLog.Set(float64(len(s.events)))
	s.notifyLocked() // watchers that had not got there yet end with ErrCompacted
	s.logMu.Unlock()

	purged := 0
	for skey, e := range s.index {
		upTo := purgeBound(e, rev)
		if e.first >= upTo {
			continue
		}
		err := s.stream.Purge(ctx, jetstream.WithPurgeSubject(s.prefix+skey), jetstream.WithPurgeSequence(upTo))
		if err != nil {
			return fmt.Errorf("compact to revision %d: purge %s: %w", rev, e.key, err)
		}
		purged++
		e.first = upTo
		if e.obj == nil && e.seq <= rev {
			// The key is gone from the stream: its next create expects no message at all.
			delete(s.index, skey)
		}
	}
	s.metrics.compactions.Inc()
	s.log.Info("compacted", "revision", rev, "keysPurged", purged, "took", time.Since(start))
	return nil
}

// purgeBound is the sequence below which all of a key's messages can go when compacting to rev:
// everything up to rev but the key's current value, or everything for a delete at or below rev.
func purgeBound(e *entry, rev Revision) Revision {
	if e.obj == nil && e.seq <= rev {
		return e.seq + 1
	}
	return min(e.seq, rev+1)
}

// RunCompactor keeps the last keep revisions of history: on every tick it compacts to
// Revision()-keep. Pass time.NewTicker(d).C, or a channel a test controls. It logs failures and
// carries on; it returns nil when ctx ends and ErrClosed when the store closes.
func (s *KV) RunCompactor(ctx context.Context, keep Revision, ticks <-chan time.Time) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.closing:
			return ErrClosed
		case <-ticks:
		}
		rev := s.Revision()
		if rev <= keep {
			continue
		}
		if err := s.Compact(ctx, rev-keep); err != nil {
			if errors.Is(err, ErrClosed) {
				return err
			}
			if ctx.Err() != nil {
				return nil
			}
			s.log.Warn("compaction failed", "revision", rev-keep, "err", err)
		}
	}
}
