package audit

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/search"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func rec(id string, at time.Duration, user, verb, path string) Record {
	return Record{ID: id, Time: t0.Add(at), User: user, Source: "10.0.0.1", Method: "GET", Path: path, Verb: verb,
		Kind: "Network", Tenant: "acme", Status: 200, Verdict: VerdictAllowed, Binding: "editors"}
}

func TestBlocksGroupByWhoAndWhatWithinASpan(t *testing.T) {
	records := []Record{
		rec("a1", 0, "alice", "get", "/n/1"),
		rec("b1", time.Second, "bob", "get", "/n/2"),
		rec("a2", 2*time.Second, "alice", "get", "/n/3"),
		rec("a3", 3*time.Second, "alice", "list", "/n"),
		rec("a4", blockSpan+time.Second, "alice", "get", "/n/4"), // too far from a1
	}
	bl := newBlocker()
	docs, err := bl.toBlocks(records)
	require.NoError(t, err)
	got := map[string][]string{}
	for _, d := range docs {
		require.NoError(t, d.Validate())
		recs, err := fromBlock(d)
		require.NoError(t, err)
		for _, r := range recs {
			got[d.ID] = append(got[d.ID], r.ID)
			assert.Equal(t, d.Fields[fieldUser], r.User, "a block's fields hold for each of its records")
			assert.Equal(t, d.Fields[fieldVerb], r.Verb)
			assert.False(t, r.Time.Before(d.Time), "a block's time is its earliest record's")
		}
	}
	assert.Equal(t, map[string][]string{"a1": {"a1", "a2"}, "b1": {"b1"}, "a3": {"a3"}, "a4": {"a4"}}, got)

	// A retried batch, in any order, makes the same documents: they replace, not add. The
	// blocker's buffers, reused, leave the first batch's documents as they were.
	want := slices.Clone(docs)
	again, err := bl.toBlocks([]Record{records[4], records[2], records[0], records[3], records[1]})
	require.NoError(t, err)
	assert.ElementsMatch(t, want, again)
	assert.Equal(t, want, docs)
	again, err = newBlocker().toBlocks([]Record{records[4], records[2], records[0], records[3], records[1]})
	require.NoError(t, err)
	assert.ElementsMatch(t, want, again)
}

func TestBlocksStayWithinTheDocumentLimits(t *testing.T) {
	var records []Record
	for i := range 2*blockRecords + 10 {
		records = append(records, rec(fmt.Sprintf("r%05d", i), time.Duration(i)*time.Millisecond, "alice", "get", fmt.Sprintf("/n/word%d", i)))
	}
	docs, err := newBlocker().toBlocks(records)
	require.NoError(t, err)
	n := 0
	for _, d := range docs {
		require.NoError(t, d.Validate())
		recs, err := fromBlock(d)
		require.NoError(t, err)
		require.LessOrEqual(t, len(recs), blockRecords)
		n += len(recs)
	}
	assert.Equal(t, len(records), n)
	assert.Greater(t, len(docs), 2, "the distinct words of 2,000 paths do not fit one message")
}

// Search finds exactly the records that match, not every record of a block that does.
func TestSearchPicksRecordsOutOfBlocks(t *testing.T) {
	idx, err := search.OpenBleve(t.TempDir())
	require.NoError(t, err)
	defer idx.Close()
	store := NewSearchStore(idx)
	ctx := context.Background()
	denied := rec("d1", 4*time.Second, "alice", "delete", "/n/9")
	denied.Verdict, denied.Status, denied.Binding, denied.Reason = VerdictDenied, 403, "", "no binding allows delete on globex"
	require.NoError(t, store.Write(ctx, []Record{
		rec("a1", 0, "alice", "get", "/tenants/acme/networks/red"),
		rec("a2", time.Second, "alice", "get", "/tenants/acme/networks/blue"),
		rec("a3", 2*time.Second, "alice", "get", "/tenants/acme/networks/green"),
		rec("b1", 3*time.Second, "bob", "get", "/tenants/acme/networks/red"),
		denied,
	}))
	find := func(q Query) []string {
		t.Helper()
		res, err := store.Search(ctx, q)
		require.NoError(t, err)
		var ids []string
		for _, r := range res.Items {
			ids = append(ids, r.ID)
		}
		require.Equal(t, res.Total, len(ids))
		return ids
	}
	assert.Equal(t, []string{"a1", "b1"}, find(Query{Text: "red"}))
	assert.Empty(t, find(Query{Text: "red blue"}), "words of two records of one block are no match")
	assert.Equal(t, []string{"a2"}, find(Query{User: "alice", Text: "BLUE"}))
	assert.Equal(t, []string{"a2", "a3"}, find(Query{User: "alice", Verb: "get", From: t0.Add(500 * time.Millisecond)}), "time bounds are exact within a block")
	assert.Equal(t, []string{"a1", "a2"}, find(Query{To: t0.Add(time.Second)}))
	assert.Equal(t, []string{"d1"}, find(Query{Verdict: VerdictDenied, Text: "globex"}))
	assert.Equal(t, []string{"a1", "a2", "a3", "b1", "d1"}, find(Query{}))

	res, err := store.Search(ctx, Query{Limit: 2})
	require.NoError(t, err)
	assert.Equal(t, 5, res.Total)
	assert.Len(t, res.Items, 2)
	assert.False(t, res.Truncated)
}

