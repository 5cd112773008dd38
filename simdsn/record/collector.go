package record

import (
	"bytes"
	"context"
	"sort"
	"sync"
	"time"

	"github.com/dsnscale/dsnscale/simdsn/stage"
)

// MaxHistory bounds each DSN's kept transitions, applied revisions and watch events; older
// entries are dropped (and counted) first.
const MaxHistory = 4096

// Transition is one state change of a DSN.
type Transition struct {
	At    time.Time `json:"at"`
	From  string    `json:"from"`
	To    string    `json:"to"`
	Stage string    `json:"stage,omitempty"`
}

// RevisionAt is a revision and when it was applied.
type RevisionAt struct {
	Revision uint64    `json:"revision"`
	At       time.Time `json:"at"`
	Detail   string    `json:"detail,omitempty"`
}

// WatchEvent is one anomaly in what a DSN was sent.
type WatchEvent struct {
	At       time.Time `json:"at"`
	Kind     string    `json:"kind"`
	Revision uint64    `json:"revision"`
	Applied  uint64    `json:"applied"`
}

// WatchStats is a DSN's watch-correctness record.
type WatchStats struct {
	Gaps        int          `json:"gaps"`
	Duplicates  int          `json:"duplicates"`
	Overtaken   int          `json:"overtaken,omitempty"`
	Regressions int          `json:"regressions"`
	Events      []WatchEvent `json:"events,omitempty"`
}

// DSNReport is everything the harness knows about one DSN.
type DSNReport struct {
	ID              string       `json:"id"`
	Unit            string       `json:"unit,omitempty"`
	State           string       `json:"state"`
	Stage           string       `json:"stage,omitempty"`
	StateSince      time.Time    `json:"stateSince"`
	Transitions     []Transition `json:"transitions,omitempty"`
	AppliedRevision uint64       `json:"appliedRevision"`
	AppliedAt       time.Time    `json:"appliedAt"`
	Applied         []RevisionAt `json:"applied,omitempty"`
	// NoConfigServing is how long the DSN forwarded traffic with no config at all.
	NoConfigServing time.Duration  `json:"noConfigServing"`
	Watch           WatchStats     `json:"watch"`
	Faults          map[string]int `json:"faults,omitempty"`
	// AcksDropped counts the acks the DSN did not send because a misbehaviour dropped them.
	AcksDropped int `json:"acksDropped,omitempty"`
	Dropped     int `json:"dropped,omitempty"` // history entries dropped by MaxHistory
	// Admission is the last reason the DSN gave for not being admitted (zero if none); it
	// applies to the DSN's current state only when it is no older than StateSince.
	Admission AdmissionProblem `json:"admission,omitzero"`
}

