package reports

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"
)

// GroupFile is the record of a group of repeated runs, in the group's directory.
const GroupFile = "group.json"

// GroupSchemaVersion is the version of the group.json schema.
const GroupSchemaVersion = 1

// GroupStatus says whether every run of a group was made.
type GroupStatus string

// The statuses of a group.
const (
	// GroupRunning: runs are still to come, or the process making them died.
	GroupRunning GroupStatus = "running"
	// GroupComplete: every run asked for was made (some may have broken).
	GroupComplete GroupStatus = "complete"
	// GroupInterrupted: the runs were stopped (Ctrl-C) before all were made.
	GroupInterrupted GroupStatus = "interrupted"
)

// Group is the record of `dsnscale run NAME --repeat N`: N runs of one scenario with the same
// parameters, each in a directory of its own under the group's. It is rewritten after every
// run, so that it lists every finished run whatever happens to the process afterwards.
type Group struct {
	SchemaVersion int               `json:"schemaVersion"`
	ID            string            `json:"id"`
	Scenario      string            `json:"scenario"`
	Params        map[string]string `json:"params,omitempty"`
	// Repeat is how many runs were asked for.
	Repeat int         `json:"repeat"`
	Status GroupStatus `json:"status"`
	Start  time.Time   `json:"start"`
	End    time.Time   `json:"end,omitzero"`
	Runs   []GroupRun  `json:"runs"`
}

// GroupRun is one run of a group.
type GroupRun struct {
	// Dir is the run's directory, relative to the group's.
	Dir    string `json:"dir"`
	ID     string `json:"id,omitempty"`
	Result Result `json:"result,omitempty"`
	// Broken is true when the run broke or was aborted: its record, if any, covers only part of
	// the scenario. Comparisons leave broken runs out of every figure and count them in the
	// correctness figure run.broken.
	Broken bool `json:"broken,omitempty"`
	// Error says why the run broke.
	Error string `json:"error,omitempty"`
}

// Validate checks the group record: schema, status, and run directories that stay inside the
// group's directory.
func (g *Group) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, &FieldError{Path: path, Problem: fmt.Sprintf(format, args...)})
	}
	if g.SchemaVersion != GroupSchemaVersion {
		bad("schemaVersion", "%d is not supported (this build reads %d)", g.SchemaVersion, GroupSchemaVersion)
	}
	if g.Scenario == "" {
		bad("scenario", "missing")
	}
	if g.Repeat < 1 {
		bad("repeat", "%d: want at least 1", g.Repeat)
	}
	switch g.Status {
	case GroupRunning, GroupComplete, GroupInterrupted:
	default:
		bad("status", "%q: want %s, %s or %s", g.Status, GroupRunning, GroupComplete, GroupInterrupted)
	}
	if len(g.Runs) > g.Repeat {
		bad("runs", "%d runs in a group of %d", len(g.Runs), g.Repeat)
	}
	seen := map[string]bool{}
	for i, r := range g.Runs {
		p := fmt.Sprintf("runs[%d].dir", i)
		clean := filepath.Clean(r.Dir)
		switch {
		case r.Dir == "":
			bad(p, "missing")
		case filepath.IsAbs(r.Dir) || clean == "." || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)):
			bad(p, "%q: want a directory inside the group's", r.Dir)
		case seen[clean]:
			bad(p, "%q: listed twice", r.Dir)
		}
		seen[clean] = true
		if !r.Broken && r.Result != ResultPass && r.Result != ResultFail {
			bad(fmt.Sprintf("runs[%d].result", i), "%q for a run that did not break: want pass or fail", r.Result)
		}
	}
	return errors.Join(errs...)
}

// WriteGroup writes dir/group.json atomically.
func WriteGroup(dir string, g *Group) error {
	if err := g.Validate(); err != nil {
		return fmt.Errorf("reports: %s: %w", GroupFile, err)
	}
	data, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		return fmt.Errorf("reports: encode %s: %w", GroupFile, err)
	}
	return writeAtomic(filepath.Join(dir, GroupFile), append(data, '\n'))
}

// LoadGroup reads and validates dir/group.json. Unknown fields are rejected.
func LoadGroup(dir string) (*Group, error) {
	path := filepath.Join(dir, GroupFile)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reports: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxRunBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reports: read %s: %w", path, err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var g Group
	if err := dec.Decode(&g); err != nil {
		if p, off, problem, ok := locateProblem(data, reflect.TypeOf(g)); ok {
			return nil, fmt.Errorf("%w: %s:%s: %s: %s", ErrInvalid, path, lineCol(data, off), p, problem)
		}
		return nil, decodeError(path, data, err)
	}
	if err := g.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &g, nil
}

