package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/store"
)

// TestRevisionFromAnotherReplica checks that a replica whose store lags the bucket does not
// refuse a revision a client got from another replica: the watch and the convergence query
// read the other writers' commits first. The second replica's background follower is stopped,
// so that only that read can bring the revision in.
func TestRevisionFromAnotherReplica(t *testing.T) {
	e := newTestEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	lagging, err := store.Open(ctx, e.js, store.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = lagging.Close() })
	fctx, stopFollowing := context.WithCancel(ctx)
	require.NoError(t, lagging.Follow(fctx))
	stopFollowing()

	h, err := New(Config{Store: lagging, Fleet: e.fleet, HeartbeatInterval: time.Hour})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	replica := &testEnv{t: t, url: srv.URL, store: lagging, fleet: e.fleet}

	e.must(http.StatusCreated, "POST", "/api/v1/tenants", tenant("acme"))
	e.must(http.StatusCreated, "POST", "/api/v1/tenants", tenant("beta"))
	rev := e.store.Revision()

	var c struct{ Revision uint64 }
	replica.must(http.StatusOK, "GET", fmt.Sprintf("/api/v1/convergence?revision=%d", rev), nil).json(t, &c)
	assert.Equal(t, rev, c.Revision)

	e.must(http.StatusCreated, "POST", "/api/v1/tenants", tenant("gamma"))
	from := e.store.Revision()
	e.must(http.StatusCreated, "POST", "/api/v1/tenants", tenant("delta"))
	w := replica.openWatch(fmt.Sprintf("?fromRevision=%d", from), nil)
	ev := w.decode(t)
	assert.Equal(t, from+1, ev.Revision)
	assert.Equal(t, "delta", ev.Object.Metadata.Name)

	// A revision no replica has committed is still refused.
	future := replica.must(http.StatusBadRequest, "GET", "/api/v1/watch?fromRevision=999999", nil).err(t)
	assert.Contains(t, future.Message, "does not exist yet")
}
