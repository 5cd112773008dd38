// Package drill holds drills: a scenario run against a control plane someone else runs, with
// guard rails declared in the drill's file and checked before anything starts (how many DSNs
// any fault may hit at once, the longest fault, the fault kinds allowed), a plan shown and
// confirmed first, and a journal of what was decided and when.
package drill

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/dsnscale/dsnscale/internal/strictyaml"
	"github.com/dsnscale/dsnscale/scenarios"
)

// Kind is the kind of a drill file.
const Kind = "Drill"

// ErrInvalid is matched by every problem with a drill file.
var ErrInvalid = errors.New("drill: invalid")

// ErrBlastRadius is matched when a scenario's faults exceed the drill's limits.
var ErrBlastRadius = errors.New("drill: beyond the blast radius")

// File is a drill file.
type File struct {
	APIVersion string             `yaml:"apiVersion"`
	Kind       string             `yaml:"kind"`
	Metadata   scenarios.Metadata `yaml:"metadata"`
	// Scenario is a library scenario's name or a scenario file relative to the drill.
	Scenario string `yaml:"scenario"`
	// Set are the scenario's parameters (as --set would give them).
	Set map[string]string `yaml:"set"`
	// Limits are the guard rails; they are required.
	Limits *Limits `yaml:"limits"`
	// AbortWhen are the conditions that end the drill while it runs (any one suffices).
	AbortWhen []Condition `yaml:"abortWhen"`
	// RestoreTimeout is how long the restore check waits for the target to be back to its
	// pre-drill convergence (default DefaultRestoreTimeout).
	RestoreTimeout time.Duration `yaml:"restoreTimeout"`

	// Dir is the drill file's directory ("" for a library drill).
	Dir string `yaml:"-"`
}

// Limits bound what a drill's faults may do.
type Limits struct {
	// MaxDSNs is the most DSNs one fault may act on.
	MaxDSNs int `yaml:"maxDSNs" json:"maxDSNs"`
	// MaxShare is the largest share of the fleet one fault may act on (0-1).
	MaxShare scenarios.Share `yaml:"maxShare" json:"maxShare"`
	// MaxFaultDuration is the longest a fault may last (a fault that lasts its step lasts the
	// step's duration, or its timeout when it waits).
	MaxFaultDuration time.Duration `yaml:"maxFaultDuration" json:"maxFaultDurationNs"`
	// AllowKinds are the fault kinds the drill may inject; every other kind is refused.
	AllowKinds []string `yaml:"allowKinds" json:"allowKinds"`
}

//go:embed library/*.yaml
var library embed.FS

// libraryPrefix names a library drill in errors.
const libraryPrefix = "library:"

// Library lists the names of the embedded drills.
func Library() []string {
	names, _ := fs.Glob(library, "library/*.yaml")
	for i, n := range names {
		names[i] = strings.TrimSuffix(path.Base(n), ".yaml")
	}
	sort.Strings(names)
	return names
}

// Load reads and checks a drill file, or the library drill of that name when no such file
// exists. A library drill's scenario is a library scenario.
func Load(nameOrPath string) (*File, error) {
	if !fileExists(nameOrPath) && !strings.ContainsAny(nameOrPath, "/.") {
		data, err := library.ReadFile("library/" + nameOrPath + ".yaml")
		if err != nil {
			return nil, fmt.Errorf("%w: %q is neither a library drill (%s) nor a file", ErrInvalid, nameOrPath, strings.Join(Library(), ", "))
		}
		return parse(libraryPrefix+nameOrPath, data, "")
	}
	data, err := strictyaml.ReadFile(nameOrPath)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	abs, err := filepath.Abs(filepath.Dir(nameOrPath))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return parse(nameOrPath, data, abs)
}

