package distrib_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/api"
	"github.com/dsnscale/dsnscale/controlplane/distrib"
	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/wire"
)

func TestConfigValidate(t *testing.T) {
	c := startCP(t, nil)
	base := distrib.Config{Conn: c.nc, JS: c.js, Store: c.st}
	tests := []struct {
		name string
		mod  func(*distrib.Config)
		want string
	}{
		{"ok", func(*distrib.Config) {}, ""},
		{"no conn", func(c *distrib.Config) { c.Conn = nil }, "Conn: required"},
		{"no store", func(c *distrib.Config) { c.Store = nil }, "Store: required"},
		{"negative deadline", func(c *distrib.Config) { c.StragglerDeadline = -time.Second }, "StragglerDeadline"},
		{"offline before heartbeat", func(c *distrib.Config) {
			c.HeartbeatInterval, c.OfflineAfter = time.Second, time.Second
		}, "OfflineAfter"},
		{"negative syncs", func(c *distrib.Config) { c.MaxConcurrentSyncs = -1 }, "MaxConcurrentSyncs"},
		{"bad bucket", func(c *distrib.Config) { c.RegistryBucket = "a.b" }, "RegistryBucket"},
		{"negative rate", func(c *distrib.Config) { c.MaxPushRate = -1 }, "MaxPushRate"},
		{"coalescing off", func(c *distrib.Config) { c.CoalesceWindow = distrib.NoCoalescing }, ""},
		{"coalesce window too long", func(c *distrib.Config) { c.CoalesceWindow = 2 * distrib.MaxCoalesceWindow }, "CoalesceWindow: 200ms"},
		{"negative coalesce window", func(c *distrib.Config) { c.CoalesceWindow = -time.Second }, "CoalesceWindow: -1s"},
		{"replica", func(c *distrib.Config) { c.Replica, c.Partitions, c.Lease = "cp-1", 16, time.Second }, ""},
		{"bad replica name", func(c *distrib.Config) { c.Replica = "cp.1" }, `Replica: "cp.1"`},
		{"too many partitions", func(c *distrib.Config) { c.Partitions = distrib.MaxPartitions + 1 }, "Partitions: 4097"},
		{"lease too short", func(c *distrib.Config) { c.Lease = time.Millisecond }, "Lease: 1ms"},
		{"bad owners bucket", func(c *distrib.Config) { c.OwnersBucket = "a b" }, "OwnersBucket"},
		{"negative fleet timeout", func(c *distrib.Config) { c.FleetTimeout = -time.Second }, "FleetTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			tt.mod(&cfg)
			err := cfg.Validate()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, distrib.ErrConfig)
			assert.Contains(t, err.Error(), tt.want)
			_, err = distrib.New(cfg)
			assert.ErrorIs(t, err, distrib.ErrConfig)
		})
	}
}