// AdmissionProblem is why a DSN was not admitted, and when it said so.
type AdmissionProblem struct {
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

// UnitStatus is the last reported status of a unit.
type UnitStatus struct {
	Status string    `json:"status"`
	Since  time.Time `json:"since"`
	Detail string    `json:"detail,omitempty"`
}

// UnitUsage is a unit's own resource use, as it reported it.
type UnitUsage struct {
	Host string `json:"host,omitempty"`
	// CPUSeconds adds up every process the unit ran (a restarted unit starts from 0 again).
	CPUSeconds float64 `json:"cpuSeconds"`
	// RSSBytes is the latest report, PeakRSSBytes the highest.
	RSSBytes     int64     `json:"rssBytes"`
	PeakRSSBytes int64     `json:"peakRSSBytes"`
	At           time.Time `json:"at"`

	cpuBase, cpuLast float64
}

// Summary counts DSNs by state and applied revision.
type Summary struct {
	Total      int            `json:"total"`
	ByState    map[string]int `json:"byState"`
	ByRevision map[uint64]int `json:"byRevision"`
	// Records is how many records have been taken in; Rejected how many lines failed to decode.
	Records  int64 `json:"records"`
	Rejected int64 `json:"rejected"`
}

// Count returns the number of DSNs in state s.
func (s Summary) Count(state string) int { return s.ByState[state] }

// AtOrPast returns the number of DSNs whose applied revision is at least rev.
func (s Summary) AtOrPast(rev uint64) int {
	n := 0
	for r, c := range s.ByRevision {
		if r >= rev {
			n += c
		}
	}
	return n
}

type dsnState struct {
	rep          DSNReport
	noConfigFrom time.Time // start of an open no-config serving interval, or zero
}

// Collector aggregates records into per-DSN reports. It is safe for concurrent use.
type Collector struct {
	now func() time.Time

	mu       sync.Mutex
	dsns     map[string]*dsnState
	units    map[string]UnitStatus
	usage    map[string]*UnitUsage
	subs     map[int]chan Record
	nextSub  int
	changed  chan struct{}
	records  int64
	rejected int64
}

// NewCollector returns an empty collector; now is its clock (nil: time.Now), used only to close
// open intervals when a report is read.
func NewCollector(now func() time.Time) *Collector {
	if now == nil {
		now = time.Now
	}
	return &Collector{now: now, dsns: map[string]*dsnState{}, units: map[string]UnitStatus{}, usage: map[string]*UnitUsage{},
		subs: map[int]chan Record{}, changed: make(chan struct{})}
}

// Expect registers DSNs (id -> unit) before they report, in state off.
func (c *Collector) Expect(units map[string]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, u := range units {
		if _, ok := c.dsns[id]; !ok {
			c.dsns[id] = &dsnState{rep: DSNReport{ID: id, Unit: u, State: stage.Off.String()}}
		}
	}
}

// Writer returns an io.Writer that takes complete JSON lines (one or more per Write), as an
// Encoder writes them.
func (c *Collector) Writer() *LineWriter { return &LineWriter{c: c} }

// LineWriter feeds lines to a Collector.
type LineWriter struct{ c *Collector }

// Write decodes each line of p. Lines that do not decode are counted as rejected.
func (w *LineWriter) Write(p []byte) (int, error) {
	for line := range bytes.SplitSeq(p, []byte{'\n'}) {
		if len(line) == 0 {
			continue
		}
		r, err := Decode(line)
		if err != nil {
			w.c.mu.Lock()
			w.c.rejected++
			w.c.mu.Unlock()
			continue
		}
		w.c.Add(r)
	}
	return len(p), nil
}

// Add takes in one decoded record.
func (c *Collector) Add(r Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.records++
	at := time.Unix(0, r.At)
	switch r.Type {
	case TypeUnit:
		c.units[r.Unit] = UnitStatus{Status: r.State, Since: at, Detail: r.Detail}
	case TypeUsage:
		u := c.usage[r.Unit]
		if u == nil {
			u = &UnitUsage{}
			c.usage[r.Unit] = u
		}
		if r.CPU < u.cpuLast { // a new process
			u.cpuBase += u.cpuLast
		}
		u.cpuLast = r.CPU
		u.Host, u.CPUSeconds, u.RSSBytes, u.PeakRSSBytes, u.At = r.Host, u.cpuBase+r.CPU, r.RSS, max(u.PeakRSSBytes, r.RSS), at
	default:
		d := c.dsns[r.DSN]
		if d == nil {
			d = &dsnState{rep: DSNReport{ID: r.DSN, State: stage.Off.String()}}
			c.dsns[r.DSN] = d
		}
		if r.Unit != "" {
			d.rep.Unit = r.Unit
		}
		c.apply(d, r, at)
	}
	for _, ch := range c.subs {
		select {
		case ch <- r:
		default:
		}
	}
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *Collector) apply(d *dsnState, r Record, at time.Time) {
	rep := &d.rep
	switch r.Type {
	case TypeState:
		if r.State != rep.State || r.Stage != rep.Stage {
			rep.Transitions = appendBounded(rep.Transitions, Transition{At: at, From: rep.State, To: r.State, Stage: r.Stage}, &rep.Dropped)
		}
		rep.State, rep.Stage, rep.StateSince = r.State, r.Stage, at
	case TypeApplied:
		rep.AppliedRevision, rep.AppliedAt = r.Revision, at
		rep.Applied = appendBounded(rep.Applied, RevisionAt{Revision: r.Revision, At: at, Detail: r.Detail}, &rep.Dropped)
	case TypeWatch:
		switch r.Watch {
		case WatchGap:
			rep.Watch.Gaps++
		case WatchDuplicate:
			rep.Watch.Duplicates++
		case WatchOvertaken:
			rep.Watch.Overtaken++
		case WatchRegression:
			rep.Watch.Regressions++
		}
		rep.Watch.Events = appendBounded(rep.Watch.Events, WatchEvent{At: at, Kind: r.Watch, Revision: r.Revision, Applied: r.Prev}, &rep.Dropped)
	case TypeAckDropped:
		rep.AcksDropped++
	case TypeAdmission:
		rep.Admission = AdmissionProblem{At: at, Reason: r.Detail}
	case TypeFault:
		if rep.Faults == nil {
			rep.Faults = map[string]int{}
		}
		if r.State == "start" {
			rep.Faults[r.Detail]++
		}
	}
	// Served with no config: forwarding traffic while nothing is applied.
	st, _ := stage.ParseState(rep.State)
	noConfig := st.DataPlane() && rep.AppliedRevision == 0
	switch {
	case noConfig && d.noConfigFrom.IsZero():
		d.noConfigFrom = at
	case !noConfig && !d.noConfigFrom.IsZero():
		if at.After(d.noConfigFrom) {
			rep.NoConfigServing += at.Sub(d.noConfigFrom)
		}
		d.noConfigFrom = time.Time{}
	}
}

func appendBounded[T any](s []T, v T, dropped *int) []T {
	if len(s) >= MaxHistory {
		copy(s, s[1:])
		s = s[:len(s)-1]
		*dropped++
	}
	return append(s, v)
}

func (c *Collector) report(d *dsnState, now time.Time) DSNReport {
	rep := d.rep
	rep.Transitions = append([]Transition(nil), rep.Transitions...)
	rep.Applied = append([]RevisionAt(nil), rep.Applied...)
	rep.Watch.Events = append([]WatchEvent(nil), rep.Watch.Events...)
	if rep.Faults != nil {
		f := make(map[string]int, len(rep.Faults))
		for k, v := range rep.Faults {
			f[k] = v
		}
		rep.Faults = f
	}
	if !d.noConfigFrom.IsZero() && now.After(d.noConfigFrom) {
		rep.NoConfigServing += now.Sub(d.noConfigFrom)
	}
	return rep
}

// DSN returns the report of one DSN.
func (c *Collector) DSN(id string) (DSNReport, bool) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.dsns[id]
	if !ok {
		return DSNReport{}, false
	}
	return c.report(d, now), true
}

