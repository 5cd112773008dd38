// Package inventorytest is the conformance suite every inventory implementation passes.
//
// Each test gets a fresh, empty inventory from the Opener (a new SQLite directory, a new
// PostgreSQL schema), and the same one again after a restart.
package inventorytest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/inventory"
)

// Clock is a settable clock for the inventory under test; pass Now to the Opener's options.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set moves the clock.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// Opener opens the inventory under test with the given clock. For one test it is called first
// with a fresh place and then, after Close, with place again (the restart). place is a
// directory for SQLite; a server implementation derives a schema name from it.
type Opener func(t *testing.T, place string, now func() time.Time) *inventory.DB

// Run runs the suite.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(*testing.T, Opener)
	}{
		{"UpsertAndGet", testUpsertAndGet},
		{"UpsertReplaces", testUpsertReplaces},
		{"BatchIsAtomic", testBatchAtomic},
		{"ListFiltersAndPages", testList},
		{"Summarize", testSummarize},
		{"VersionHistory", testVersionHistory},
		{"AdmissionHistory", testAdmissions},
		{"Delete", testDelete},
		{"KeptAcrossRestartAndMigrationsIdempotent", testRestart},
		{"Concurrent", testConcurrent},
		{"InvalidInput", testInvalid},
		{"Closed", testClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open) })
	}
}

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 123456789, time.UTC)

type env struct {
	inv   *inventory.DB
	clock *Clock
	place string
}

func setup(t *testing.T, open Opener) env {
	c := &Clock{t: t0}
	place := t.TempDir()
	inv := open(t, place, c.Now)
	t.Cleanup(func() { _ = inv.Close() })
	return env{inv: inv, clock: c, place: place}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func rec(id string, labels map[string]string) inventory.DSNRecord {
	return inventory.DSNRecord{ID: id, Labels: labels, SoftwareVersion: "1.0.0", Site: "site-a", Rack: "r1",
		State: model.DSNStateAdmitted, AppliedRevision: 7, LastSeen: t0.Add(-time.Second)}
}

func testUpsertAndGet(t *testing.T, open Opener) {
	e := setup(t, open)
	r := rec("dsn-1", map[string]string{"site": "a", "role": "edge", "k8s.io/zone": "z1"})
	r.AppliedRevision = 1<<63 - 1
	require.NoError(t, e.inv.UpsertDSN(ctx(t), r))
	got, err := e.inv.GetDSN(ctx(t), "dsn-1")
	require.NoError(t, err)
	want := r
	want.CreatedAt, want.UpdatedAt = t0, t0
	assert.Equal(t, want, got, "every field round-trips, times to the nanosecond")

	never := rec("dsn-2", nil)
	never.LastSeen = time.Time{}
	require.NoError(t, e.inv.UpsertDSN(ctx(t), never))
	got, err = e.inv.GetDSN(ctx(t), "dsn-2")
	require.NoError(t, err)
	assert.True(t, got.LastSeen.IsZero(), "never seen stays zero")
	assert.Nil(t, got.Labels)

	_, err = e.inv.GetDSN(ctx(t), "dsn-404")
	require.ErrorIs(t, err, inventory.ErrNotFound)
}

func testUpsertReplaces(t *testing.T, open Opener) {
	e := setup(t, open)
	require.NoError(t, e.inv.UpsertDSN(ctx(t), rec("dsn-1", map[string]string{"a": "1", "b": "2"})))
	e.clock.Set(t0.Add(time.Hour))
	r := rec("dsn-1", map[string]string{"b": "3", "c": "4"})
	r.State, r.AppliedRevision, r.Site = model.DSNStateInSync, 9, "site-b"
	r.LastSeen = t0.Add(59 * time.Minute)
	require.NoError(t, e.inv.UpsertDSN(ctx(t), r))
	got, err := e.inv.GetDSN(ctx(t), "dsn-1")
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"b": "3", "c": "4"}, got.Labels, "labels are replaced, not merged")
	assert.Equal(t, model.DSNStateInSync, got.State)
	assert.Equal(t, uint64(9), got.AppliedRevision)
	assert.Equal(t, "site-b", got.Site)
	assert.Equal(t, t0, got.CreatedAt, "created stays")
	assert.Equal(t, t0.Add(time.Hour), got.UpdatedAt)
	assert.Equal(t, r.LastSeen, got.LastSeen)
}