// TestBadInputIsCountedNotFatal sends the distributor every kind of bad message, then checks
// it still admits and serves a DSN.
func TestBadInputIsCountedNotFatal(t *testing.T) {
	c := startCP(t, nil)
	nc, err := nats.Connect(c.url())
	require.NoError(t, err)
	defer nc.Close()

	request := func(v any) wire.Admission {
		t.Helper()
		var data []byte
		if b, ok := v.([]byte); ok {
			data = b
		} else {
			data, _ = json.Marshal(v)
		}
		msg, err := nc.Request(wire.HelloSubject("d"), data, 5*time.Second)
		require.NoError(t, err)
		var adm wire.Admission
		require.NoError(t, json.Unmarshal(msg.Data, &adm))
		return adm
	}
	for _, bad := range []any{
		[]byte("not json"),
		wire.Hello{Protocol: 99, DSN: "d"},
		wire.Hello{Protocol: wire.Version, DSN: "bad.id"},
		wire.Hello{Protocol: wire.Version, DSN: ""},
		wire.Hello{Protocol: wire.Version, DSN: "d", Labels: map[string]string{"a": "1,b=2"}},
		wire.Hello{Protocol: wire.Version, DSN: "e"}, // another DSN's id on d's subject
	} {
		adm := request(bad)
		assert.Equal(t, wire.Rejected, adm.Status, "%v", bad)
		assert.NotEmpty(t, adm.Reason)
	}
	assert.EqualValues(t, 6, c.counter("hellos_total", "outcome", "invalid"))
	require.NoError(t, nc.Publish(wire.HelloSubject("d"), []byte("{}"))) // no reply subject

	pub := func(subject string, v any) {
		data, ok := v.([]byte)
		if !ok {
			data, _ = json.Marshal(v)
		}
		require.NoError(t, nc.Publish(subject, data))
	}
	pub(wire.AckSubject("x"), []byte("{"))
	pub(wire.AckSubject("x"), wire.Ack{DSN: "y", SessionID: "s", Revision: 1}) // subject and body disagree
	pub(wire.AckSubject("x"), wire.Ack{DSN: "x", Revision: 1})                 // no session
	pub(wire.AckSubject("x"), wire.Ack{DSN: "x", SessionID: "s", Revision: 1}) // unknown DSN
	pub(wire.HeartbeatSubject("x"), []byte("[]"))
	pub("dsn.v1.dsn.x.y.ack", wire.Ack{DSN: "x", SessionID: "s"})
	require.NoError(t, nc.Flush())
	require.Eventually(t, func() bool {
		return c.counter("acks_total", "outcome", "invalid") == 3 && c.counter("acks_total", "outcome", "unknown_dsn") == 1 &&
			c.counter("heartbeats_total", "outcome", "invalid") == 1
	}, 5*time.Second, 10*time.Millisecond)

	// A heartbeat of an unknown session is told to say Hello again.
	sub, err := nc.SubscribeSync(wire.PushSubject("x"))
	require.NoError(t, err)
	pub(wire.HeartbeatSubject("x"), wire.Heartbeat{DSN: "x", SessionID: "old"})
	msg, err := sub.NextMsg(5 * time.Second)
	require.NoError(t, err)
	var p wire.Push
	require.NoError(t, wire.Unmarshal(msg.Data, &p))
	assert.Equal(t, wire.PushRehello, p.Type)

	// A real DSN: acks from a stale session are counted and ignored.
	c.commit(tenantOp("t1"), create(networkObj("t1", "a", "10.0.0.0/24")))
	as := c.pool(1, agents("d", 1, web)...)
	admitted(t, as, 1)
	pub(wire.AckSubject("d-0"), wire.Ack{DSN: "d-0", SessionID: "stale", Revision: 1})
	pub(wire.AckSubject("d-0"), wire.Ack{DSN: "d-0", SessionID: c.status("d-0").SessionID, Revision: 1 << 40})
	require.Eventually(t, func() bool {
		return c.counter("acks_total", "outcome", "unknown_session") == 1 && c.counter("acks_total", "outcome", "invalid") == 4
	}, 5*time.Second, 10*time.Millisecond)
	rev := c.commit(create(policyObj("t1", "p", nil, "a", "a")))
	converged(t, as, rev, c.want(model.Key{Kind: model.KindNetwork, Tenant: "t1", Name: "a"}, model.Key{Kind: model.KindPolicy, Tenant: "t1", Name: "p"}))
}

