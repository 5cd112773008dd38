package store

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/model"
)

// streamSeqs lists the sequences still in the bucket's stream among 1..upTo.
func streamSeqs(t *testing.T, s *KV, upTo Revision) []Revision {
	t.Helper()
	var out []Revision
	for seq := Revision(1); seq <= upTo; seq++ {
		_, err := s.stream.GetMsg(ctxT(t), seq)
		if err == nil {
			out = append(out, seq)
			continue
		}
		require.ErrorIs(t, err, jetstream.ErrMsgNotFound)
	}
	return out
}

func listAll(t *testing.T, s *KV) []*model.Object {
	t.Helper()
	res, err := s.List(ctxT(t), model.KindNetwork, ListOptions{})
	require.NoError(t, err)
	return res.Items
}

// TestCompactKeepsCurrentState compacts a history of creates, updates and deletes and checks
// that current state survives in memory, in the stream and across a restart, while history at
// or below the horizon is gone for good.
func TestCompactKeepsCurrentState(t *testing.T) {
	e := newEnv(t, Config{})
	s := e.st
	a, _ := mustCommit(t, s, create(network("t", "a", 1))) // 1
	b, _ := mustCommit(t, s, create(network("t", "b", 1))) // 2
	a, _ = mustCommit(t, s, update(a[0]))                  // 3: a's current value, below the horizon
	mustCommit(t, s, del(b[0]))                            // 4: b gone at or below the horizon
	c, _ := mustCommit(t, s, create(network("t", "c", 1))) // 5
	mustCommit(t, s, update(c[0]))                         // 6: c's current value, at the horizon
	d, _ := mustCommit(t, s, create(network("t", "d", 1))) // 7
	mustCommit(t, s, del(d[0]))                            // 8: d deleted above the horizon
	f, _ := mustCommit(t, s, create(network("t", "f", 1))) // 9
	mustCommit(t, s, update(f[0]))                         // 10: f updated above the horizon
	before := listAll(t, s)

	w, err := s.Watch(context.Background(), 0)
	require.NoError(t, err)

	require.NoError(t, s.Compact(ctxT(t), 6))
	assert.Equal(t, Revision(6), s.CompactedRevision())
	assert.Equal(t, before, listAll(t, s))
	assert.Equal(t, []Revision{3, 6, 7, 8, 9, 10}, streamSeqs(t, s, 10))

	// The unread watcher lost events to the compaction.
	select {
	case <-w.Events():
	case <-time.After(5 * time.Second):
	}
	for range w.Events() {
	}
	assert.ErrorIs(t, w.Err(), ErrCompacted)

	check := func(s *KV) {
		t.Helper()
		_, err := s.Changes(5, 10)
		assert.ErrorIs(t, err, ErrCompacted)
		_, err = s.Watch(ctxT(t), 5)
		assert.ErrorIs(t, err, ErrCompacted)
		ch, err := s.Changes(6, 10)
		require.NoError(t, err)
		require.Len(t, ch, 2)
		assert.Equal(t, Event{Revision: 8, Type: OpDelete, Key: d[0].Key(), Object: ch[0].Object}, ch[0])
		assert.Equal(t, "7", ch[0].Object.Metadata.ResourceVersion)
		assert.Equal(t, OpUpdate, ch[1].Type, "an update stays an update though its create was purged")
		w, err := s.Watch(ctxT(t), 6)
		require.NoError(t, err)
		evs := collect(t, w, 4)
		assert.Equal(t, []Revision{7, 8, 9, 10}, []Revision{evs[0].Revision, evs[1].Revision, evs[2].Revision, evs[3].Revision})
	}
	check(s)

	e.restart()
	s = e.st
	assert.Equal(t, Revision(6), s.CompactedRevision(), "the horizon survives a restart")
	assert.Equal(t, Revision(10), s.Revision())
	assert.Equal(t, before, listAll(t, s))
	check(s)

	// b's delete marker is gone, d's is not: both can be created again.
	_, rev := mustCommit(t, s, create(network("t", "b", 2)), create(network("t", "d", 2)))
	assert.Equal(t, Revision(12), rev)
	got, err := s.Get(ctxT(t), a[0].Key())
	require.NoError(t, err)
	assert.Equal(t, a[0], got)

	// Compacting again purges only what became history; the same horizon is a no-op.
	require.NoError(t, s.Compact(ctxT(t), 6))
	require.NoError(t, s.Compact(ctxT(t), 12))
	assert.Equal(t, []Revision{3, 6, 10, 11, 12}, streamSeqs(t, s, 12))
	assert.ErrorIs(t, s.Compact(ctxT(t), 13), ErrInvalid)
	assert.Equal(t, Revision(12), s.CompactedRevision())
}

func TestRunCompactor(t *testing.T) {
	e := newEnv(t, Config{})
	s := e.st
	for range 5 {
		mustCommit(t, s, create(network("t", "n"+rv(s.Revision()), 1)))
	}
	ticks := make(chan time.Time)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.RunCompactor(ctx, 2, ticks) }()
	ticks <- time.Time{}
	ticks <- time.Time{} // the first tick's compaction has finished once the second is taken
	assert.Equal(t, Revision(3), s.CompactedRevision())
	mustCommit(t, s, create(network("t", "later", 1)))
	ticks <- time.Time{}
	ticks <- time.Time{}
	assert.Equal(t, Revision(4), s.CompactedRevision())
	cancel()
	require.NoError(t, <-done)

	go func() { done <- s.RunCompactor(context.Background(), 2, ticks) }()
	require.NoError(t, s.Close())
	require.ErrorIs(t, <-done, ErrClosed)
}