func testBatchAtomic(t *testing.T, open Opener) {
	e := setup(t, open)
	var batch []inventory.DSNRecord
	for i := range 700 { // more than one IN (...) chunk
		batch = append(batch, rec(fmt.Sprintf("dsn-%04d", i), map[string]string{"i": fmt.Sprint(i % 3)}))
	}
	require.NoError(t, e.inv.UpsertDSNs(ctx(t), batch...))
	s, err := e.inv.Summarize(ctx(t))
	require.NoError(t, err)
	assert.Equal(t, 700, s.Total)

	bad := rec("dsn-bad", nil)
	bad.State = "exploded"
	err = e.inv.UpsertDSNs(ctx(t), rec("dsn-new", nil), bad)
	require.ErrorIs(t, err, inventory.ErrInvalid)
	assert.Contains(t, err.Error(), "record 1")
	_, err = e.inv.GetDSN(ctx(t), "dsn-new")
	require.ErrorIs(t, err, inventory.ErrNotFound, "nothing of a rejected batch is written")

	err = e.inv.UpsertDSNs(ctx(t), rec("dsn-x", nil), rec("dsn-x", nil))
	require.ErrorIs(t, err, inventory.ErrInvalid)
}

func ids(p inventory.Page) []string {
	out := []string{}
	for _, r := range p.DSNs {
		out = append(out, r.ID)
	}
	return out
}

func testList(t *testing.T, open Opener) {
	e := setup(t, open)
	mk := func(id, state, site, version string, labels map[string]string) inventory.DSNRecord {
		r := rec(id, labels)
		r.State, r.Site, r.SoftwareVersion = state, site, version
		return r
	}
	// IDs chosen so that byte order differs from case-insensitive order: "B" < "a".
	require.NoError(t, e.inv.UpsertDSNs(ctx(t),
		mk("a-1", model.DSNStateInSync, "s1", "1.0", map[string]string{"role": "edge", "tier": "gold"}),
		mk("B-2", model.DSNStateInSync, "s2", "1.1", map[string]string{"role": "edge"}),
		mk("a-3", model.DSNStateLagging, "s1", "1.1", map[string]string{"role": "core", "tier": "gold"}),
		mk("c-4", model.DSNStateOffline, "s2", "1.0", nil),
		mk("_-5", model.DSNStateInSync, "s1", "1.0", map[string]string{"role": "edge", "tier": "silver"}),
	))
	tests := []struct {
		name string
		f    inventory.Filter
		want []string
	}{
		{"all in byte order", inventory.Filter{}, []string{"B-2", "_-5", "a-1", "a-3", "c-4"}},
		{"state", inventory.Filter{State: model.DSNStateInSync}, []string{"B-2", "_-5", "a-1"}},
		{"label", inventory.Filter{Labels: map[string]string{"role": "edge"}}, []string{"B-2", "_-5", "a-1"}},
		{"two labels", inventory.Filter{Labels: map[string]string{"role": "edge", "tier": "gold"}}, []string{"a-1"}},
		{"label and state", inventory.Filter{Labels: map[string]string{"tier": "gold"}, State: model.DSNStateLagging}, []string{"a-3"}},
		{"site", inventory.Filter{Site: "s2"}, []string{"B-2", "c-4"}},
		{"version", inventory.Filter{SoftwareVersion: "1.1"}, []string{"B-2", "a-3"}},
		{"none", inventory.Filter{Labels: map[string]string{"role": "nope"}}, []string{}},
		{"after", inventory.Filter{After: "_-5"}, []string{"a-1", "a-3", "c-4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := e.inv.ListDSNs(ctx(t), tt.f)
			require.NoError(t, err)
			assert.Equal(t, tt.want, ids(p))
			assert.Empty(t, p.Next)
		})
	}
	t.Run("labels come with the page", func(t *testing.T) {
		p, err := e.inv.ListDSNs(ctx(t), inventory.Filter{Labels: map[string]string{"tier": "gold"}})
		require.NoError(t, err)
		require.Len(t, p.DSNs, 2)
		assert.Equal(t, map[string]string{"role": "core", "tier": "gold"}, p.DSNs[1].Labels)
	})
	t.Run("paging", func(t *testing.T) {
		var got []string
		f := inventory.Filter{Limit: 2}
		pages := 0
		for {
			p, err := e.inv.ListDSNs(ctx(t), f)
			require.NoError(t, err)
			got = append(got, ids(p)...)
			pages++
			if p.Next == "" {
				break
			}
			f.After = p.Next
		}
		assert.Equal(t, []string{"B-2", "_-5", "a-1", "a-3", "c-4"}, got)
		assert.Equal(t, 3, pages)
		p, err := e.inv.ListDSNs(ctx(t), inventory.Filter{Limit: 5})
		require.NoError(t, err)
		assert.Len(t, p.DSNs, 5)
		assert.Empty(t, p.Next, "an exactly full last page has no next")
	})
}

