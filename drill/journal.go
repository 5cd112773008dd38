package drill

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// JournalFile is the journal's name, beside run.json.
const JournalFile = "drill.json"

// Journal is what a drill decided and when, and who ran it.
type Journal struct {
	Drill  string  `json:"drill"`
	File   string  `json:"file"`
	Target string  `json:"target"`
	By     string  `json:"by"`
	Host   string  `json:"host,omitempty"`
	Limits *Limits `json:"limits"`
	// AbortWhen are the drill's abort conditions.
	AbortWhen []Condition `json:"abortWhen,omitempty"`
	// Entries are in the order they happened.
	Entries []Entry `json:"entries"`

	now func() time.Time
	mu  sync.Mutex
}

// Entry is one decision or event.
type Entry struct {
	At     time.Time `json:"at"`
	What   string    `json:"what"`
	Detail string    `json:"detail,omitempty"`
}

// Entries of a journal.
const (
	EntryPlanned   = "planned"
	EntryPreflight = "preflight"
	EntryConfirmed = "confirmed"
	EntryBaseline  = "baseline"
	EntryStarted   = "started"
	// EntryBreach is an abort condition first seen beyond its threshold; EntryAborted the one
	// that held for its time and ended the drill.
	EntryBreach  = "abort-condition-seen"
	EntryAborted = "aborted"
	EntryEnded   = "ended"
	// EntryFaultFailed is a fault that could not be injected or recovered, with why.
	EntryFaultFailed = "fault-failed"
	// EntryRecovered says the faults the run injected were recovered; EntryRestored that the
	// target is back to its baseline, EntryNotRestored what is left.
	EntryRecovered   = "recovered"
	EntryRestored    = "restored"
	EntryNotRestored = "not-restored"
)

// NewJournal starts the journal of drill f against target, run by by; now is its clock.
func NewJournal(f *File, file, target, by string, now func() time.Time) *Journal {
	host, _ := os.Hostname()
	return &Journal{Drill: f.Metadata.Name, File: file, Target: target, By: by, Host: host, Limits: f.Limits, AbortWhen: f.AbortWhen, now: now}
}

// Add records an entry now.
func (j *Journal) Add(what, detail string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.Entries = append(j.Entries, Entry{At: j.now().UTC(), What: what, Detail: detail})
}

// Write writes the journal into dir as JournalFile.
func (j *Journal) Write(dir string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, JournalFile), append(b, '\n'), 0o644)
}
