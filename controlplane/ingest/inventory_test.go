package ingest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	neturl "net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/wire"
	"github.com/dsnscale/dsnscale/inventory"
	"github.com/dsnscale/dsnscale/scripts/testservers"
	"github.com/dsnscale/dsnscale/tsdb/queue"
)

// fleet is a DSN list the test edits, standing in for the distributor in this unit test of the
// code that polls it.
type fleet struct {
	mu    sync.Mutex
	dsns  map[string]*model.Object
	fail  error
	calls int
}

func (f *fleet) set(id string, labels map[string]string, spec model.DSNSpec, st model.DSNStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	sb, _ := json.Marshal(spec)
	stb, _ := json.Marshal(st)
	f.dsns[id] = &model.Object{APIVersion: model.APIVersion, Kind: model.KindDSN,
		Metadata: model.Metadata{Name: id, Labels: labels}, Spec: sb, Status: stb}
}

func (f *fleet) remove(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.dsns, id)
}

func (f *fleet) DSNs(_ context.Context, _ map[string]string, limit int, after string) ([]*model.Object, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.fail != nil {
		return nil, "", f.fail
	}
	ids := slices.Sorted(maps.Keys(f.dsns))
	var out []*model.Object
	for _, id := range ids {
		if id > after {
			out = append(out, f.dsns[id])
		}
	}
	next := ""
	if limit > 0 && len(out) > limit {
		out = out[:limit]
		next = out[limit-1].Metadata.Name
	}
	return out, next, nil
}

func TestInventorySQLite(t *testing.T) {
	testInventory(t, nil)
}

func TestInventoryPostgres(t *testing.T) {
	url := testservers.Require(t, testservers.PostgresURL)
	schema := newSchema(t, url)
	u, err := neturl.Parse(url)
	require.NoError(t, err)
	qv := u.Query()
	qv.Set("search_path", schema)
	u.RawQuery = qv.Encode()
	testInventory(t, func(c *Config) { c.InventoryURL = u.String() })
}

// newSchema creates an empty PostgreSQL schema for one test and drops it afterwards.
func newSchema(t *testing.T, url string) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "ingesttest_" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "CREATE SCHEMA "+schema)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, url); err == nil {
			_, _ = conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
			conn.Close(ctx)
		}
	})
	return schema
}