func testSummarize(t *testing.T, open Opener) {
	e := setup(t, open)
	s, err := e.inv.Summarize(ctx(t))
	require.NoError(t, err)
	assert.Equal(t, inventory.Summary{ByState: map[string]int{}, BySoftwareVersion: map[string]int{}}, s)
	a, b, c := rec("a", nil), rec("b", nil), rec("c", nil)
	b.State, c.State = model.DSNStateQuarantined, model.DSNStateQuarantined
	c.SoftwareVersion = "2.0.0"
	require.NoError(t, e.inv.UpsertDSNs(ctx(t), a, b, c))
	s, err = e.inv.Summarize(ctx(t))
	require.NoError(t, err)
	assert.Equal(t, inventory.Summary{Total: 3,
		ByState:           map[string]int{model.DSNStateAdmitted: 1, model.DSNStateQuarantined: 2},
		BySoftwareVersion: map[string]int{"1.0.0": 2, "2.0.0": 1}}, s)
}

func testVersionHistory(t *testing.T, open Opener) {
	e := setup(t, open)
	r := rec("dsn-1", nil)
	r.SoftwareVersion = ""
	require.NoError(t, e.inv.UpsertDSN(ctx(t), r)) // unknown version: nothing recorded
	r.SoftwareVersion, r.LastSeen = "1.0.0", t0.Add(time.Minute)
	require.NoError(t, e.inv.UpsertDSN(ctx(t), r))
	r.LastSeen = t0.Add(2 * time.Minute)
	require.NoError(t, e.inv.UpsertDSN(ctx(t), r)) // same version: nothing recorded
	r.SoftwareVersion, r.LastSeen = "1.1.0", time.Time{}
	e.clock.Set(t0.Add(time.Hour))
	require.NoError(t, e.inv.UpsertDSN(ctx(t), r)) // changed, never seen: at the clock's time
	h, err := e.inv.VersionHistory(ctx(t), "dsn-1")
	require.NoError(t, err)
	assert.Equal(t, []inventory.VersionChange{
		{DSN: "dsn-1", SoftwareVersion: "1.0.0", At: t0.Add(time.Minute)},
		{DSN: "dsn-1", SoftwareVersion: "1.1.0", At: t0.Add(time.Hour)},
	}, h)
	h, err = e.inv.VersionHistory(ctx(t), "dsn-unknown")
	require.NoError(t, err)
	assert.Empty(t, h)
}

