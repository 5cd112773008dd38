package ingest

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/wire"
	"github.com/dsnscale/dsnscale/search"
)

// roomySink is a search queue with a fixed room, as the aggregator sees it.
type roomySink struct {
	room    int
	docs    []search.Document
	dropped int
}

func (s *roomySink) Offer(docs ...search.Document) int {
	n := min(len(docs), s.room)
	s.docs = append(s.docs, docs[:n]...)
	s.room -= n
	s.dropped += len(docs) - n
	return n
}

func (s *roomySink) Room() int { return s.room }

func applied(dsn string, at time.Time, rev int) *eventMsg {
	return &eventMsg{DSN: dsn, TimeUnixNano: at.UnixNano(), Type: "config-applied", Severity: "info",
		Message: "config applied", Fields: map[string]string{"revision": strconv.Itoa(rev)}}
}

// count sums the count fields of docs: the events they stand for.
func count(t *testing.T, docs []search.Document) int {
	t.Helper()
	n := 0
	for _, d := range docs {
		c, err := strconv.Atoi(d.Fields[FieldCount])
		require.NoError(t, err, "document %s has no count", d.ID)
		n += c
	}
	return n
}

func TestAFloodOfIdenticalEventsIsOneSeries(t *testing.T) {
	sink := &roomySink{room: 100}
	a := newAggregator(time.Second, 1000, sink)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	first := now.Add(-time.Minute)
	const n = 5000
	// Out of order on purpose: the series' first and last time are the events' extremes.
	a.add(applied("d1", first.Add(n*time.Millisecond), n), now)
	for i := range n {
		a.add(applied("d1", first.Add(time.Duration(i)*time.Millisecond), i), now)
	}
	a.add(&eventMsg{DSN: "d1", TimeUnixNano: first.UnixNano(), Type: "fault", Severity: "warning", Message: "link down"}, now)

	assert.Zero(t, a.flush(now.Add(999*time.Millisecond), false), "nothing is written before its window ends")
	require.Equal(t, 2, a.flush(now.Add(time.Second), false))
	require.Len(t, sink.docs, 2)
	byType := map[string]search.Document{}
	for _, d := range sink.docs {
		require.NoError(t, d.Validate())
		byType[d.Type] = d
	}
	s := byType["config-applied"]
	assert.Equal(t, strconv.Itoa(n+1), s.Fields[FieldCount])
	assert.Equal(t, first, s.Time)
	assert.Equal(t, first.Format(time.RFC3339Nano), s.Fields[FieldFirstTime])
	assert.Equal(t, first.Add(n*time.Millisecond).Format(time.RFC3339Nano), s.Fields[FieldLastTime])
	assert.Equal(t, strconv.Itoa(n), s.Fields["revision"], "the series keeps the last event's fields")
	assert.Equal(t, "d1", s.DSN)
	assert.Equal(t, "1", byType["fault"].Fields[FieldCount])
	assert.Equal(t, uint64(n), a.rolledUp.Load())
	assert.Equal(t, n+2, count(t, sink.docs))
	assert.Zero(t, a.lost.Load())

	// The next event of the key opens a new series.
	a.add(applied("d1", now, n+1), now.Add(time.Second))
	assert.Equal(t, 1, a.flush(now.Add(2*time.Second), false))
	assert.Equal(t, "1", sink.docs[2].Fields[FieldCount])
}

func TestAStormIsAllAccountedForWhenTheIndexFallsBehind(t *testing.T) {
	sink := &roomySink{room: 10}
	const dsns, revisions, maxOpen = 50, 40, 30
	a := newAggregator(time.Second, maxOpen, sink)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for rev := range revisions {
		for d := range dsns {
			a.add(applied(fmt.Sprintf("d%03d", d), now, rev), now)
		}
		now = now.Add(100 * time.Millisecond)
		a.flush(now, false)
		if rev%10 == 9 {
			sink.room += 10 // the index catches up a little
		}
	}
	a.flush(now, true)
	// Every event sent is stored or rolled up into a stored series, or was refused by the full
	// queue (which counts it as dropped).
	stored := len(sink.docs)
	assert.Positive(t, sink.dropped, "the queue was too small for the storm")
	assert.Equal(t, uint64(count(t, sink.docs)-stored), a.rolledUp.Load())
	assert.Equal(t, dsns*revisions, stored+int(a.rolledUp.Load())+sink.dropped+int(a.lost.Load()))
	assert.Less(t, stored, dsns*revisions/4, "most events were rolled up, not written one by one")
	assert.Positive(t, a.held.Load(), "series waited for room")
	assert.Zero(t, a.openSeries())
}

func TestSeriesFieldsAreReserved(t *testing.T) {
	for _, k := range reservedFields {
		var m eventMsg
		data := fmt.Sprintf(`{"dsn":"d1","timeUnixNano":1700000000000000000,"type":"x","severity":"info","fields":{%q:"5"}}`, k)
		err := wire.Unmarshal([]byte(data), &m)
		require.ErrorIs(t, err, wire.ErrInvalid, k)
		assert.Equal(t, ReasonContent, reasonOf(err))
	}
}

func TestAFloodOnTheBusIsOneQueryableSeries(t *testing.T) {
	b := startBus(t)
	dir := t.TempDir()
	in, reg := start(t, b, func(c *Config) {
		c.DataDir = dir
		c.EventSeriesWindow = time.Hour // the whole flood falls in one window; Close writes it
	})
	const n = 2000
	first := time.Now().Add(-time.Minute).Truncate(time.Millisecond).UTC()
	for i := range n {
		m := applied("d1", first.Add(time.Duration(i)*time.Millisecond), i)
		b.publish(t, wire.EventSubject("d1"), wire.Event(*m))
	}
	b.flush(t)
	require.Eventually(t, func() bool { return in.Stats().Events.Received == n }, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, 1.0, gathered(t, reg, "dsnscale_ingest_event_series_open", nil))
	assert.Zero(t, in.Stats().Search.Offered, "the series is open until its window ends")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, in.Close(ctx))
	s := in.Stats()
	assert.Equal(t, uint64(1), s.Search.Written)
	assert.Equal(t, uint64(n-1), s.Events.RolledUp)
	assert.Zero(t, s.Events.RolledUpDropped)
	idx, err := search.Open("", filepath.Join(dir, "search"), search.Options{})
	require.NoError(t, err)
	defer idx.Close()
	res, err := idx.Search(ctx, search.Query{DSN: "d1", Type: "config-applied", Fields: map[string]string{FieldCount: strconv.Itoa(n)}})
	require.NoError(t, err)
	require.Equal(t, 1, res.Total)
	d := res.Hits[0]
	assert.Equal(t, first, d.Time)
	assert.Equal(t, first.Add((n-1)*time.Millisecond).Format(time.RFC3339Nano), d.Fields[FieldLastTime])
	assert.Equal(t, strconv.Itoa(n-1), d.Fields["revision"])
}
