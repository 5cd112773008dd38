package ingest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/agent"
	"github.com/dsnscale/dsnscale/controlplane/api"
	"github.com/dsnscale/dsnscale/controlplane/distrib"
	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/store"
	"github.com/dsnscale/dsnscale/inventory"
	"github.com/dsnscale/dsnscale/search"
)

// The query API's dependencies are what the backends and the distributor offer.
var (
	_ Fleet           = (*distrib.Distributor)(nil)
	_ Fleet           = api.Fleet(nil)
	_ Searcher        = search.Index(nil)
	_ InventoryReader = inventory.Inventory(nil)
)

// TestInventoryFollowsTheDistributor runs the real distributor with reference agents and checks
// that the inventory shows them as the distributor sees them.
func TestInventoryFollowsTheDistributor(t *testing.T) {
	b := startBus(t)
	js, err := jetstream.New(b.cp)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := store.Open(ctx, js, store.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	d, err := distrib.New(distrib.Config{Conn: b.cp, JS: js, Store: st, HeartbeatInterval: 200 * time.Millisecond})
	require.NoError(t, err)
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		<-done
	})
	require.NoError(t, d.WaitReady(ctx))

	in, _ := start(t, b, func(c *Config) { c.InventoryInterval = 50 * time.Millisecond })
	require.NoError(t, in.TrackFleet(d))

	const n = 3
	stops := make([]func(), n)
	for i := range n {
		a, err := agent.New(agent.Config{ID: fmt.Sprintf("dpu-%d", i), Labels: map[string]string{"site": "s1", "rack": fmt.Sprintf("r%d", i)},
			Conn: b.dsn, SoftwareVersion: "2.4.1", Logger: quiet()})
		require.NoError(t, err)
		actx, acancel := context.WithCancel(context.Background())
		adone := make(chan struct{})
		go func() {
			defer close(adone)
			_ = a.Run(actx)
		}()
		stops[i] = func() {
			acancel()
			<-adone
		}
		t.Cleanup(stops[i])
	}

	h := in.Handler()
	require.Eventually(t, func() bool {
		var l dsnList
		return get(t, h, "/api/v1/inventory/dsns?"+q("state", model.DSNStateInSync, "labelSelector", "site=s1"), &l) == 200 && len(l.Items) == n
	}, 20*time.Second, 20*time.Millisecond)
	var l dsnList
	require.Equal(t, 200, get(t, h, "/api/v1/inventory/dsns", &l))
	require.Len(t, l.Items, n)
	for i, r := range l.Items {
		assert.Equal(t, fmt.Sprintf("dpu-%d", i), r.ID)
		assert.Equal(t, "2.4.1", r.SoftwareVersion)
		assert.Equal(t, "s1", r.Site)
		assert.Equal(t, fmt.Sprintf("r%d", i), r.Rack)
		assert.False(t, r.LastSeen.IsZero())
	}

	// A decommissioned DSN leaves the inventory (stopped first, so that it does not come back).
	stops[1]()
	require.NoError(t, d.Decommission(context.Background(), "dpu-1"))
	require.Eventually(t, func() bool {
		var e errorBody
		return get(t, h, "/api/v1/inventory/dsns/dpu-1", &e) == 404
	}, 10*time.Second, 20*time.Millisecond)
}