func TestFleetQueriesAndDecommission(t *testing.T) {
	c := startCP(t, nil)
	ctx := context.Background()
	_, err := c.d.DSN(ctx, "nope")
	require.ErrorIs(t, err, api.ErrUnknownDSN)
	require.ErrorIs(t, c.d.Decommission(ctx, "nope"), api.ErrUnknownDSN)

	as := c.pool(1, append(agents("w", 3, web), agents("b", 2, db)...)...)
	admitted(t, as, 1)

	page, next, err := c.d.DSNs(ctx, nil, 2, "")
	require.NoError(t, err)
	require.Len(t, page, 2)
	assert.Equal(t, []string{"b-0", "b-1"}, []string{page[0].Metadata.Name, page[1].Metadata.Name})
	assert.Equal(t, "b-1", next)
	page, next, err = c.d.DSNs(ctx, nil, 2, next)
	require.NoError(t, err)
	assert.Equal(t, "w-0", page[0].Metadata.Name)
	page, next, err = c.d.DSNs(ctx, nil, 2, next)
	require.NoError(t, err)
	assert.Len(t, page, 1)
	assert.Empty(t, next)
	page, _, err = c.d.DSNs(ctx, map[string]string{"role": "web"}, 0, "")
	require.NoError(t, err)
	assert.Len(t, page, 3)
	_, _, err = c.d.DSNs(ctx, nil, -1, "")
	assert.Error(t, err)

	o, err := c.d.DSN(ctx, "w-1")
	require.NoError(t, err)
	assert.Equal(t, model.KindDSN, o.Kind)
	var spec model.DSNSpec
	require.NoError(t, o.DecodeSpec(&spec))
	assert.Equal(t, "s1", spec.Site)
	var st model.DSNStatus
	require.NoError(t, json.Unmarshal(o.Status, &st))
	assert.Equal(t, model.DSNStateInSync, st.State)
	assert.NotEmpty(t, st.AdmittedAt)
	assert.NotEmpty(t, st.LastHeartbeat)

	require.NoError(t, c.d.Decommission(ctx, "w-1"))
	conv, err := c.d.Convergence(ctx, 0)
	require.NoError(t, err)
	assert.Equal(t, 4, conv.Total)
	// The decommissioned DSN is still running: its next heartbeat is refused, it is told to
	// say Hello, and it is admitted again as a new DSN.
	require.Eventually(t, func() bool {
		_, err := c.d.DSN(ctx, "w-1")
		return err == nil
	}, 5*time.Second, 10*time.Millisecond)
	assert.Positive(t, as[1].Stats().Rehellos)
}

func TestCatchUpAfterRestartFromStoreChanges(t *testing.T) {
	c := startCP(t, nil)
	a := model.Key{Kind: model.KindNetwork, Tenant: "t1", Name: "a"}
	p := model.Key{Kind: model.KindPolicy, Tenant: "t1", Name: "p"}
	c.commit(tenantOp("t1"), create(networkObj("t1", "a", "10.0.0.0/24")))
	rev := c.commit(create(policyObj("t1", "p", nil, "a", "a")))
	as, stop := c.startAgents(1, agents("d", 1, web)...)
	converged(t, as, rev, c.want(a, p))
	oldRev, oldObjs := as[0].Config()
	stop()

	// Only a network changes while the DSN is away and the distributor restarts: its history
	// is gone, but the store's changes say exactly what the DSN misses.
	c.commit(update(networkObj("t1", "a", "10.0.3.0/24")))
	c.stopDistributor()
	c.startDistributor()
	rev = c.commit(create(networkObj("t1", "unrelated", "10.9.0.0/24")))
	cfg := agents("d", 1, web)[0]
	cfg.InitialRevision, cfg.InitialObjects = oldRev, oldObjs
	as, stop = c.startAgents(1, cfg)
	admitted(t, as, 1)
	converged(t, as, rev, c.want(a, p))
	assert.EqualValues(t, 1, as[0].Stats().Deltas)
	stop()

	// A policy change in between cannot be filtered exactly: the DSN gets a snapshot.
	c.commit(update(policyObj("t1", "p", map[string]string{"role": "web"}, "a", "a")))
	c.stopDistributor()
	c.startDistributor()
	rev = c.st.Revision()
	cfg.InitialRevision, cfg.InitialObjects = oldRev, oldObjs
	as = c.pool(1, cfg)
	admitted(t, as, 1)
	converged(t, as, rev, c.want(a, p))
	assert.EqualValues(t, 1, as[0].Stats().Snapshots)
}