// Reports returns every DSN's report, sorted by id.
func (c *Collector) Reports() []DSNReport {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]DSNReport, 0, len(c.dsns))
	for _, d := range c.dsns {
		out = append(out, c.report(d, now))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Usage returns what each unit last reported of its resource use.
func (c *Collector) Usage() map[string]UnitUsage {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]UnitUsage, len(c.usage))
	for k, v := range c.usage {
		out[k] = *v
	}
	return out
}

// Units returns the last status of every unit that reported one.
func (c *Collector) Units() map[string]UnitStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]UnitStatus, len(c.units))
	for k, v := range c.units {
		out[k] = v
	}
	return out
}

// Summary counts DSNs by state and applied revision.
func (c *Collector) Summary() Summary {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Summary{Total: len(c.dsns), ByState: map[string]int{}, ByRevision: map[uint64]int{}, Records: c.records, Rejected: c.rejected}
	for _, d := range c.dsns {
		s.ByState[d.rep.State]++
		s.ByRevision[d.rep.AppliedRevision]++
	}
	return s
}

// Select returns the ids of DSNs for which keep is true, sorted.
func (c *Collector) Select(keep func(DSNReport) bool) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for id, d := range c.dsns {
		if keep(d.rep) {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// WaitFor blocks until cond holds for the summary or ctx ends (then it returns ctx's error).
func (c *Collector) WaitFor(ctx context.Context, cond func(Summary) bool) error {
	for {
		c.mu.Lock()
		ch := c.changed
		c.mu.Unlock()
		if cond(c.Summary()) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// Subscribe returns a channel that receives every record taken in from now on; when the
// channel's buffer is full, records are dropped for it. cancel ends the subscription.
func (c *Collector) Subscribe(buffer int) (records <-chan Record, cancel func()) {
	ch := make(chan Record, buffer)
	c.mu.Lock()
	id := c.nextSub
	c.nextSub++
	c.subs[id] = ch
	c.mu.Unlock()
	return ch, func() {
		c.mu.Lock()
		delete(c.subs, id)
		c.mu.Unlock()
	}
}
