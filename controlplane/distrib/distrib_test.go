package distrib_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/agent"
	"github.com/dsnscale/dsnscale/controlplane/distrib"
	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/wire"
)

var (
	web = map[string]string{"role": "web", "site": "s1"}
	db  = map[string]string{"role": "db", "site": "s1"}
)

func TestAgentsConvergeOnPolicyAndNetworkChanges(t *testing.T) {
	c := startCP(t, nil)
	c.commit(tenantOp("t1"), create(networkObj("t1", "front", "10.0.0.0/24")), create(networkObj("t1", "back", "10.0.1.0/24")))
	webs := c.pool(2, agents("web", 3, web)...)
	dbs := c.pool(1, agents("db", 2, db)...)
	all := append(append([]*agent.Agent(nil), webs...), dbs...)

	front := model.Key{Kind: model.KindNetwork, Tenant: "t1", Name: "front"}
	back := model.Key{Kind: model.KindNetwork, Tenant: "t1", Name: "back"}
	pol := model.Key{Kind: model.KindPolicy, Tenant: "t1", Name: "p"}

	// Nothing selects anyone yet: everyone is up to date with an empty config.
	rev := c.st.Revision()
	converged(t, all, rev, []string{})

	// A policy for web DSNs brings them the policy and both networks it names.
	rev = c.commit(create(policyObj("t1", "p", map[string]string{"role": "web"}, "front", "back")))
	converged(t, webs, rev, c.want(front, back, pol))
	converged(t, dbs, rev, []string{})

	// Updating a network in the view reaches web DSNs; db DSNs only get a version check.
	rev = c.commit(update(networkObj("t1", "back", "10.0.9.0/24")))
	converged(t, webs, rev, c.want(front, back, pol))
	converged(t, dbs, rev, []string{})

	// Retargeting the policy to db DSNs moves the whole view.
	rev = c.commit(update(policyObj("t1", "p", map[string]string{"role": "db"}, "front", "back")))
	converged(t, webs, rev, []string{})
	converged(t, dbs, rev, c.want(front, back, pol))

	// A policy change that drops a network removes only that network.
	rev = c.commit(update(policyObj("t1", "p", map[string]string{"role": "db"}, "front", "")))
	converged(t, dbs, rev, c.want(front, pol))

	// Deleting the policy empties every view.
	rev = c.commit(remove(policyObj("t1", "p", nil, "", "")))
	converged(t, all, rev, []string{})

	conv := c.acked(t, rev, 5)
	assert.Equal(t, 5, conv.Total)
	assert.Equal(t, 5, conv.AtOrPast)
	assert.Zero(t, conv.Behind)
	assert.Empty(t, conv.BehindDSNs)
	for _, a := range all {
		st := c.status(a.ID())
		assert.Equal(t, model.DSNStateInSync, st.State, a.ID())
		assert.Equal(t, rev, st.AppliedRevision)
		assert.Equal(t, rev, st.DesiredRevision)
		assert.NotEmpty(t, st.SessionID)
		assert.Zero(t, a.Stats().Gaps, a.ID())
	}
	assert.Positive(t, c.counter("pushes_total", "type", wire.PushCurrent))
	assert.Positive(t, c.counter("pushes_total", "type", wire.PushDelta))
	assert.Positive(t, c.counter("acks_total", "outcome", "ok"))
}

func TestCurrentDSNGetsUpToDateWithoutPayload(t *testing.T) {
	c := startCP(t, nil)
	c.commit(tenantOp("t1"), create(networkObj("t1", "n", "10.0.0.0/24")))
	rev := c.commit(create(policyObj("t1", "p", nil, "n", "n")))
	want := c.want(model.Key{Kind: model.KindNetwork, Tenant: "t1", Name: "n"}, model.Key{Kind: model.KindPolicy, Tenant: "t1", Name: "p"})

	// A new DSN fetches the snapshot.
	c.caughtUp(t, rev)
	first, stop := c.startAgents(1, agents("d", 1, web)...)
	converged(t, first, rev, want)
	assert.EqualValues(t, 1, first[0].Stats().Snapshots)
	applied, objs := first[0].Config()
	stop()

	// The same DSN restarting with that config is told it is up to date, with no payload.
	cfg := agents("d", 1, web)[0]
	cfg.InitialRevision, cfg.InitialObjects = applied, objs
	again := c.pool(1, cfg)
	admitted(t, again, 1)
	converged(t, again, rev, want)
	st := again[0].Stats()
	assert.EqualValues(t, 1, st.UpToDate)
	assert.Zero(t, st.Snapshots)
	assert.Zero(t, st.Deltas)
	assert.Zero(t, st.Acks, "a version check needs no ack")
	assert.Positive(t, c.counter("hellos_total", "outcome", "uptodate"))
}