func TestOfflineAndSnapshotRefresh(t *testing.T) {
	clk := newFakeClock()
	c := startCP(t, func(cfg *distrib.Config) {
		cfg.Clock = clk
		// Agents heartbeat so rarely that only the test speaks for them.
		cfg.HeartbeatInterval = 24 * time.Hour
		cfg.OfflineAfter = 48 * time.Hour
		cfg.SnapshotRefresh = time.Hour
	})
	ctx := context.Background()
	c.commit(tenantOp("t1"), create(networkObj("t1", "a", "10.0.0.0/24")))
	c.commit(create(policyObj("t1", "p", nil, "a", "a")))
	as := c.pool(1, agents("d", 2, web)...)
	admitted(t, as, 1)
	for _, id := range []string{"d-0", "d-1"} {
		require.Eventually(t, func() bool { return c.status(id).State == model.DSNStateInSync }, 5*time.Second, time.Millisecond)
		require.Eventually(t, func() bool { return len(c.status(id).AckTimes) == 1 }, 5*time.Second, time.Millisecond)
	}
	session := c.status("d-0").SessionID
	writes := c.counter("snapshot_writes_total", "outcome", "ok")

	// Silence past OfflineAfter makes DSNs offline; a heartbeat brings one back.
	clk.advance(49 * time.Hour)
	require.Eventually(t, func() bool { return c.status("d-0").State == model.DSNStateOffline }, 5*time.Second, time.Millisecond)
	assert.Empty(t, c.status("d-0").SessionID)
	assert.Equal(t, writes, c.counter("snapshot_writes_total", "outcome", "ok"), "the snapshot is current: not rewritten")
	hb, _ := json.Marshal(wire.Heartbeat{DSN: "d-0", SessionID: session, AppliedRevision: c.status("d-0").AppliedRevision})
	require.NoError(t, c.nc.Publish(wire.HeartbeatSubject("d-0"), hb))
	require.Eventually(t, func() bool { return c.status("d-0").State == model.DSNStateInSync }, 5*time.Second, time.Millisecond)
	assert.Equal(t, model.DSNStateOffline, c.status("d-1").State)

	// The schedule rewrites snapshots once the revision moved.
	rev := c.commit(update(networkObj("t1", "a", "10.0.1.0/24")))
	require.Eventually(t, func() bool { return c.d.Revision() == rev }, 5*time.Second, time.Millisecond)
	clk.advance(30 * time.Minute)
	time.Sleep(50 * time.Millisecond)
	assert.Equal(t, writes, c.counter("snapshot_writes_total", "outcome", "ok"), "not yet due")
	clk.advance(31 * time.Minute)
	require.Eventually(t, func() bool { return c.counter("snapshot_writes_total", "outcome", "ok") == writes+1 }, 5*time.Second, time.Millisecond)

	// On demand, too.
	rev = c.commit(update(networkObj("t1", "a", "10.0.2.0/24")))
	require.Eventually(t, func() bool { return c.d.Revision() == rev }, 5*time.Second, time.Millisecond)
	require.NoError(t, c.d.RefreshSnapshots(ctx))
	assert.Equal(t, writes+2, c.counter("snapshot_writes_total", "outcome", "ok"))

	// The object is a valid snapshot at that revision.
	obs, err := c.js.ObjectStore(ctx, wire.SnapshotBucket)
	require.NoError(t, err)
	data, err := obs.GetBytes(ctx, wire.SnapshotObject(wire.GroupID(web)))
	require.NoError(t, err)
	var snap wire.Snapshot
	require.NoError(t, wire.Unmarshal(data, &snap))
	assert.Equal(t, rev, snap.Revision)
	assert.Len(t, snap.Objects, 2)
}

func TestHelloStorm(t *testing.T) {
	n := 600
	if testing.Short() {
		n = 200
	}
	c := startCP(t, func(cfg *distrib.Config) {
		cfg.HelloWorkers = 2
		cfg.HelloQueue = 32
		cfg.MaxConcurrentSyncs = 16
		cfg.RetryAfter = 100 * time.Millisecond
	})
	c.commit(tenantOp("t1"), create(networkObj("t1", "a", "10.0.0.0/24")))
	rev := c.commit(create(policyObj("t1", "p", map[string]string{"role": "web"}, "a", "a")))
	c.caughtUp(t, rev)
	as := c.pool(10, append(agents("w", n/2, web), agents("b", n/2, db)...)...)
	// Generous: this is about everyone getting there, not about speed (benchmarks measure that).
	convergedWithin(t, time.Minute, as[:n/2], rev, c.want(model.Key{Kind: model.KindNetwork, Tenant: "t1", Name: "a"}, model.Key{Kind: model.KindPolicy, Tenant: "t1", Name: "p"}))
	convergedWithin(t, time.Minute, as[n/2:], rev, []string{})
	assert.Equal(t, n, c.acked(t, rev, n).AtOrPast)
	t.Logf("hellos: shed %v, retry %v, snapshot %v, uptodate %v", c.counter("hellos_total", "outcome", "shed"),
		c.counter("hellos_total", "outcome", "retry"), c.counter("hellos_total", "outcome", "snapshot"), c.counter("hellos_total", "outcome", "uptodate"))
	assert.EqualValues(t, n/2, c.counter("hellos_total", "outcome", "uptodate"), "db DSNs have nothing to fetch")
}

