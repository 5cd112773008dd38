package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/model"
)

func TestWatchReplaysThenFollows(t *testing.T) {
	e := newEnv(t, Config{WatchBuffer: 4})
	s := e.st
	for i := range 10 {
		mustCommit(t, s, create(network("a", fmt.Sprintf("n%d", i), i)))
	}
	// Replaying more history than WatchBuffer is fine: only live lag counts.
	w, err := s.Watch(ctxT(t), 3)
	require.NoError(t, err)
	evs := collect(t, w, 7)
	for i, ev := range evs {
		assert.Equal(t, Revision(4+i), ev.Revision)
	}
	_, rev := mustCommit(t, s, create(network("a", "live", 1)))
	ev := collect(t, w, 1)[0]
	assert.Equal(t, rev, ev.Revision)
	assert.Equal(t, "live", ev.Object.Metadata.Name)

	// A watch from the future waits for it.
	fw, err := s.Watch(ctxT(t), rev+1)
	require.NoError(t, err)
	mustCommit(t, s, create(network("a", "f1", 1)))
	mustCommit(t, s, create(network("a", "f2", 1)))
	ev = collect(t, fw, 1)[0]
	assert.Equal(t, "f2", ev.Object.Metadata.Name)
}

func TestWatchContextEnds(t *testing.T) {
	e := newEnv(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	w, err := e.st.Watch(ctx, 0)
	require.NoError(t, err)
	cancel()
	select {
	case _, ok := <-w.Events():
		require.False(t, ok)
	case <-time.After(5 * time.Second):
		t.Fatal("watch did not end with its context")
	}
	assert.NoError(t, w.Err())
}

// TestSlowWatcher checks that a watcher that does not read is ended and never holds up commits.
func TestSlowWatcher(t *testing.T) {
	e := newEnv(t, Config{WatchBuffer: 4})
	s := e.st
	w, err := s.Watch(ctxT(t), 0)
	require.NoError(t, err)
	for i := range 20 {
		mustCommit(t, s, create(network("a", fmt.Sprintf("n%d", i), i)))
	}
	// The watcher may hold one event ready to send; the rest must not pile up.
	deadline := time.After(10 * time.Second)
	got := 0
	for {
		select {
		case _, ok := <-w.Events():
			if !ok {
				require.ErrorIs(t, w.Err(), ErrSlowWatcher)
				assert.Less(t, got, 20)
				return
			}
			got++
			time.Sleep(50 * time.Millisecond) // read, but too slowly to catch up before the check
		case <-deadline:
			t.Fatal("slow watcher was not ended")
		}
	}
}

func TestHistoryBound(t *testing.T) {
	e := newEnv(t, Config{MaxHistoryEvents: 5})
	s := e.st
	for i := range 10 {
		mustCommit(t, s, create(network("a", fmt.Sprintf("n%d", i), i)))
	}
	assert.Equal(t, Revision(5), s.CompactedRevision())
	_, err := s.Watch(ctxT(t), 4)
	require.ErrorIs(t, err, ErrCompacted)
	_, err = s.Changes(4, 10)
	require.ErrorIs(t, err, ErrCompacted)
	ch, err := s.Changes(5, 10)
	require.NoError(t, err)
	assert.Len(t, ch, 5)

	e.restart()
	assert.Equal(t, Revision(5), e.st.CompactedRevision(), "the rebuilt log keeps the same bound")
	_, err = e.st.Watch(ctxT(t), 4)
	require.ErrorIs(t, err, ErrCompacted)
	// State is whole: only history is bounded.
	res, err := e.st.List(ctxT(t), model.KindNetwork, ListOptions{})
	require.NoError(t, err)
	assert.Len(t, res.Items, 10)
}

func TestChanges(t *testing.T) {
	e := newEnv(t, Config{})
	s := e.st
	x, _ := mustCommit(t, s, create(network("a", "x", 1)), create(network("a", "y", 1))) // 1, 2
	mustCommit(t, s, update(x[0]))                                                       // 3
	mustCommit(t, s, del(x[1]))                                                          // 4
	mustCommit(t, s, create(network("a", "z", 1)))                                       // 5

	render := func(evs []Event) []string {
		var out []string
		for _, ev := range evs {
			out = append(out, fmt.Sprintf("%d %s %s", ev.Revision, ev.Type, ev.Key.Name))
		}
		return out
	}
	tests := []struct {
		from, to Revision
		want     []string
	}{
		{0, 5, []string{"3 update x", "4 delete y", "5 create z"}},
		{0, 2, []string{"1 create x", "2 create y"}},
		{1, 3, []string{"2 create y", "3 update x"}},
		{3, 3, nil},
		{4, 100, []string{"5 create z"}},
	}
	for _, tt := range tests {
		got, err := s.Changes(tt.from, tt.to)
		require.NoError(t, err)
		assert.Equal(t, tt.want, render(got), "(%d, %d]", tt.from, tt.to)
	}
	_, err := s.Changes(3, 2)
	assert.ErrorIs(t, err, ErrInvalid)
}
