package store

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// followRetry is how long Follow waits before it reads the stream again after a failed read.
const followRetry = 100 * time.Millisecond

// Follow keeps the store current with the writes other writers of the bucket make (the other
// replicas of a clustered control plane): an ordered consumer of the bucket's stream (headers
// only) tells it of every new message, and when one is past the store's revision the store reads
// the stream as it does after a conflict, so that Get, List and watches see the change. A store
// that is the bucket's only writer does not need it. It runs until ctx ends or the store closes.
//
// What another writer committed is visible here once read: a read through this store may lag a
// write through another by the time it takes to read the stream (milliseconds on a healthy
// cluster). A Commit here is checked by the server against the bucket's last sequence per key,
// whatever this store has read.
func (s *KV) Follow(ctx context.Context) error {
	if s.isClosed.Load() {
		return ErrClosed
	}
	s.mu.Lock()
	from := s.applied + 1
	s.mu.Unlock()
	s.following.Store(true)
	var seen atomic.Uint64
	kick := make(chan struct{}, 1)
	cc, err := s.consumeHeaders(ctx, from, func(m jetstream.Msg) {
		meta, err := m.Metadata()
		if err != nil {
			return
		}
		for {
			old := seen.Load()
			if meta.Sequence.Stream <= old || seen.CompareAndSwap(old, meta.Sequence.Stream) {
				break
			}
		}
		select {
		case kick <- struct{}{}:
		default:
		}
	})
	if err != nil {
		return fmt.Errorf("store: follow bucket %s: %w", s.cfg.Bucket, err)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer cc.Stop()
		retry := time.NewTimer(0)
		<-retry.C
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.closing:
				return
			case <-kick:
			case <-retry.C:
			}
			if seen.Load() <= s.Revision() {
				continue
			}
			err := s.readOthers(ctx)
			switch {
			case errors.Is(err, ErrClosed) || ctx.Err() != nil:
				return
			case err != nil:
				s.log.Warn("reading other writers' changes", "err", err)
				retry.Reset(followRetry)
			case seen.Load() > s.Revision():
				// The stream as read was behind what the consumer delivered (a replica that
				// had not applied it yet answered): read again shortly.
				retry.Reset(followRetry)
			}
		}
	}()
	return nil
}

// followAttempts is how many times Follow asks for its consumer when the request goes
// unanswered: a replica that starts while its cluster elects the stream's leader may find nobody
// to answer for a while.
const followAttempts = 3

// consumeHeaders starts an ordered, headers-only consumer of the stream from sequence from.
func (s *KV) consumeHeaders(ctx context.Context, from Revision, fn jetstream.MessageHandler) (jetstream.ConsumeContext, error) {
	var err error
	for range followAttempts {
		rctx, cancel := s.requestContext(ctx)
		var cons jetstream.Consumer
		cons, err = s.stream.OrderedConsumer(rctx, jetstream.OrderedConsumerConfig{
			DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
			OptStartSeq:   from,
			HeadersOnly:   true,
		})
		cancel()
		if err == nil {
			var cc jetstream.ConsumeContext
			if cc, err = cons.Consume(fn); err == nil {
				return cc, nil
			}
		}
		if ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, nats.ErrNoResponders) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(followRetry):
		}
	}
	return nil, err
}

// CatchUp reads what other writers committed past this store's revision, now, when the store
// follows them (Follow); otherwise it has nothing to read and returns at once.
func (s *KV) CatchUp(ctx context.Context) error {
	if !s.following.Load() {
		return nil
	}
	return s.readOthers(ctx)
}

// Shared is implemented by a store that other writers share (the replicas of a replicated
// control plane): CatchUp reads what they committed, now.
type Shared interface {
	CatchUp(ctx context.Context) error
}

// Reach returns s's revision after, if rev is past it and s is shared, reading the other
// writers' commits: a client holding rev most likely had it from another replica, and a
// replica that only lags must not answer that the revision does not exist.
func Reach(ctx context.Context, s Store, rev Revision) (Revision, error) {
	cur := s.Revision()
	sh, ok := s.(Shared)
	if !ok || rev <= cur {
		return cur, nil
	}
	if err := sh.CatchUp(ctx); err != nil {
		return s.Revision(), fmt.Errorf("reading other replicas' commits up to revision %d: %w", rev, err)
	}
	return s.Revision(), nil
}

// readOthers reads the stream past the applied revision.
func (s *KV) readOthers(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	rctx, cancel := s.requestContext(ctx)
	defer cancel()
	_, err := s.catchUp(rctx, "")
	return err
}
