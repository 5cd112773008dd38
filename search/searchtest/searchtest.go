// Package searchtest is the conformance suite every search.Index implementation passes.
//
// Every test tags its documents with a random fields.run value and filters on it, so the suite
// can run again and again against a shared server. Indexes that show writes after a delay are
// refreshed (search.Refresh) and polled until Settle passes.
package searchtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/search"
)

// Opener opens the index under test. The suite calls it again with the same dir after closing
// the first index and expects the documents to be there (a server ignores dir).
type Opener func(t *testing.T, dir string) search.Index

// Settle is how long the suite waits for indexed documents to become searchable.
var Settle = 20 * time.Second

// Run runs the suite.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(*testing.T, Opener)
	}{
		{"RoundTrip", testRoundTrip},
		{"Text", testText},
		{"ExactFilters", testFilters},
		{"TimeRangeAndOrder", testTimeRange},
		{"LimitAndTotal", testLimit},
		{"ReindexReplaces", testReindex},
		{"KeptAcrossRestart", testRestart},
		{"GeneratedIDs", testGeneratedIDs},
		{"Concurrent", testConcurrent},
		{"InvalidInput", testInvalid},
		{"Closed", testClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open) })
	}
}

type fixture struct {
	run  string
	base time.Time
}

func newFixture(t *testing.T) fixture {
	b := make([]byte, 6)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return fixture{run: hex.EncodeToString(b), base: time.Date(2024, 3, 1, 23, 0, 0, 0, time.UTC)}
}

// doc builds a document tagged with the fixture's run.
func (f fixture) doc(id string, at time.Duration, kind search.Kind, msg string, fields ...string) search.Document {
	d := search.Document{ID: f.run + "-" + id, Time: f.base.Add(at), Kind: kind, Message: msg,
		Fields: map[string]string{"run": f.run}}
	for i := 0; i+1 < len(fields); i += 2 {
		d.Fields[fields[i]] = fields[i+1]
	}
	return d
}