// parse decodes and checks a drill from data; source names it in errors and dir is where its
// scenario file is looked for ("" for a library drill).
func parse(source string, data []byte, dir string) (*File, error) {
	var f File
	d := &strictyaml.Decoder{File: source, Sentinel: ErrInvalid}
	if err := d.DecodeData(data, &f); err != nil {
		return nil, err
	}
	d.CheckHeader(strictyaml.Header{APIVersion: f.APIVersion, Kind: f.Kind}, Kind)
	if f.Metadata.Name == "" {
		d.ErrorAt("metadata.name", "is required")
	}
	if f.Scenario == "" {
		d.ErrorAt("scenario", "is required: a library scenario's name or a scenario file")
	}
	if l := f.Limits; l == nil {
		d.ErrorAt("limits", "are required: maxDSNs, maxShare, maxFaultDuration and allowKinds (a drill without a blast radius is refused)")
	} else {
		if l.MaxDSNs <= 0 {
			d.ErrorAt("limits.maxDSNs", "must be at least 1, got %d", l.MaxDSNs)
		}
		if l.MaxShare <= 0 || l.MaxShare > 1 {
			d.ErrorAt("limits.maxShare", "must be in (0%%, 100%%], got %v", float64(l.MaxShare))
		}
		if l.MaxFaultDuration <= 0 {
			d.ErrorAt("limits.maxFaultDuration", "must be positive, got %s", l.MaxFaultDuration)
		}
		if len(l.AllowKinds) == 0 {
			d.ErrorAt("limits.allowKinds", "must name at least one fault kind")
		}
	}
	for i, c := range f.AbortWhen {
		c.validate(d, fmt.Sprintf("abortWhen[%d]", i))
	}
	if f.RestoreTimeout < 0 {
		d.ErrorAt("restoreTimeout", "must not be negative, got %s", f.RestoreTimeout)
	} else if f.RestoreTimeout == 0 {
		f.RestoreTimeout = DefaultRestoreTimeout
	}
	if err := d.Err(); err != nil {
		return nil, err
	}
	f.Dir = dir
	return &f, nil
}

// LoadScenario loads the drill's scenario with its parameters: a file relative to the drill
// when there is one, else a library scenario.
func (f *File) LoadScenario() (*scenarios.Scenario, error) {
	name := f.Scenario
	if p := filepath.Join(f.Dir, name); f.Dir != "" && !filepath.IsAbs(name) && fileExists(p) {
		name = p
	}
	return scenarios.Load(name, f.Set)
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// CheckLimits says every way the scenario's faults go beyond the limits, or nil. (Faults the
// target cannot take, such as a control-plane fault without its hooks, are refused when the
// scenario is pointed at the target: scenarios.UseTarget.)
func (l *Limits) CheckLimits(s *scenarios.Scenario) error {
	var errs []string
	size := s.Fleet.Size
	for _, st := range s.Steps {
		for j, fs := range st.Faults {
			at := fmt.Sprintf("steps[%s].faults[%d] %s", st.Name, j, fs.Kind)
			if !slices.Contains(l.AllowKinds, fs.Kind) {
				errs = append(errs, fmt.Sprintf("%s: kind %s is not allowed (allowKinds: %s)", at, fs.Kind, strings.Join(l.AllowKinds, ", ")))
			}
			n, how := Hits(fs.Target, size)
			if n > l.MaxDSNs {
				errs = append(errs, fmt.Sprintf("%s: acts on %d DSNs (%s), more than maxDSNs %d", at, n, how, l.MaxDSNs))
			}
			if size > 0 && float64(n)/float64(size) > float64(l.MaxShare)+1e-9 {
				errs = append(errs, fmt.Sprintf("%s: acts on %.1f%% of the fleet (%s), more than maxShare %.1f%%", at, 100*float64(n)/float64(size), how, 100*float64(l.MaxShare)))
			}
			if d := FaultDuration(st, fs); d > l.MaxFaultDuration {
				errs = append(errs, fmt.Sprintf("%s: lasts up to %s, longer than maxFaultDuration %s", at, d, l.MaxFaultDuration))
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	sort.Strings(errs)
	return fmt.Errorf("%w:\n  %s", ErrBlastRadius, strings.Join(errs, "\n  "))
}

// Hits is how many DSNs of a fleet of size a fault's target may act on, and how that was
// counted. A target by labels may select the whole fleet: the harness does not guess which
// DSNs carry them before the fleet exists.
func Hits(t scenarios.TargetSpec, size int) (int, string) {
	switch {
	case t.Count > 0:
		return min(t.Count, size), "count"
	case len(t.DSNs) > 0:
		return len(t.DSNs), "listed DSNs"
	case t.Fraction > 0:
		return int(math.Ceil(float64(t.Fraction) * float64(size))), fmt.Sprintf("fraction %g%%", 100*float64(t.Fraction))
	case len(t.Labels) > 0:
		return size, "labels: counted as the whole fleet"
	}
	return size, "no target: the whole fleet"
}

// FaultDuration is the longest a fault of step st may last: its duration, or until the step
// ends (its duration, or its timeout when it waits) less its delay.
func FaultDuration(st scenarios.Step, fs scenarios.FaultSpec) time.Duration {
	if fs.Duration > 0 {
		return fs.Duration
	}
	return st.Length() - fs.Delay
}