// The words of a record, split part by part, are those of its whole summary.
func TestWordsOfPartsAreWordsOfTheSummary(t *testing.T) {
	paths := []string{"/api/v1/tenants/acme/networks/n-1", "/api/v1/tenants/a.b/networks/x_y", "/a//b/", "/Grüße/3.14/v1.2-rc_1", "/x y/z:w/127.0.0.1", ""}
	for _, p := range paths {
		r := Record{User: "Alice.Smith", Method: "GET", Path: p, Status: 403, Verdict: VerdictDenied, Binding: "ops-team", Reason: "no binding allows it: globex.io"}
		summary := fmt.Sprintf("%s %s %s %d %s by binding %s: %s", r.User, r.Method, r.Path, r.Status, r.Verdict, r.Binding, r.Reason)
		assert.ElementsMatch(t, newWords(summary), newWordCache().of(r), p)
	}
	anon := Record{Method: "POST", Path: "/api/v1/login", Status: 401, Verdict: VerdictUnauthenticated}
	assert.ElementsMatch(t, newWords("anonymous POST /api/v1/login 401 unauthenticated"), newWordCache().of(anon))
}

// A word cache kept from batch to batch gives each summary its own words, however many summaries
// came before, and holds no more than maxCachedSummaries of them.
func TestWordCacheKeptAcrossBatches(t *testing.T) {
	c := newWordCache()
	rec := func(i int) Record {
		return Record{User: fmt.Sprintf("user-%d", i%7), Method: "GET", Path: fmt.Sprintf("/api/v1/tenants/t%d/networks/n-%d", i%13, i), Status: 200 + i%3, Verdict: VerdictAllowed}
	}
	for i := range maxCachedSummaries + 10 {
		r := rec(i)
		got := c.of(r)
		if i%997 == 0 || i >= maxCachedSummaries-2 {
			require.ElementsMatch(t, newWordCache().of(r), got, "record %d", i)
			require.ElementsMatch(t, got, c.of(r), "record %d again", i)
		}
		require.LessOrEqual(t, len(c.summaries), maxCachedSummaries)
	}
	assert.Less(t, len(c.summaries), 100, "the cache started afresh when full")
}

// A search reads blocks only until its first records are certain, yet finds them wherever
// they are.
func TestSearchReadsOnlyWhatItNeeds(t *testing.T) {
	idx, err := search.OpenBleve(t.TempDir())
	require.NoError(t, err)
	defer idx.Close()
	store := NewSearchStore(idx)
	ctx := context.Background()
	const n = 5 * blocksPerPage // a block each: every record has a user of its own
	var records []Record
	for i := range n {
		records = append(records, rec(fmt.Sprintf("r%04d", i), time.Duration(i)*time.Millisecond, fmt.Sprintf("user%04d", i), "get", "/n/1"))
	}
	require.NoError(t, store.Write(ctx, records))

	res, err := store.Search(ctx, Query{Limit: 5})
	require.NoError(t, err)
	require.Len(t, res.Items, 5)
	for i, r := range res.Items {
		assert.Equal(t, fmt.Sprintf("r%04d", i), r.ID, "the earliest records, in order")
	}
	assert.True(t, res.Truncated, "more matched than it read")
	assert.Less(t, res.Total, n)

	res, err = store.Search(ctx, Query{User: fmt.Sprintf("user%04d", n-1)})
	require.NoError(t, err)
	assert.Equal(t, []string{fmt.Sprintf("r%04d", n-1)}, []string{res.Items[0].ID}, "the last block is found")
	assert.False(t, res.Truncated)

	res, err = store.Search(ctx, Query{Limit: n})
	require.NoError(t, err)
	assert.Equal(t, n, res.Total, "all of them, over several pages")
	assert.Len(t, res.Items, n)
	assert.False(t, res.Truncated)

	res, err = store.Search(ctx, Query{From: t0.Add(100 * time.Millisecond), Limit: 3})
	require.NoError(t, err)
	assert.Equal(t, "r0100", res.Items[0].ID)
}
