package ingest

import (
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nuid"

	"github.com/dsnscale/dsnscale/search"
)

// Fields every event document carries about its series: a storm of one DSN repeating itself
// becomes one document, and these say how many events it stands for and when they happened
// (the document's time is the first one's). Events from DSNs may not use these keys.
const (
	FieldCount     = "count"     // events in the series, in decimal
	FieldFirstTime = "firstTime" // the first event's time, RFC 3339 with nanoseconds
	FieldLastTime  = "lastTime"  // the last event's time, RFC 3339 with nanoseconds
)

// reservedFields are the event fields the series use.
var reservedFields = []string{FieldCount, FieldFirstTime, FieldLastTime}

// seriesKey says which events are one series: the same DSN, reason (type) and object (the
// severity and message; the fields, such as the revision applied, may change along the series
// and the document keeps the last event's).
type seriesKey struct {
	dsn, typ, severity, message string
}

func (m *eventMsg) seriesKey() seriesKey { return seriesKey{m.DSN, m.Type, m.Severity, m.Message} }

// series is an open series: events of one key since it was opened.
type series struct {
	id          string
	opened      time.Time // by the control plane's clock: the series is written one window later
	first, last time.Time // by the events' own times
	count       uint64
	kind        search.Kind
	fields      map[string]string
}

// newSeries opens a series with its first event.
func newSeries(id string, e *eventMsg, now time.Time) *series {
	t := time.Unix(0, e.TimeUnixNano).UTC()
	return &series{id: id, opened: now, first: t, last: t, count: 1, kind: e.kind(), fields: e.Fields}
}

// documentSink is where closed series go: the search queue, which takes what it has room for.
type documentSink interface {
	Offer(docs ...search.Document) int
	Room() int
}

// aggregator rolls repetitive events up into series. An event whose key has an open series adds
// to its count (and is counted as rolled up); any other opens a series. A series is written as
// one document once it has been open for a window; while the search queue has no room for it,
// it stays open and goes on absorbing its events, so that an index that cannot keep up slows
// what is written (back-pressure) rather than losing events. When maxOpen series are open, a
// new key's event is written alone, and what the queue cannot take then is dropped and
// counted by the queue. It is safe for concurrent use.
type aggregator struct {
	window  time.Duration
	maxOpen int
	sink    documentSink

	// rolledUp counts the events after the first of the series the sink accepted: they are
	// stored only in their series' count. lost counts those of the series the sink refused
	// (the sink counts each refused series as one dropped document).
	rolledUp atomic.Uint64
	lost     atomic.Uint64
	written  atomic.Uint64 // series the sink accepted
	held     atomic.Uint64 // times a series due was kept open for lack of room in the sink

	mu   sync.Mutex
	open map[seriesKey]*series
}

func newAggregator(window time.Duration, maxOpen int, sink documentSink) *aggregator {
	return &aggregator{window: window, maxOpen: maxOpen, sink: sink, open: map[seriesKey]*series{}}
}

// add takes one valid event, received at now by the control plane's clock.
func (a *aggregator) add(e *eventMsg, now time.Time) {
	k := e.seriesKey()
	t := time.Unix(0, e.TimeUnixNano).UTC()
	a.mu.Lock()
	if s, ok := a.open[k]; ok {
		s.count++
		if t.Before(s.first) {
			s.first = t
		}
		if !t.Before(s.last) {
			s.last, s.fields = t, e.Fields
		}
		a.mu.Unlock()
		return
	}
	// The ID is fixed here, so a batch the queue retries replaces its documents instead of
	// storing them twice.
	s := newSeries(nuid.Next(), e, now)
	if len(a.open) < a.maxOpen {
		a.open[k] = s
		a.mu.Unlock()
		return
	}
	a.mu.Unlock()
	a.offer([]*series{s}, []search.Document{s.document(k)})
}

// offer hands docs, the documents of ss, to the sink and counts what became of their events.
func (a *aggregator) offer(ss []*series, docs []search.Document) {
	n := a.sink.Offer(docs...)
	var rolled, lost uint64
	for i, s := range ss {
		if i < n {
			rolled += s.count - 1
		} else {
			lost += s.count - 1
		}
	}
	a.written.Add(uint64(n))
	a.rolledUp.Add(rolled)
	a.lost.Add(lost)
}

// flush writes the series open for at least a window at now (all of them when all is set, as
// at close), oldest first, as far as the sink has room. It returns how many it wrote.
func (a *aggregator) flush(now time.Time, all bool) int {
	type due struct {
		k seriesKey
		s *series
	}
	a.mu.Lock()
	var ready []due
	for k, s := range a.open {
		if all || now.Sub(s.opened) >= a.window {
			ready = append(ready, due{k, s})
		}
	}
	room := a.sink.Room()
	if !all && len(ready) > room {
		slices.SortFunc(ready, func(x, y due) int { return x.s.opened.Compare(y.s.opened) })
		room = max(room, 0)
		a.held.Add(uint64(len(ready) - room))
		ready = ready[:room]
	}
	ss := make([]*series, len(ready))
	docs := make([]search.Document, len(ready))
	for i, d := range ready {
		delete(a.open, d.k)
		ss[i], docs[i] = d.s, d.s.document(d.k)
	}
	a.mu.Unlock()
	a.offer(ss, docs)
	return len(docs)
}

// openSeries is how many series are open.
func (a *aggregator) openSeries() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.open)
}

// document is the search document of a series.
func (s *series) document(k seriesKey) search.Document {
	fields := make(map[string]string, len(s.fields)+len(reservedFields))
	for f, v := range s.fields {
		fields[f] = v
	}
	fields[FieldCount] = strconv.FormatUint(s.count, 10)
	fields[FieldFirstTime] = s.first.Format(time.RFC3339Nano)
	fields[FieldLastTime] = s.last.Format(time.RFC3339Nano)
	return search.Document{
		ID:       s.id,
		Time:     s.first,
		Kind:     s.kind,
		DSN:      k.dsn,
		Type:     k.typ,
		Severity: k.severity,
		Message:  k.message,
		Fields:   fields,
	}
}