func TestRestartWithOlderRevisionGetsDeltaOrSnapshot(t *testing.T) {
	c := startCP(t, nil)
	c.commit(tenantOp("t1"), create(networkObj("t1", "a", "10.0.0.0/24")), create(networkObj("t1", "b", "10.0.1.0/24")))
	c.commit(create(policyObj("t1", "p", map[string]string{"role": "web"}, "a", "a")))
	first, stop := c.startAgents(1, agents("d", 1, web)...)
	rev := c.st.Revision()
	converged(t, first, rev, c.want(model.Key{Kind: model.KindNetwork, Tenant: "t1", Name: "a"}, model.Key{Kind: model.KindPolicy, Tenant: "t1", Name: "p"}))
	oldRev, oldObjs := first[0].Config()

	// The config moves on while the DSN is "down".
	rev = c.commit(update(policyObj("t1", "p", map[string]string{"role": "web"}, "a", "b")))
	want := c.want(model.Key{Kind: model.KindNetwork, Tenant: "t1", Name: "a"}, model.Key{Kind: model.KindNetwork, Tenant: "t1", Name: "b"}, model.Key{Kind: model.KindPolicy, Tenant: "t1", Name: "p"})
	converged(t, first, rev, want)
	stop()

	// Restarting from the older cached config gets the difference inline.
	cfg := agents("d", 1, web)[0]
	cfg.InitialRevision, cfg.InitialObjects = oldRev, oldObjs
	again, stop := c.startAgents(1, cfg)
	admitted(t, again, 1)
	converged(t, again, rev, want)
	assert.EqualValues(t, 1, again[0].Stats().Deltas)
	assert.Zero(t, again[0].Stats().Snapshots)

	// With other labels, its cached config is for another view: it gets a snapshot.
	cfg.ID = "d-0"
	cfg.Labels = map[string]string{"role": "web", "site": "s2"}
	stop()
	moved := c.pool(1, cfg)
	admitted(t, moved, 1)
	converged(t, moved, rev, want)
	assert.EqualValues(t, 1, moved[0].Stats().Snapshots)
	o, err := c.d.DSN(context.Background(), "d-0")
	require.NoError(t, err)
	assert.Equal(t, "s2", o.Metadata.Labels["site"])
}

func TestDroppedPushIsDetectedAsGap(t *testing.T) {
	c := startCP(t, nil)
	c.commit(tenantOp("t1"), create(networkObj("t1", "a", "10.0.0.0/24")))
	dropped := make(chan uint64, 1)
	cfg := agents("d", 1, web)[0]
	cfg.DropPush = dropFirst(wire.PushDelta, dropped)
	as := c.pool(1, cfg)
	converged(t, as, c.st.Revision(), []string{})

	r1 := c.commit(create(policyObj("t1", "p", nil, "a", "a")))
	require.Equal(t, r1, <-dropped)
	// The next push does not follow on from what the DSN has: it says Hello again.
	rev := c.commit(update(networkObj("t1", "a", "10.0.5.0/24")))
	converged(t, as, rev, c.want(model.Key{Kind: model.KindNetwork, Tenant: "t1", Name: "a"}, model.Key{Kind: model.KindPolicy, Tenant: "t1", Name: "p"}))
	st := as[0].Stats()
	assert.EqualValues(t, 1, st.Gaps)
	assert.GreaterOrEqual(t, st.Admissions, int64(2))
}