func testInventory(t *testing.T, edit func(*Config)) {
	b := startBus(t)
	in, _ := start(t, b, func(c *Config) {
		c.InventoryInterval = 30 * time.Millisecond
		if edit != nil {
			edit(c)
		}
	})
	h := in.Handler()
	// Early in a minute, so that a heartbeat a second later stays within LastSeenResolution's
	// bucket whatever the clock says.
	t0 := time.Now().Add(-time.Hour).Truncate(time.Minute).Add(10*time.Second + 265*time.Millisecond).UTC()
	settled := func(n uint64) {
		t.Helper()
		require.Eventually(t, func() bool {
			s := in.Stats().Inventory
			return s.Written >= n && s.Depth == 0 && s.InFlight == 0
		}, 10*time.Second, 5*time.Millisecond, "%+v", in.Stats().Inventory)
	}

	// Admissions as they happen.
	labels := map[string]string{"site": "s1", "rack": "r1", "-odd": "kept out"}
	in.OnHello(&wire.Hello{Protocol: wire.Version, DSN: "d1", Labels: labels, SoftwareVersion: "1.0", AppliedRevision: 3}, wire.Admitted, t0)
	in.OnHello(&wire.Hello{Protocol: wire.Version, DSN: "d2"}, wire.Retry, t0)
	in.OnHello(&wire.Hello{Protocol: wire.Version, DSN: "d2"}, wire.Rejected, t0.Add(time.Second))
	in.OnHello(&wire.Hello{DSN: "not an id"}, wire.Rejected, t0)
	in.OnHello(nil, wire.Rejected, t0)
	settled(4)

	var d dsnDetail
	require.Equal(t, 200, get(t, h, "/api/v1/inventory/dsns/d1", &d))
	assert.Equal(t, inventory.DSNRecord{ID: "d1", Labels: map[string]string{"site": "s1", "rack": "r1"}, SoftwareVersion: "1.0", Site: "s1", Rack: "r1",
		State: model.DSNStateAdmitted, AppliedRevision: 3, LastSeen: t0, CreatedAt: d.DSN.CreatedAt, UpdatedAt: d.DSN.UpdatedAt}, d.DSN)
	assert.Equal(t, []inventory.Admission{{DSN: "d1", At: t0, Outcome: inventory.OutcomeAdmitted}}, d.Admissions)
	require.Len(t, d.Versions, 1)
	assert.Equal(t, "1.0", d.Versions[0].SoftwareVersion)
	hist, err := in.Inventory().AdmissionHistory(context.Background(), "d2", 0)
	require.NoError(t, err)
	assert.Equal(t, []string{inventory.OutcomeShed, inventory.OutcomeRejected}, []string{hist[0].Outcome, hist[1].Outcome})

	// The fleet's view takes over: states, revisions, last contacts.
	f := &fleet{dsns: map[string]*model.Object{}}
	f.set("d1", map[string]string{"site": "s1", "rack": "r1"}, model.DSNSpec{SoftwareVersion: "1.1", Site: "s1", Rack: "r1"},
		model.DSNStatus{State: model.DSNStateInSync, AppliedRevision: 7, LastHeartbeat: t0.Format(time.RFC3339Nano)})
	f.set("d4", map[string]string{"site": "s2"}, model.DSNSpec{Site: "s2"}, model.DSNStatus{State: model.DSNStateOffline})
	require.NoError(t, in.TrackFleet(f))
	require.ErrorIs(t, in.TrackFleet(f), ErrConfig)
	list := func(query string) (ids []string, next string) {
		t.Helper()
		var l dsnList
		require.Equal(t, 200, get(t, h, "/api/v1/inventory/dsns?"+query, &l))
		for _, r := range l.Items {
			ids = append(ids, r.ID)
		}
		return ids, l.Continue
	}
	require.Eventually(t, func() bool {
		ids, _ := list(q("state", "in-sync"))
		return slices.Equal(ids, []string{"d1"})
	}, 10*time.Second, 10*time.Millisecond)
	settled(6)
	ids, _ := list("")
	assert.Equal(t, []string{"d1", "d4"}, ids)
	ids, _ = list(q("labelSelector", "site=s2"))
	assert.Equal(t, []string{"d4"}, ids)
	ids, next := list(q("limit", "1"))
	assert.Equal(t, []string{"d1"}, ids)
	ids, next = list(q("limit", "1", "continue", next))
	assert.Equal(t, []string{"d4"}, ids)
	assert.Empty(t, next)
	var sum inventory.Summary
	require.Equal(t, 200, get(t, h, "/api/v1/inventory/summary", &sum))
	assert.Equal(t, 2, sum.Total)
	assert.Equal(t, map[string]int{model.DSNStateInSync: 1, model.DSNStateOffline: 1}, sum.ByState)

	// A heartbeat a second later is not worth a write; a state change is; a DSN the fleet
	// forgot leaves the inventory.
	before, err := in.Inventory().GetDSN(context.Background(), "d1")
	require.NoError(t, err)
	written := in.Stats().Inventory.Written
	f.set("d1", map[string]string{"site": "s1", "rack": "r1"}, model.DSNSpec{SoftwareVersion: "1.1", Site: "s1", Rack: "r1"},
		model.DSNStatus{State: model.DSNStateInSync, AppliedRevision: 7, LastHeartbeat: t0.Add(time.Second).Format(time.RFC3339Nano)})
	f.set("d4", map[string]string{"site": "s2"}, model.DSNSpec{Site: "s2"}, model.DSNStatus{State: model.DSNStateLagging})
	require.Eventually(t, func() bool {
		r, err := in.Inventory().GetDSN(context.Background(), "d4")
		return err == nil && r.State == model.DSNStateLagging
	}, 10*time.Second, 10*time.Millisecond)
	polls := in.Stats().InventoryPolls
	require.Eventually(t, func() bool { return in.Stats().InventoryPolls >= polls+2 }, 10*time.Second, 5*time.Millisecond)
	after, err := in.Inventory().GetDSN(context.Background(), "d1")
	require.NoError(t, err)
	assert.Equal(t, before, after, "d1 was not rewritten")
	assert.Equal(t, written+1, in.Stats().Inventory.Written)

	f.remove("d4")
	require.Eventually(t, func() bool {
		_, err := in.Inventory().GetDSN(context.Background(), "d4")
		return errors.Is(err, inventory.ErrNotFound)
	}, 10*time.Second, 10*time.Millisecond)

	// A new admission writes "admitted"; the next poll puts the fleet's state back although the
	// fleet did not change.
	in.OnHello(&wire.Hello{Protocol: wire.Version, DSN: "d1", Labels: map[string]string{"site": "s1", "rack": "r1"}, SoftwareVersion: "1.1"}, wire.Admitted, t0.Add(time.Minute))
	require.Eventually(t, func() bool {
		h, err := in.Inventory().AdmissionHistory(context.Background(), "d1", 0)
		return err == nil && len(h) == 2
	}, 10*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool {
		r, err := in.Inventory().GetDSN(context.Background(), "d1")
		return err == nil && r.State == model.DSNStateInSync
	}, 10*time.Second, 10*time.Millisecond)

	// A failing fleet is counted and retried.
	f.mu.Lock()
	f.fail = errors.New("registry not loaded")
	f.mu.Unlock()
	require.Eventually(t, func() bool { return in.Stats().InventoryPollErrors > 0 }, 10*time.Second, 5*time.Millisecond)
	ids, _ = list("")
	assert.Equal(t, []string{"d1"}, ids, "nothing deleted for a failed poll")
}

