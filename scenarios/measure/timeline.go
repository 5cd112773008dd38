package measure

import (
	"sort"
	"sync"
	"time"
)

// Status is what a DSN last reported.
type Status struct {
	State string
	// DataPlane says the DSN forwards traffic (with whatever config it has).
	DataPlane bool
	// Session says the DSN is admitted by the control plane and talking to it.
	Session bool
	// Revision is the revision of the config the DSN has applied (0: none).
	Revision uint64
	// Since is when State was entered.
	Since time.Time
}

// StateChange is one state transition of a DSN, with the revision it had then.
type StateChange struct {
	At        time.Time
	State     string
	DataPlane bool
	Session   bool
	Revision  uint64
}

// Apply is a DSN having applied a revision.
type Apply struct {
	At       time.Time
	Revision uint64
}

// Watch problems a DSN can report about the stream of changes it received.
const (
	WatchGap        = "gap"        // a change arrived that did not follow the applied revision
	WatchDuplicate  = "duplicate"  // a change of this session at or below the applied revision arrived again
	WatchOvertaken  = "overtaken"  // a change decided before the DSN's admission arrived after it: a leftover, not a fault
	WatchRegression = "regression" // the applied revision went back
)

// WatchIssue is one problem with the stream of changes a DSN received.
type WatchIssue struct {
	At       time.Time
	Kind     string
	Revision uint64 // what arrived
	Previous uint64 // what the DSN had
}

type track struct {
	cur         Status
	changes     []StateChange
	applies     []Apply
	issues      []WatchIssue
	acksDropped int
}

// Timeline records what every DSN reported over a run. It is safe for concurrent use; events
// of one DSN must be added in time order.
type Timeline struct {
	mu     sync.RWMutex
	tracks map[string]*track
	// acksCounted says the fleet reports the acks its DSNs dropped.
	acksCounted bool
	// truncated counts, by DSN, the history entries the fleet kept no more of; rejected the
	// reports it could not read.
	truncated map[string]int
	rejected  int64
}

// HistoryTruncated records that the fleet dropped the n oldest entries of a DSN's history:
// measurements see only the rest.
func (t *Timeline) HistoryTruncated(id string, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.truncated == nil {
		t.truncated = map[string]int{}
	}
	t.truncated[id] += n
}

// RecordsRejected records that the fleet could not read n of its DSNs' reports.
func (t *Timeline) RecordsRejected(n int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rejected += n
}

// Losses says what the timeline misses: the DSNs whose history was truncated, with the entries
// dropped, and the reports the fleet could not read.
func (t *Timeline) Losses() (truncated map[string]int, rejected int64) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make(map[string]int, len(t.truncated))
	for k, v := range t.truncated {
		out[k] = v
	}
	return out, t.rejected
}

// NewTimeline returns an empty timeline for the given DSNs (others are added as they report).
func NewTimeline(dsns []string) *Timeline {
	t := &Timeline{tracks: make(map[string]*track, len(dsns))}
	for _, id := range dsns {
		t.tracks[id] = &track{cur: Status{State: "unknown"}}
	}
	return t
}

func (t *Timeline) track(id string) *track {
	tr, ok := t.tracks[id]
	if !ok {
		tr = &track{cur: Status{State: "unknown"}}
		t.tracks[id] = tr
	}
	return tr
}

// State records a state transition.
func (t *Timeline) State(id string, at time.Time, state string, dataPlane, session bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tr := t.track(id)
	tr.cur.State, tr.cur.DataPlane, tr.cur.Session, tr.cur.Since = state, dataPlane, session, at
	tr.changes = append(tr.changes, StateChange{At: at, State: state, DataPlane: dataPlane, Session: session, Revision: tr.cur.Revision})
}

// Applied records that a DSN applied rev (loaded from its cache, or received).
func (t *Timeline) Applied(id string, at time.Time, rev uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tr := t.track(id)
	tr.cur.Revision = rev
	tr.applies = append(tr.applies, Apply{At: at, Revision: rev})
}

// Watch records a watch problem.
func (t *Timeline) Watch(id string, issue WatchIssue) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tr := t.track(id)
	tr.issues = append(tr.issues, issue)
}

// AcksDropped records that a DSN dropped n acks it should have sent (a misbehaviour), and
// that the fleet counts them.
func (t *Timeline) AcksDropped(id string, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.acksCounted = true
	t.track(id).acksDropped += n
}

// CountsAcks says whether the fleet reported the acks its DSNs dropped.
func (t *Timeline) CountsAcks() bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.acksCounted
}

// DroppedAcks returns how many acks a DSN dropped over the run.
func (t *Timeline) DroppedAcks(id string) int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if tr, ok := t.tracks[id]; ok {
		return tr.acksDropped
	}
	return 0
}

// DSNs lists the DSNs seen, sorted.
func (t *Timeline) DSNs() []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]string, 0, len(t.tracks))
	for id := range t.tracks {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// Current returns a DSN's last status.
func (t *Timeline) Current(id string) Status {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if tr, ok := t.tracks[id]; ok {
		return tr.cur
	}
	return Status{State: "unknown"}
}

// Counts is a census of the fleet at one moment.
type Counts struct {
	Total int
	// States counts DSNs by state name.
	States map[string]int
	// DataPlane counts DSNs forwarding traffic; Session those admitted.
	DataPlane, Session int
	// AtOrPast counts DSNs in session whose applied revision is at or past the revision asked.
	AtOrPast int
}

// Census counts the DSNs now, with AtOrPast taken against rev.
func (t *Timeline) Census(rev uint64) Counts {
	t.mu.RLock()
	defer t.mu.RUnlock()
	c := Counts{Total: len(t.tracks), States: map[string]int{}}
	for _, tr := range t.tracks {
		c.States[tr.cur.State]++
		if tr.cur.DataPlane {
			c.DataPlane++
		}
		if tr.cur.Session {
			c.Session++
			if tr.cur.Revision >= rev {
				c.AtOrPast++
			}
		}
	}
	return c
}

// History returns copies of a DSN's recorded state changes, applies and watch issues.
func (t *Timeline) History(id string) ([]StateChange, []Apply, []WatchIssue) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	tr, ok := t.tracks[id]
	if !ok {
		return nil, nil, nil
	}
	return append([]StateChange(nil), tr.changes...), append([]Apply(nil), tr.applies...), append([]WatchIssue(nil), tr.issues...)
}

// StatusAt returns a DSN's status as of time at (its last state change and apply at or before
// at).
func StatusAt(changes []StateChange, applies []Apply, at time.Time) Status {
	var s Status
	s.State = "unknown"
	i := sort.Search(len(changes), func(i int) bool { return changes[i].At.After(at) })
	if i > 0 {
		c := changes[i-1]
		s.State, s.DataPlane, s.Session, s.Since = c.State, c.DataPlane, c.Session, c.At
	}
	j := sort.Search(len(applies), func(j int) bool { return applies[j].At.After(at) })
	if j > 0 {
		s.Revision = applies[j-1].Revision
	}
	return s
}

// FirstAtOrPast returns when applies first reached rev at or after from, and whether it did.
// A DSN that already had rev or later at from reached it at from.
func FirstAtOrPast(applies []Apply, rev uint64, from time.Time) (time.Time, bool) {
	i := sort.Search(len(applies), func(i int) bool { return applies[i].At.After(from) })
	if i > 0 && applies[i-1].Revision >= rev {
		return from, true
	}
	for ; i < len(applies); i++ {
		if applies[i].Revision >= rev {
			return applies[i].At, true
		}
	}
	return time.Time{}, false
}