func TestDroppedLastPushIsResent(t *testing.T) {
	clk := newFakeClock()
	c := startCP(t, func(cfg *distrib.Config) {
		cfg.Clock = clk
		cfg.StragglerDeadline = 10 * time.Second
		cfg.OfflineAfter = time.Hour
	})
	c.commit(tenantOp("t1"), create(networkObj("t1", "a", "10.0.0.0/24")))
	dropped := make(chan uint64, 1)
	cfg := agents("d", 1, web)[0]
	cfg.DropPush = dropFirst(wire.PushDelta, dropped)
	as := c.pool(1, cfg)
	converged(t, as, c.st.Revision(), []string{})

	rev := c.commit(create(policyObj("t1", "p", nil, "a", "a")))
	<-dropped
	require.Eventually(t, func() bool { return c.status("d-0").State == model.DSNStateSyncing }, 5*time.Second, 10*time.Millisecond)

	// Within the deadline nothing happens; past it the push is resent.
	clk.advance(5 * time.Second)
	assert.Zero(t, c.status("d-0").Corrective.Resends)
	clk.advance(6 * time.Second)
	converged(t, as, rev, c.want(model.Key{Kind: model.KindNetwork, Tenant: "t1", Name: "a"}, model.Key{Kind: model.KindPolicy, Tenant: "t1", Name: "p"}))
	require.Eventually(t, func() bool { return c.status("d-0").State == model.DSNStateInSync }, 5*time.Second, 10*time.Millisecond)
	st := c.status("d-0")
	assert.Equal(t, 1, st.Corrective.Resends)
	assert.Zero(t, st.Corrective.Resyncs)
	assert.Equal(t, "resend", st.LastCorrective)
	assert.EqualValues(t, 1, c.counter("corrective_actions_total", "action", "resend"))
}

func TestNeverAckingDSNIsResentResyncedAndQuarantined(t *testing.T) {
	clk := newFakeClock()
	c := startCP(t, func(cfg *distrib.Config) {
		cfg.Clock = clk
		cfg.StragglerDeadline = 10 * time.Second
		cfg.OfflineAfter = time.Hour
	})
	c.commit(tenantOp("t1"), create(networkObj("t1", "a", "10.0.0.0/24")))
	stuck := make(chan bool, 1)
	stuck <- false
	cfg := agents("d", 1, web)[0]
	cfg.QuarantineHold = 100 * time.Millisecond
	cfg.DropPush = func(p *wire.Push) bool {
		s := <-stuck
		stuck <- s
		return s && p.Type != wire.PushQuarantine
	}
	good := c.pool(1, append(agents("ok", 1, web), cfg)...)
	as := good[1:]
	converged(t, good, c.st.Revision(), []string{})

	<-stuck
	stuck <- true
	rev := c.commit(create(policyObj("t1", "p", nil, "a", "a")))
	want := c.want(model.Key{Kind: model.KindNetwork, Tenant: "t1", Name: "a"}, model.Key{Kind: model.KindPolicy, Tenant: "t1", Name: "p"})
	converged(t, good[:1], rev, want)

	step := func(resends, resyncs, quarantines int, state string) {
		t.Helper()
		clk.advance(11 * time.Second)
		require.Eventually(t, func() bool {
			st := c.status("d-0")
			return st.Corrective == model.CorrectiveCount{Resends: resends, Resyncs: resyncs, Quarantines: quarantines} && st.State == state
		}, 5*time.Second, 10*time.Millisecond, "want %d/%d/%d %s, got %+v", resends, resyncs, quarantines, state, c.status("d-0"))
	}
	step(1, 0, 0, model.DSNStateLagging)
	step(1, 1, 0, model.DSNStateLagging)
	<-stuck
	stuck <- false // the quarantine push gets through; the DSN rejoins after its hold, healthy
	step(1, 1, 1, model.DSNStateQuarantined)
	assert.Equal(t, "quarantine", c.status("d-0").LastCorrective)
	assert.Zero(t, c.status("ok-0").Corrective, "a healthy DSN is left alone")

	require.Eventually(t, func() bool { return as[0].Stats().Quarantines == 1 }, 5*time.Second, 10*time.Millisecond)
	converged(t, as, rev, want)
	require.Eventually(t, func() bool { return c.status("d-0").State == model.DSNStateInSync }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, 1, c.status("d-0").Corrective.Quarantines, "counts survive the rejoin")
}

func TestAdmissionIsBounded(t *testing.T) {
	c := startCP(t, func(cfg *distrib.Config) {
		cfg.MaxConcurrentSyncs = 2
		cfg.RetryAfter = 20 * time.Millisecond
	})
	c.commit(tenantOp("t1"), create(networkObj("t1", "a", "10.0.0.0/24")))
	rev := c.commit(create(policyObj("t1", "p", nil, "a", "a")))
	c.caughtUp(t, rev) // every DSN needs the snapshot
	as := c.pool(4, agents("d", 50, web)...)
	converged(t, as, rev, c.want(model.Key{Kind: model.KindNetwork, Tenant: "t1", Name: "a"}, model.Key{Kind: model.KindPolicy, Tenant: "t1", Name: "p"}))
	var retries int64
	for _, a := range as {
		retries += a.Stats().Retries
	}
	assert.Positive(t, retries)
	assert.Positive(t, c.counter("hellos_total", "outcome", "retry"))
	assert.EqualValues(t, 50, c.counter("hellos_total", "outcome", "snapshot"))
	require.Eventually(t, func() bool { return c.counter("syncs_in_flight") == 0 }, 5*time.Second, 10*time.Millisecond)
}