// SetKind says what a path given to a comparison held.
type SetKind string

// The kinds of run set.
const (
	SetRun       SetKind = "run"       // one run directory or run.json file
	SetGroup     SetKind = "group"     // a group of repeated runs (group.json)
	SetDirectory SetKind = "directory" // a directory of run directories and groups
)

// RunSet is one side of a comparison: the runs found at a path.
type RunSet struct {
	// Source is the path as given.
	Source string  `json:"source"`
	Kind   SetKind `json:"kind"`
	// Runs are the runs that ran to the end (whether their SLOs passed or not), in order.
	Runs []*Run `json:"-"`
	// Broken are the runs that broke or were aborted.
	Broken []BrokenRun `json:"broken,omitempty"`
	// Notes say what else was found: incomplete groups, directories without a run.
	Notes []string `json:"notes,omitempty"`
}

// BrokenRun is a run that broke or was aborted.
type BrokenRun struct {
	// Dir is where the run was.
	Dir   string `json:"dir"`
	ID    string `json:"id,omitempty"`
	Error string `json:"error"`
	// Run is its record, when it has one.
	Run *Run `json:"-"`
}

// Size is how many runs the set has, broken ones included.
func (s *RunSet) Size() int { return len(s.Runs) + len(s.Broken) }

// LoadSet loads the runs at path: a run directory or run.json file (one run), a group
// directory (the runs its group.json lists), or a directory of run directories and groups
// (every one of them, in name order). A run whose record says it was aborted, or that a group
// lists as broken, goes to Broken.
func LoadSet(path string) (*RunSet, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("reports: %w", err)
	}
	s := &RunSet{Source: path}
	switch {
	case !fi.IsDir():
		s.Kind = SetRun
		r, err := LoadFile(path)
		if err != nil {
			return nil, err
		}
		s.add(filepath.Dir(path), r)
	case exists(filepath.Join(path, RunFile)):
		s.Kind = SetRun
		if err := s.addRun(path); err != nil {
			return nil, err
		}
	case exists(filepath.Join(path, GroupFile)):
		s.Kind = SetGroup
		if err := s.addGroup(path); err != nil {
			return nil, err
		}
	default:
		s.Kind = SetDirectory
		if err := s.addDirectory(path); err != nil {
			return nil, err
		}
	}
	if s.Size() == 0 {
		return nil, fmt.Errorf("%w: %s: no runs in it", ErrInvalid, path)
	}
	return s, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func (s *RunSet) add(dir string, r *Run) {
	if r.Result == ResultAborted {
		s.Broken = append(s.Broken, BrokenRun{Dir: dir, ID: r.ID, Error: r.Error, Run: r})
		return
	}
	s.Runs = append(s.Runs, r)
}

func (s *RunSet) addRun(dir string) error {
	r, err := Load(dir)
	if err != nil {
		return err
	}
	s.add(dir, r)
	return nil
}

func (s *RunSet) addGroup(dir string) error {
	g, err := LoadGroup(dir)
	if err != nil {
		return err
	}
	if g.Status != GroupComplete {
		s.Notes = append(s.Notes, fmt.Sprintf("group %s is %s: %d of %d runs made", dir, g.Status, len(g.Runs), g.Repeat))
	}
	for _, gr := range g.Runs {
		rdir := filepath.Join(dir, gr.Dir)
		if gr.Broken {
			b := BrokenRun{Dir: rdir, ID: gr.ID, Error: gr.Error}
			// A broken run may still have left a record; it says how far it got.
			if r, err := Load(rdir); err == nil {
				b.Run = r
			}
			s.Broken = append(s.Broken, b)
			continue
		}
		if err := s.addRun(rdir); err != nil {
			return fmt.Errorf("group %s: %w", dir, err)
		}
	}
	return nil
}

func (s *RunSet) addDirectory(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("reports: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		sub := filepath.Join(dir, e.Name())
		switch {
		case exists(filepath.Join(sub, RunFile)):
			if err := s.addRun(sub); err != nil {
				return err
			}
		case exists(filepath.Join(sub, GroupFile)):
			if err := s.addGroup(sub); err != nil {
				return err
			}
		default:
			s.Notes = append(s.Notes, fmt.Sprintf("%s holds no %s or %s: skipped", sub, RunFile, GroupFile))
		}
	}
	return nil
}
