package measure

import (
	"sort"
	"sync"
	"time"
)

// Sources of a revision's commit time.
const (
	// SourceWrite: the harness made the change and At is when the API answered it.
	SourceWrite = "write"
	// SourcePoll: the harness saw the revision by polling the API; At is when it was first
	// seen, at most one poll interval after the commit.
	SourcePoll = "poll"
)

// Mark is a revision and when it was known to be committed.
type Mark struct {
	Revision    uint64
	At          time.Time
	Source      string
	Description string
}

// Revisions records the control plane's revisions as the harness learnt of them. It is safe for
// concurrent use.
type Revisions struct {
	mu    sync.RWMutex
	marks []Mark // by revision
}

// Add records a revision. The earliest time wins for a revision seen twice, and a write's
// description is kept over a poll's.
func (r *Revisions) Add(m Mark) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := sort.Search(len(r.marks), func(i int) bool { return r.marks[i].Revision >= m.Revision })
	if i < len(r.marks) && r.marks[i].Revision == m.Revision {
		old := &r.marks[i]
		if m.At.Before(old.At) {
			old.At = m.At
		}
		if m.Source == SourceWrite {
			old.Source, old.Description = m.Source, m.Description
		}
		return
	}
	r.marks = append(r.marks, Mark{})
	copy(r.marks[i+1:], r.marks[i:])
	r.marks[i] = m
}

// Latest returns the highest revision recorded (0 if none).
func (r *Revisions) Latest() uint64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if len(r.marks) == 0 {
		return 0
	}
	return r.marks[len(r.marks)-1].Revision
}

// At returns the highest revision known to be committed at time t (0 if none).
func (r *Revisions) At(t time.Time) uint64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var best uint64
	for _, m := range r.marks {
		if !m.At.After(t) && m.Revision > best {
			best = m.Revision
		}
	}
	return best
}

// Between returns the marks committed in [start, end), by revision.
func (r *Revisions) Between(start, end time.Time) []Mark {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []Mark
	for _, m := range r.marks {
		if !m.At.Before(start) && m.At.Before(end) {
			out = append(out, m)
		}
	}
	return out
}

// All returns every mark, by revision.
func (r *Revisions) All() []Mark {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return append([]Mark(nil), r.marks...)
}

// timesByRevision is a step function from time to the current revision, built once for the many
// lookups of a measurement.
type timesByRevision struct {
	at  []time.Time
	rev []uint64
}

func newTimesByRevision(marks []Mark) timesByRevision {
	ms := append([]Mark(nil), marks...)
	sort.Slice(ms, func(i, j int) bool { return ms[i].At.Before(ms[j].At) })
	var tr timesByRevision
	var best uint64
	for _, m := range ms {
		if m.Revision > best {
			best = m.Revision
			tr.at = append(tr.at, m.At)
			tr.rev = append(tr.rev, best)
		}
	}
	return tr
}

// current returns the highest revision committed at or before t.
func (tr timesByRevision) current(t time.Time) uint64 {
	i := sort.Search(len(tr.at), func(i int) bool { return tr.at[i].After(t) })
	if i == 0 {
		return 0
	}
	return tr.rev[i-1]
}
