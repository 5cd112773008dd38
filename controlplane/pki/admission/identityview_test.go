package admission

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// otherReplica opens the identity bucket through a connection of its own, as another
// control-plane replica would.
func otherReplica(t *testing.T, e *env) *Identities {
	t.Helper()
	nc, err := nats.Connect(e.url)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ids, err := OpenIdentities(context.Background(), js, "")
	require.NoError(t, err)
	return ids
}

func TestIdentityViewSeesWhatWasWrittenBeforeTheMark(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	require.NoError(t, e.ids.Put(ctx, Admitted{DSN: "dsn-old", Tenant: "t0"}))
	view, err := e.ids.Watch(ctx, nil)
	require.NoError(t, err)
	other := otherReplica(t, e)

	got, ok, err := view.Get(ctx, "dsn-old", view.Mark())
	require.NoError(t, err)
	require.True(t, ok, "a record the bucket held when the view started")
	require.Equal(t, "t0", got.Tenant)

	// Each record is written through another connection and read at once: a cache that
	// answered from whatever its watch had delivered would miss some of them.
	for i := range 200 {
		id := fmt.Sprintf("dsn-%d", i)
		require.NoError(t, other.Put(ctx, Admitted{DSN: id, Tenant: "t1", Labels: map[string]string{"site": "s1"}}))
		got, ok, err := view.Get(ctx, id, view.Mark())
		require.NoError(t, err)
		require.Truef(t, ok, "record %d written before the mark was not seen", i)
		require.Equal(t, "s1", got.Labels["site"])

		_, err = other.SetLabels(ctx, id, map[string]string{"site": "s2"})
		require.NoError(t, err)
		got, _, err = view.Get(ctx, id, view.Mark())
		require.NoError(t, err)
		require.Equalf(t, "s2", got.Labels["site"], "record %d: relabelled before the mark", i)

		require.NoError(t, other.Delete(ctx, id))
		_, ok, err = view.Get(ctx, id, view.Mark())
		require.NoError(t, err)
		require.Falsef(t, ok, "record %d deleted before the mark is still there", i)
	}
}

func TestIdentityViewReadsMarkedTogetherShareAFence(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	view, err := e.ids.Watch(ctx, nil)
	require.NoError(t, err)
	require.NoError(t, e.ids.Put(ctx, Admitted{DSN: "dsn-1", Tenant: "t"}))

	mark := view.Mark()
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			_, ok, err := view.Get(ctx, "dsn-1", mark)
			require.NoError(t, err)
			require.True(t, ok)
		})
	}
	wg.Wait()
	view.mu.Lock()
	fences := view.started
	view.mu.Unlock()
	require.LessOrEqual(t, fences, uint64(2), "100 reads with one mark ran %d fences", fences)

	// A read marked before a fence that has ended does not wait for another.
	_, _, err = view.Get(ctx, "dsn-1", mark)
	require.NoError(t, err)
	view.mu.Lock()
	require.Equal(t, fences, view.started)
	view.mu.Unlock()
}

func TestIdentityViewReadsTheBucketOnceItStopsFollowing(t *testing.T) {
	e := newEnv(t)
	watchCtx, stop := context.WithCancel(context.Background())
	view, err := e.ids.Watch(watchCtx, nil)
	require.NoError(t, err)
	stop()
	require.Eventually(t, func() bool {
		view.mu.Lock()
		defer view.mu.Unlock()
		return view.ended != nil
	}, 5*time.Second, 10*time.Millisecond)

	ctx := context.Background()
	require.NoError(t, e.ids.Put(ctx, Admitted{DSN: "dsn-late", Tenant: "t"}))
	got, ok, err := view.Get(ctx, "dsn-late", view.Mark())
	require.NoError(t, err)
	require.True(t, ok, "a view that stopped following must read the bucket")
	require.Equal(t, "t", got.Tenant)
}