func testAdmissions(t *testing.T, open Opener) {
	e := setup(t, open)
	// Out of order, and for a DSN not in the inventory (a rejected one).
	require.NoError(t, e.inv.RecordAdmission(ctx(t), "dsn-1", t0.Add(2*time.Second), inventory.OutcomeAdmitted))
	require.NoError(t, e.inv.RecordAdmission(ctx(t), "dsn-1", t0, inventory.OutcomeShed))
	require.NoError(t, e.inv.RecordAdmission(ctx(t), "dsn-1", t0.Add(time.Second), inventory.OutcomeShed))
	require.NoError(t, e.inv.RecordAdmission(ctx(t), "dsn-2", t0, inventory.OutcomeRejected))
	h, err := e.inv.AdmissionHistory(ctx(t), "dsn-1", 0)
	require.NoError(t, err)
	assert.Equal(t, []inventory.Admission{
		{DSN: "dsn-1", At: t0, Outcome: "shed"},
		{DSN: "dsn-1", At: t0.Add(time.Second), Outcome: "shed"},
		{DSN: "dsn-1", At: t0.Add(2 * time.Second), Outcome: "admitted"},
	}, h)
	h, err = e.inv.AdmissionHistory(ctx(t), "dsn-1", 2)
	require.NoError(t, err)
	require.Len(t, h, 2, "the most recent two")
	assert.Equal(t, t0.Add(time.Second), h[0].At)
	n, err := e.inv.PruneAdmissions(ctx(t), t0.Add(time.Second))
	require.NoError(t, err)
	assert.Equal(t, int64(2), n, "dsn-1 at t0 and dsn-2 at t0")
	h, err = e.inv.AdmissionHistory(ctx(t), "dsn-1", 0)
	require.NoError(t, err)
	assert.Len(t, h, 2)
}

func testDelete(t *testing.T, open Opener) {
	e := setup(t, open)
	require.NoError(t, e.inv.UpsertDSNs(ctx(t), rec("dsn-1", map[string]string{"a": "b"}), rec("dsn-2", map[string]string{"a": "b"})))
	require.NoError(t, e.inv.RecordAdmission(ctx(t), "dsn-1", t0, inventory.OutcomeAdmitted))
	require.NoError(t, e.inv.DeleteDSN(ctx(t), "dsn-1"))
	_, err := e.inv.GetDSN(ctx(t), "dsn-1")
	require.ErrorIs(t, err, inventory.ErrNotFound)
	h, err := e.inv.AdmissionHistory(ctx(t), "dsn-1", 0)
	require.NoError(t, err)
	assert.Empty(t, h)
	v, err := e.inv.VersionHistory(ctx(t), "dsn-1")
	require.NoError(t, err)
	assert.Empty(t, v)
	p, err := e.inv.ListDSNs(ctx(t), inventory.Filter{Labels: map[string]string{"a": "b"}})
	require.NoError(t, err)
	assert.Equal(t, []string{"dsn-2"}, ids(p), "the labels went with it")
	require.ErrorIs(t, e.inv.DeleteDSN(ctx(t), "dsn-1"), inventory.ErrNotFound)
	// Re-adding starts afresh.
	require.NoError(t, e.inv.UpsertDSN(ctx(t), rec("dsn-1", nil)))
	got, err := e.inv.GetDSN(ctx(t), "dsn-1")
	require.NoError(t, err)
	assert.Nil(t, got.Labels)
}

func testRestart(t *testing.T, open Opener) {
	e := setup(t, open)
	v1, err := e.inv.SchemaVersion(ctx(t))
	require.NoError(t, err)
	ms, err := inventory.Migrations(dialectOf(t, e.inv))
	require.NoError(t, err)
	assert.Equal(t, ms[len(ms)-1].Version, v1, "every migration applied")
	r := rec("dsn-1", map[string]string{"a": "b"})
	require.NoError(t, e.inv.UpsertDSN(ctx(t), r))
	require.NoError(t, e.inv.RecordAdmission(ctx(t), "dsn-1", t0, inventory.OutcomeAdmitted))
	require.NoError(t, e.inv.Close())

	for range 2 { // reopening migrates nothing and keeps everything
		inv := open(t, e.place, e.clock.Now)
		v, err := inv.SchemaVersion(ctx(t))
		require.NoError(t, err)
		assert.Equal(t, v1, v)
		got, err := inv.GetDSN(ctx(t), "dsn-1")
		require.NoError(t, err)
		assert.Equal(t, r.Labels, got.Labels)
		h, err := inv.AdmissionHistory(ctx(t), "dsn-1", 0)
		require.NoError(t, err)
		assert.Len(t, h, 1)
		require.NoError(t, inv.Close())
	}
}

func dialectOf(t *testing.T, inv *inventory.DB) string {
	if inv.Dialect() == "" {
		t.Fatal("unknown dialect")
	}
	return inv.Dialect()
}