// query scopes q to the fixture's run.
func (f fixture) query(q search.Query) search.Query {
	fs := map[string]string{"run": f.run}
	for k, v := range q.Fields {
		fs[k] = v
	}
	q.Fields = fs
	return q
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func openIndex(t *testing.T, open Opener, dir string) search.Index {
	idx := open(t, dir)
	t.Cleanup(func() { _ = idx.Close() })
	return idx
}

func index(t *testing.T, idx search.Index, docs ...search.Document) {
	t.Helper()
	require.NoError(t, idx.Index(ctx(t), docs...))
	require.NoError(t, search.Refresh(ctx(t), idx))
}

func ids(r search.Result) []string {
	out := []string{}
	for _, d := range r.Hits {
		out = append(out, d.ID)
	}
	return out
}

// expect polls q until it returns want (IDs in order, and total) or Settle passes.
func expect(t *testing.T, idx search.Index, q search.Query, wantTotal int, want ...string) search.Result {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	deadline := time.Now().Add(Settle)
	for {
		r, err := idx.Search(ctx(t), q)
		require.NoError(t, err)
		if (assert.ObjectsAreEqual(want, ids(r)) && r.Total == wantTotal) || time.Now().After(deadline) {
			require.Equal(t, want, ids(r), "query %+v", q)
			require.Equal(t, wantTotal, r.Total, "total of query %+v", q)
			return r
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func testRoundTrip(t *testing.T, open Opener) {
	f := newFixture(t)
	idx := openIndex(t, open, t.TempDir())
	d := search.Document{
		ID: f.run + "-full", Time: f.base.Add(1234567891 * time.Nanosecond), Kind: search.KindEvent,
		DSN: "dsn-00042", Type: "config.applied", Severity: "warning", Message: "Applied revision 17 (späte Änderung)",
		Fields: map[string]string{"run": f.run, "revision": "17", "tenant": "acme-corp", "path": "/a b/ü"},
		Data:   `{"payload": "kept, not searched: zanzibar"}`,
	}
	index(t, idx, d)
	r := expect(t, idx, f.query(search.Query{}), 1, d.ID)
	assert.Equal(t, d, r.Hits[0], "every field comes back as indexed, time to the nanosecond, in UTC")
	expect(t, idx, f.query(search.Query{Text: "zanzibar"}), 0)
}

func testText(t *testing.T, open Opener) {
	f := newFixture(t)
	idx := openIndex(t, open, t.TempDir())
	index(t, idx,
		f.doc("a", 1*time.Second, search.KindLog, "Link DOWN on port eth0"),
		f.doc("b", 2*time.Second, search.KindLog, "link up on port eth1"),
		f.doc("c", 3*time.Second, search.KindLog, "the link is down, again"),
		f.doc("d", 4*time.Second, search.KindLog, "downlink unaffected"),
	)
	tests := []struct {
		text string
		want []string
	}{
		{"link down", []string{"a", "c"}},
		{"LINK", []string{"a", "b", "c"}},
		{"down link", []string{"a", "c"}},
		{"the link", []string{"c"}},
		{"eth0", []string{"a"}},
		{"down,", []string{"a", "c"}},
		{"missing", nil},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			var want []string
			for _, id := range tt.want {
				want = append(want, f.run+"-"+id)
			}
			expect(t, idx, f.query(search.Query{Text: tt.text}), len(want), want...)
		})
	}
}

func testFilters(t *testing.T, open Opener) {
	f := newFixture(t)
	idx := openIndex(t, open, t.TempDir())
	e1 := f.doc("e1", 1*time.Second, search.KindEvent, "admitted", "tenant", "acme")
	e1.DSN, e1.Type, e1.Severity = "dsn-1", "admission", "info"
	e2 := f.doc("e2", 2*time.Second, search.KindEvent, "quarantined", "tenant", "globex")
	e2.DSN, e2.Type, e2.Severity = "dsn-2", "quarantine", "error"
	l1 := f.doc("l1", 3*time.Second, search.KindLog, "admitted", "tenant", "acme")
	l1.DSN, l1.Severity = "dsn-1", "debug"
	a1 := f.doc("a1", 4*time.Second, search.KindAudit, "policy changed", "tenant", "acme", "user", "alice")
	index(t, idx, e1, e2, l1, a1)
	tests := []struct {
		name string
		q    search.Query
		want []search.Document
	}{
		{"kind", search.Query{Kind: search.KindEvent}, []search.Document{e1, e2}},
		{"dsn", search.Query{DSN: "dsn-1"}, []search.Document{e1, l1}},
		{"type", search.Query{Type: "quarantine"}, []search.Document{e2}},
		{"severity", search.Query{Severity: "debug"}, []search.Document{l1}},
		{"field", search.Query{Fields: map[string]string{"tenant": "acme"}}, []search.Document{e1, l1, a1}},
		{"fields are exact", search.Query{Fields: map[string]string{"tenant": "acm"}}, nil},
		{"two fields", search.Query{Fields: map[string]string{"tenant": "acme", "user": "alice"}}, []search.Document{a1}},
		{"field and kind and text", search.Query{Kind: search.KindLog, Text: "admitted", Fields: map[string]string{"tenant": "acme"}}, []search.Document{l1}},
		{"dsn is exact", search.Query{DSN: "dsn"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want []string
			for _, d := range tt.want {
				want = append(want, d.ID)
			}
			expect(t, idx, f.query(tt.q), len(want), want...)
		})
	}
}

func testTimeRange(t *testing.T, open Opener) {
	f := newFixture(t)
	idx := openIndex(t, open, t.TempDir())
	// Across a UTC midnight (base is 23:00), and two documents at the same time, out of order.
	docs := []search.Document{
		f.doc("5", 3*time.Hour, search.KindLog, "x"),
		f.doc("1", 0, search.KindLog, "x"),
		f.doc("3b", 90*time.Minute, search.KindLog, "x"),
		f.doc("3a", 90*time.Minute, search.KindLog, "x"),
		f.doc("2", time.Hour, search.KindLog, "x"),
		f.doc("4", 2*time.Hour, search.KindLog, "x"),
	}
	index(t, idx, docs...)
	id := func(s ...string) []string {
		for i := range s {
			s[i] = f.run + "-" + s[i]
		}
		return s
	}
	expect(t, idx, f.query(search.Query{}), 6, id("1", "2", "3a", "3b", "4", "5")...)
	expect(t, idx, f.query(search.Query{From: f.base.Add(time.Hour), To: f.base.Add(2 * time.Hour)}), 4, id("2", "3a", "3b", "4")...)
	expect(t, idx, f.query(search.Query{From: f.base.Add(time.Hour + 1), To: f.base.Add(2*time.Hour - 1)}), 2, id("3a", "3b")...)
	expect(t, idx, f.query(search.Query{From: f.base.Add(2 * time.Hour)}), 2, id("4", "5")...)
	expect(t, idx, f.query(search.Query{To: f.base}), 1, id("1")...)
	expect(t, idx, f.query(search.Query{From: f.base.Add(24 * time.Hour)}), 0)
}

func testLimit(t *testing.T, open Opener) {
	f := newFixture(t)
	idx := openIndex(t, open, t.TempDir())
	var docs []search.Document
	var want []string
	for i := range 25 {
		d := f.doc(fmt.Sprintf("%02d", i), time.Duration(i)*time.Minute, search.KindEvent, "tick")
		docs = append(docs, d)
		want = append(want, d.ID)
	}
	index(t, idx, docs...)
	expect(t, idx, f.query(search.Query{Limit: 10}), 25, want[:10]...)
	expect(t, idx, f.query(search.Query{Limit: 10, From: f.base.Add(20 * time.Minute)}), 5, want[20:]...)
	expect(t, idx, f.query(search.Query{}), 25, want...)
}

func testReindex(t *testing.T, open Opener) {
	f := newFixture(t)
	idx := openIndex(t, open, t.TempDir())
	d := f.doc("x", time.Minute, search.KindEvent, "first version")
	index(t, idx, d)
	expect(t, idx, f.query(search.Query{Text: "first"}), 1, d.ID)
	d.Message = "second version"
	index(t, idx, d, d)
	expect(t, idx, f.query(search.Query{Text: "second"}), 1, d.ID)
	expect(t, idx, f.query(search.Query{Text: "first"}), 0)
	expect(t, idx, f.query(search.Query{}), 1, d.ID)
}

func testRestart(t *testing.T, open Opener) {
	f := newFixture(t)
	dir := t.TempDir()
	idx := open(t, dir)
	d := f.doc("kept", time.Minute, search.KindAudit, "kept across restart")
	index(t, idx, d)
	expect(t, idx, f.query(search.Query{Text: "restart"}), 1, d.ID)
	require.NoError(t, idx.Close())
	idx = openIndex(t, open, dir)
	expect(t, idx, f.query(search.Query{Text: "restart"}), 1, d.ID)
	d2 := f.doc("new", 2*time.Minute, search.KindAudit, "after restart")
	index(t, idx, d2)
	expect(t, idx, f.query(search.Query{Text: "restart"}), 2, d.ID, d2.ID)
}

func testGeneratedIDs(t *testing.T, open Opener) {
	f := newFixture(t)
	idx := openIndex(t, open, t.TempDir())
	a, b := f.doc("", 0, search.KindLog, "same"), f.doc("", 0, search.KindLog, "same")
	a.ID, b.ID = "", ""
	index(t, idx, a, b)
	deadline := time.Now().Add(Settle)
	var r search.Result
	for {
		var err error
		r, err = idx.Search(ctx(t), f.query(search.Query{}))
		require.NoError(t, err)
		if r.Total == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	require.Len(t, r.Hits, 2)
	assert.NotEmpty(t, r.Hits[0].ID)
	assert.NotEqual(t, r.Hits[0].ID, r.Hits[1].ID)
}

func testConcurrent(t *testing.T, open Opener) {
	f := newFixture(t)
	idx := openIndex(t, open, t.TempDir())
	const writers, each = 4, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var docs []search.Document
			for i := range each {
				docs = append(docs, f.doc(fmt.Sprintf("w%d-%02d", w, i), time.Duration(w*each+i)*time.Second, search.KindEvent, "concurrent"))
			}
			if err := idx.Index(context.Background(), docs...); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	require.NoError(t, search.Refresh(ctx(t), idx))
	var want []string
	for w := range writers {
		for i := range each {
			want = append(want, fmt.Sprintf("%s-w%d-%02d", f.run, w, i))
		}
	}
	expect(t, idx, f.query(search.Query{Limit: 1000}), writers*each, want...)
}

func testInvalid(t *testing.T, open Opener) {
	f := newFixture(t)
	idx := openIndex(t, open, t.TempDir())
	good := f.doc("good", 0, search.KindEvent, "fine")
	bad := []struct {
		name string
		edit func(d *search.Document)
	}{
		{"kind", func(d *search.Document) { d.Kind = "metric" }},
		{"no kind", func(d *search.Document) { d.Kind = "" }},
		{"severity", func(d *search.Document) { d.Severity = "fatal" }},
		{"zero time", func(d *search.Document) { d.Time = time.Time{} }},
		{"time past 2261", func(d *search.Document) { d.Time = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) }},
		{"field name", func(d *search.Document) { d.Fields["a.b"] = "x" }},
		{"empty field value", func(d *search.Document) { d.Fields["empty"] = "" }},
		{"invalid UTF-8", func(d *search.Document) { d.Message = "\xff" }},
		{"data too large", func(d *search.Document) { d.Data = strings.Repeat("x", search.MaxDataBytes+1) }},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			d := f.doc("bad", 0, search.KindEvent, "bad")
			tt.edit(&d)
			require.ErrorIs(t, idx.Index(ctx(t), good, d), search.ErrInvalid)
		})
	}
	queries := []struct {
		name string
		q    search.Query
	}{
		{"kind", search.Query{Kind: "metric"}},
		{"severity", search.Query{Severity: "fatal"}},
		{"to before from", search.Query{From: f.base, To: f.base.Add(-time.Second)}},
		{"limit", search.Query{Limit: search.MaxLimit + 1}},
		{"negative limit", search.Query{Limit: -1}},
		{"field name", search.Query{Fields: map[string]string{"a b": "x"}}},
	}
	for _, tt := range queries {
		t.Run("query "+tt.name, func(t *testing.T) {
			_, err := idx.Search(ctx(t), f.query(tt.q))
			require.ErrorIs(t, err, search.ErrInvalid)
		})
	}
	// A batch with an invalid document wrote nothing, not even its valid one.
	require.NoError(t, search.Refresh(ctx(t), idx))
	r, err := idx.Search(ctx(t), f.query(search.Query{}))
	require.NoError(t, err)
	assert.Zero(t, r.Total)
}

func testClosed(t *testing.T, open Opener) {
	f := newFixture(t)
	idx := open(t, t.TempDir())
	require.NoError(t, idx.Close())
	require.NoError(t, idx.Close(), "closing twice is harmless")
	require.ErrorIs(t, idx.Index(ctx(t), f.doc("x", 0, search.KindLog, "x")), search.ErrClosed)
	_, err := idx.Search(ctx(t), f.query(search.Query{}))
	require.ErrorIs(t, err, search.ErrClosed)
}