// flaky fails the write calls of an inventory whose numbers are in failOn, to check that a batch
// retried after failing part way is not written twice.
type flaky struct {
	inventory.Inventory
	mu     sync.Mutex
	call   int
	failOn map[int]bool
}

func (f *flaky) fail() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.call++
	if f.failOn[f.call] {
		return errors.New("connection reset")
	}
	return nil
}

func (f *flaky) UpsertDSNs(ctx context.Context, recs ...inventory.DSNRecord) error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.Inventory.UpsertDSNs(ctx, recs...)
}

func (f *flaky) RecordAdmission(ctx context.Context, id string, at time.Time, outcome string) error {
	if err := f.fail(); err != nil {
		return err
	}
	return f.Inventory.RecordAdmission(ctx, id, at, outcome)
}

func TestInventorySinkResumesAPartlyWrittenBatch(t *testing.T) {
	db, err := inventory.Open("", t.TempDir(), inventory.Options{Logger: quiet()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	fl := &flaky{Inventory: db, failOn: map[int]bool{3: true, 4: true}}
	in := &Ingest{inv: fl, log: quiet()}
	at := time.Unix(1_700_000_000, 0).UTC()
	q, err := queue.New(queue.Config{Name: "inv", FlushInterval: time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond},
		in.inventorySink(), queue.WithLogger(quiet()))
	require.NoError(t, err)
	// Calls: 1 upsert run (two records of d1: the last wins), 2 admission, 3 fails, 4 fails,
	// 5 admission, 6 upsert.
	rec := func(v string) inventory.DSNRecord {
		return inventory.DSNRecord{ID: "d1", State: model.DSNStateAdmitted, SoftwareVersion: v}
	}
	n := q.Offer(
		invOp{kind: opUpsert, rec: rec("1")}, invOp{kind: opUpsert, rec: rec("2")},
		invOp{kind: opAdmission, id: "d1", at: at, outcome: "admitted"},
		invOp{kind: opAdmission, id: "d1", at: at.Add(time.Second), outcome: "shed"},
		invOp{kind: opUpsert, rec: rec("3")},
	)
	require.Equal(t, 5, n)
	require.NoError(t, q.Close(context.Background()))
	st := q.Stats()
	assert.Equal(t, uint64(5), st.Written)
	assert.Equal(t, uint64(2), st.Errors)
	hist, err := db.AdmissionHistory(context.Background(), "d1", 0)
	require.NoError(t, err)
	assert.Equal(t, []inventory.Admission{{DSN: "d1", At: at, Outcome: "admitted"}, {DSN: "d1", At: at.Add(time.Second), Outcome: "shed"}}, hist)
	r, err := db.GetDSN(context.Background(), "d1")
	require.NoError(t, err)
	assert.Equal(t, "3", r.SoftwareVersion)
}