func testConcurrent(t *testing.T, open Opener) {
	e := setup(t, open)
	const writers, each = 4, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id := fmt.Sprintf("w%d-%03d", w, i)
				if err := e.inv.UpsertDSN(context.Background(), rec(id, map[string]string{"w": fmt.Sprint(w)})); err != nil {
					t.Error(err)
					return
				}
				if err := e.inv.RecordAdmission(context.Background(), id, t0, inventory.OutcomeAdmitted); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	s, err := e.inv.Summarize(ctx(t))
	require.NoError(t, err)
	assert.Equal(t, writers*each, s.Total)
	p, err := e.inv.ListDSNs(ctx(t), inventory.Filter{Labels: map[string]string{"w": "2"}, Limit: 1000})
	require.NoError(t, err)
	assert.Len(t, p.DSNs, each)
}

func testInvalid(t *testing.T, open Opener) {
	e := setup(t, open)
	bad := []struct {
		name string
		edit func(r *inventory.DSNRecord)
	}{
		{"empty id", func(r *inventory.DSNRecord) { r.ID = "" }},
		{"id with a dot", func(r *inventory.DSNRecord) { r.ID = "dsn.1" }},
		{"state", func(r *inventory.DSNRecord) { r.State = "happy" }},
		{"label key", func(r *inventory.DSNRecord) { r.Labels = map[string]string{"bad key": "v"} }},
		{"label value", func(r *inventory.DSNRecord) { r.Labels = map[string]string{"k": "\xff"} }},
		{"revision", func(r *inventory.DSNRecord) { r.AppliedRevision = 1 << 63 }},
		{"last seen", func(r *inventory.DSNRecord) { r.LastSeen = time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC) }},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			r := rec("dsn-1", nil)
			tt.edit(&r)
			require.ErrorIs(t, e.inv.UpsertDSN(ctx(t), r), inventory.ErrInvalid)
		})
	}
	require.ErrorIs(t, e.inv.RecordAdmission(ctx(t), "dsn-1", t0, "Admitted!"), inventory.ErrInvalid)
	require.ErrorIs(t, e.inv.RecordAdmission(ctx(t), "dsn-1", time.Time{}, "admitted"), inventory.ErrInvalid)
	require.ErrorIs(t, e.inv.RecordAdmission(ctx(t), "dsn 1", t0, "admitted"), inventory.ErrInvalid)
	_, err := e.inv.ListDSNs(ctx(t), inventory.Filter{State: "happy"})
	require.ErrorIs(t, err, inventory.ErrInvalid)
	_, err = e.inv.ListDSNs(ctx(t), inventory.Filter{Limit: inventory.MaxPageSize + 1})
	require.ErrorIs(t, err, inventory.ErrInvalid)
	_, err = e.inv.ListDSNs(ctx(t), inventory.Filter{After: "x' OR 1=1 --"})
	require.ErrorIs(t, err, inventory.ErrInvalid)
	_, err = e.inv.AdmissionHistory(ctx(t), "dsn-1", -1)
	require.ErrorIs(t, err, inventory.ErrInvalid)
	// Label values are data, never SQL.
	require.NoError(t, e.inv.UpsertDSN(ctx(t), rec("dsn-q", map[string]string{"q": "x' OR '1'='1"})))
	p, err := e.inv.ListDSNs(ctx(t), inventory.Filter{Labels: map[string]string{"q": "x' OR '1'='1"}})
	require.NoError(t, err)
	assert.Equal(t, []string{"dsn-q"}, ids(p))
	s, err := e.inv.Summarize(ctx(t))
	require.NoError(t, err)
	assert.Equal(t, 1, s.Total, "nothing invalid was written")
}

func testClosed(t *testing.T, open Opener) {
	e := setup(t, open)
	require.NoError(t, e.inv.Close())
	require.NoError(t, e.inv.Close(), "closing twice is harmless")
	require.ErrorIs(t, e.inv.UpsertDSN(ctx(t), rec("dsn-1", nil)), inventory.ErrClosed)
	_, err := e.inv.GetDSN(ctx(t), "dsn-1")
	require.ErrorIs(t, err, inventory.ErrClosed)
	_, err = e.inv.ListDSNs(ctx(t), inventory.Filter{})
	require.ErrorIs(t, err, inventory.ErrClosed)
}
