package distrib_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/distrib"
	"github.com/dsnscale/dsnscale/controlplane/store"
	"github.com/dsnscale/dsnscale/controlplane/wire"
)

// settle moves the fake clock on by the coalescing window until distribution reaches rev.
func (c *cp) settle(t *testing.T, clk *fakeClock, rev uint64) {
	t.Helper()
	require.Eventually(t, func() bool {
		clk.advance(distrib.MaxCoalesceWindow)
		return c.d.Revision() >= rev
	}, 10*time.Second, time.Millisecond, "distribution at revision %d", rev)
}

// queued waits until n store events wait for the coalescing window, and the distributor for
// its timer.
func (c *cp) queued(t *testing.T, clk *fakeClock, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		return c.counter("queue_depth", "queue", "event") == float64(n) && clk.Pending() == 1
	}, 10*time.Second, time.Millisecond, "%d store events waiting", n)
}

func TestBurstIsOneDeltaPerGroupWithinTheWindow(t *testing.T) {
	clk := newFakeClock()
	const window = distrib.MaxCoalesceWindow
	c := startCP(t, func(cfg *distrib.Config) {
		cfg.Clock = clk
		cfg.CoalesceWindow = window
		cfg.StragglerDeadline = time.Hour
		cfg.OfflineAfter = 1000 * time.Hour
	})
	assert.Equal(t, window.Seconds(), c.counter("coalesce_window_seconds"))
	r0 := c.commit(tenantOp("t1"), create(networkObj("t1", "a", "10.0.0.0/24")),
		create(policyObj("t1", "web", map[string]string{"role": "web"}, "a", "a")),
		create(policyObj("t1", "db", map[string]string{"role": "db"}, "a", "a")))
	c.settle(t, clk, r0)
	var dsns []*rawDSN
	for i, labels := range []map[string]string{web, web, db} {
		d := c.rawDSN(t, fmt.Sprintf("d%d", i))
		defer d.close()
		d.labels = labels
		d.register(c)
		dsns = append(dsns, d)
	}
	batches, events := c.counter("batches_total"), c.counter("batch_events_total")

	// A burst of writes to both groups' views, all inside the window.
	const n = 12
	var last uint64
	for i := range n {
		role := []string{"web", "db"}[i%2]
		last = c.commit(create(policyObj("t1", fmt.Sprintf("%s-%d", role, i), map[string]string{"role": role}, "a", "a")))
	}
	c.queued(t, clk, n)
	clk.advance(window - time.Millisecond)
	for _, d := range dsns {
		require.Empty(t, d.received(), "nothing goes out before the window ends")
	}
	clk.advance(time.Millisecond)
	c.caughtUp(t, last)
	var got [][]*wire.Push
	for _, d := range dsns {
		ps := d.received()
		require.Len(t, ps, 1, "one push for the whole burst")
		require.Equal(t, wire.PushDelta, ps[0].Type)
		require.Equal(t, r0, ps[0].From)
		require.Equal(t, last, ps[0].To)
		got = append(got, ps)
	}
	assert.Len(t, got[0][0].Changes, n/2, "the web group's delta has the web half of the burst")
	assert.Equal(t, got[0], got[1], "the members of a group get the same delta")
	assert.Len(t, got[2][0].Changes, n/2)
	assert.Equal(t, batches+1, c.counter("batches_total"))
	assert.Equal(t, events+n, c.counter("batch_events_total"))

	// The window runs from the first change waiting: a later one does not hold it open.
	first := c.commit(create(networkObj("t1", "b", "10.0.1.0/24")))
	c.queued(t, clk, 1)
	clk.advance(60 * time.Millisecond)
	second := c.commit(store.Op{Type: store.OpCreate, Object: networkObj("t1", "c", "10.0.2.0/24")})
	c.queued(t, clk, 2)
	require.Greater(t, second, first)
	clk.advance(window - 60*time.Millisecond)
	c.caughtUp(t, second)
	for _, d := range dsns {
		ps := d.received()
		require.Len(t, ps, 1)
		assert.Equal(t, wire.Push{Type: wire.PushCurrent, From: last, To: second}, *ps[0])
	}
}