// TestAckErrorShowsInStatus checks that an Ack reporting a failed apply shows in the DSN's
// status until an Ack without error clears it.
func TestAckErrorShowsInStatus(t *testing.T) {
	c := startCP(t, nil)
	rev := c.commit(tenantOp("acme"), create(networkObj("acme", "web", "10.0.0.0/24")),
		create(policyObj("acme", "p", map[string]string{"role": "web"}, "web", "")))
	c.caughtUp(t, rev) // admission answers at the distributed revision: the policy must be in it
	hello := func() wire.Admission {
		b, err := json.Marshal(wire.Hello{Protocol: wire.Version, DSN: "d-err", Labels: map[string]string{"role": "web"}})
		require.NoError(t, err)
		msg, err := c.nc.Request(wire.HelloSubject("d-err"), b, 10*time.Second)
		require.NoError(t, err)
		var adm wire.Admission
		require.NoError(t, json.Unmarshal(msg.Data, &adm))
		require.Equal(t, wire.Admitted, adm.Status, adm.Reason)
		return adm
	}
	adm := hello()
	require.NotZero(t, adm.Revision)
	ack := func(a wire.Ack) {
		b, err := json.Marshal(a)
		require.NoError(t, err)
		require.NoError(t, c.nc.Publish(wire.AckSubject("d-err"), b))
	}
	ack(wire.Ack{DSN: "d-err", SessionID: adm.SessionID, Revision: 0, Error: "policy p: rule 0: table full"})
	require.Eventually(t, func() bool { return c.status("d-err").LastError != "" }, 10*time.Second, 10*time.Millisecond)
	st := c.status("d-err")
	require.Equal(t, "policy p: rule 0: table full", st.LastError)
	require.Equal(t, adm.Revision, st.LastErrorRevision)
	require.NotEmpty(t, st.LastErrorAt)
	require.Zero(t, st.AppliedRevision)

	ack(wire.Ack{DSN: "d-err", SessionID: adm.SessionID, Revision: adm.Revision})
	require.Eventually(t, func() bool { return c.status("d-err").AppliedRevision == adm.Revision }, 10*time.Second, 10*time.Millisecond)
	require.Empty(t, c.status("d-err").LastError, "a successful apply clears the error")
}

// TestGroupHistoryStartsWithTheGroup checks that a group created after a DSN's applied
// revision does not claim to know what changed before it: a registered DSN that says Hello at
// revision 0 again (its first admission's answer was lost) is sent the group's config, not an
// empty delta. A replica that takes over a partition creates its groups late in the same way.
func TestGroupHistoryStartsWithTheGroup(t *testing.T) {
	c := startCP(t, nil)
	rev := c.commit(create(networkObj("", "a", "10.0.0.0/24")), create(policyObj("", "p", map[string]string{"role": "web"}, "a", "a")))
	c.caughtUp(t, rev)
	d := c.rawDSN(t, "late-1")
	defer d.close()
	first := d.hello(0)
	require.Equal(t, wire.Admitted, first.Status)
	require.NotNil(t, first.Snapshot, "a new DSN in a new group gets the snapshot")
	again := d.hello(0)
	require.Equal(t, wire.Admitted, again.Status)
	if again.Delta != nil {
		require.NotEmpty(t, again.Delta.Changes, "a delta from 0 that brings nothing")
	} else {
		require.NotNil(t, again.Snapshot)
	}
}