func TestConvergenceNamesStragglers(t *testing.T) {
	c := startCP(t, nil)
	c.caughtUp(t, c.commit(tenantOp("t1"), create(networkObj("t1", "a", "10.0.0.0/24"))))
	cfgs := agents("d", 3, web)
	cfgs[1].DropPush = func(p *wire.Push) bool { return p.Type == wire.PushDelta || p.Type == wire.PushCurrent }
	as := c.pool(1, cfgs...)
	converged(t, as, c.st.Revision(), []string{})

	rev := c.commit(create(policyObj("t1", "p", nil, "a", "a")))
	converged(t, []*agent.Agent{as[0], as[2]}, rev, c.want(model.Key{Kind: model.KindNetwork, Tenant: "t1", Name: "a"}, model.Key{Kind: model.KindPolicy, Tenant: "t1", Name: "p"}))
	var conv model.Convergence
	require.Eventually(t, func() bool {
		var err error
		conv, err = c.d.Convergence(context.Background(), rev)
		require.NoError(t, err)
		return conv.AtOrPast == 2
	}, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, 3, conv.Total)
	assert.Equal(t, 1, conv.Behind)
	assert.Equal(t, []string{"d-1"}, conv.BehindDSNs)
	require.Contains(t, conv.AckLatencyMs, "p99")
	assert.GreaterOrEqual(t, conv.AckLatencyMs["max"], conv.AckLatencyMs["p50"])
	assert.Positive(t, conv.AckLatencyMs["max"])

	// An earlier revision everyone has is fully converged.
	conv, err := c.d.Convergence(context.Background(), rev-1)
	require.NoError(t, err)
	assert.Equal(t, 3, conv.AtOrPast)
}

func TestRegistrySurvivesRestart(t *testing.T) {
	c := startCP(t, nil)
	c.commit(tenantOp("t1"), create(networkObj("t1", "a", "10.0.0.0/24")))
	rev := c.commit(create(policyObj("t1", "p", nil, "a", "a")))
	want := c.want(model.Key{Kind: model.KindNetwork, Tenant: "t1", Name: "a"}, model.Key{Kind: model.KindPolicy, Tenant: "t1", Name: "p"})
	c.caughtUp(t, rev)
	as := c.pool(2, append(agents("w", 2, web), agents("b", 2, db)...)...)
	converged(t, as, rev, want)
	before, _, err := c.d.DSNs(context.Background(), nil, 0, "")
	require.NoError(t, err)
	require.Len(t, before, 4)
	// Let the registry writes land.
	require.Eventually(t, func() bool { return c.counter("registry_writes_total", "outcome", "ok") == 4 }, 5*time.Second, 10*time.Millisecond)

	// Restart the distributor alone: the registry is back at once, live state comes back
	// as DSNs heartbeat, are told to say Hello, and are found up to date.
	c.stopDistributor()
	c.startDistributor()
	after, _, err := c.d.DSNs(context.Background(), map[string]string{"role": "db"}, 0, "")
	require.NoError(t, err)
	require.Len(t, after, 2)
	assert.Equal(t, "b-0", after[0].Metadata.Name)
	assert.Equal(t, db, after[0].Metadata.Labels)
	require.Eventually(t, func() bool {
		conv, err := c.d.Convergence(context.Background(), rev)
		return err == nil && conv.AtOrPast == 4
	}, 10*time.Second, 20*time.Millisecond)
	for _, a := range as {
		assert.Positive(t, a.Stats().Rehellos, a.ID())
		assert.EqualValues(t, 1, a.Stats().Snapshots, "nothing to fetch again: %s", a.ID())
	}
	assert.EqualValues(t, 4, c.counter("hellos_total", "outcome", "uptodate"))

	// Restart the bus and the store too: agents reconnect, say Hello, and converge.
	c.restart()
	o, err := c.d.DSN(context.Background(), "w-1")
	require.NoError(t, err)
	assert.Equal(t, web, o.Metadata.Labels)
	rev = c.commit(update(networkObj("t1", "a", "10.0.7.0/24")))
	want = c.want(model.Key{Kind: model.KindNetwork, Tenant: "t1", Name: "a"}, model.Key{Kind: model.KindPolicy, Tenant: "t1", Name: "p"})
	converged(t, as, rev, want)
}
