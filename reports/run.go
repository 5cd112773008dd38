// Package reports holds the record of a scenario run and everything that turns it into files:
// run.json (the record itself), report.html (self-contained, charts as inline SVG),
// summary.md (for a CI comment) and junit.xml; groups of repeated runs (group.json); and the
// comparison of base runs with head runs that gates CI (summary.md, junit.xml, compare.html,
// compare.json), which judges each figure by the kind and direction the Catalogue gives it.
//
// The scenario engine fills a Run and calls Write; `dsnscale report DIR` calls Render to redo
// the derived files from run.json; `dsnscale compare BASE HEAD` calls LoadSet, Compare and
// WriteComparison. Every rendering is deterministic: the same Run gives the same bytes.
package reports

import (
	"os"
	"runtime"
	"runtime/debug"
	"time"
)

// SchemaVersion is the version of the run.json schema this package writes and reads. It changes
// when a field changes meaning or a reader could misread a newer file.
const SchemaVersion = 1

// Result is the outcome of a run.
type Result string

// The results a run can have.
const (
	ResultPass    Result = "pass"    // every SLO passed
	ResultFail    Result = "fail"    // an SLO (or a step's check) failed
	ResultAborted Result = "aborted" // the run did not complete: it broke or was interrupted
)

// Units the well-known series use, and that the renderers understand for any value or series.
const (
	UnitMillis    = "ms"
	UnitSeconds   = "s"
	UnitBytes     = "bytes"
	UnitPercent   = "%"
	UnitPerSecond = "1/s"
)

// Run is the whole record of one scenario run, as stored in runs/<id>/run.json.
//
// Times are absolute (RFC 3339 in JSON), except series points, which are offsets in
// milliseconds from Start to keep long series compact.
type Run struct {
	// SchemaVersion must be SchemaVersion.
	SchemaVersion int               `json:"schemaVersion"`
	ID            string            `json:"id"`
	Scenario      Scenario          `json:"scenario"`
	Params        map[string]string `json:"params,omitempty"`
	Environment   Environment       `json:"environment"`
	Start         time.Time         `json:"start"`
	End           time.Time         `json:"end"`
	Result        Result            `json:"result"`
	// Error says why the run failed outside its SLOs or was aborted. Required when aborted.
	Error string `json:"error,omitempty"`

	// Anomalies are what went wrong (lost, dropped, duplicated, a load generator that could not
	// keep up), found whatever the scenario measured; reports show them first.
	Anomalies    []Anomaly     `json:"anomalies,omitempty"`
	Steps        []Step        `json:"steps,omitempty"`
	Faults       []Fault       `json:"faults,omitempty"`
	SLOs         []Verdict     `json:"slos,omitempty"`
	Measurements []Measurement `json:"measurements,omitempty"`
	// DSNs are figures measured per DSN, with the DSNs and groups of DSNs that stood out.
	DSNs []DSNFigure `json:"dsns,omitempty"`

	// Convergence has one entry per intent change the run made, in commit order.
	Convergence []IntentChange `json:"convergence,omitempty"`
	// Acked is the share of the fleet in session whose applied revision is at or past the one
	// committed a second before each sample, over time (unit %): how much of the fleet keeps up
	// with changes, which a load that writes cannot make flap as it moves the revision.
	Acked Series `json:"acked,omitzero"`
	// API is the northbound API as the load generator saw it, over time.
	API API `json:"api,omitzero"`
	// Components is the resource use of each process role (control plane, fleet, harness).
	Components []Component `json:"components,omitempty"`
	// Units are the fleet's units that ran outside the harness process, with where they ran
	// and their own resource use, as they reported it.
	Units []Unit `json:"units,omitempty"`
}

// Unit is one unit of the fleet (a rack of DSNs in a process or container of its own).
type Unit struct {
	Name string `json:"name"`
	Site string `json:"site,omitempty"`
	Rack string `json:"rack,omitempty"`
	Host string `json:"host,omitempty"`
	DSNs int    `json:"dsns"`
	// CPUSeconds adds up the unit's processes over the run; PeakRSSBytes is the highest
	// resident memory it reported.
	CPUSeconds   float64 `json:"cpuSeconds"`
	PeakRSSBytes int64   `json:"peakRSSBytes"`
	// Missing says why there are no figures (the unit never reported them).
	Missing string `json:"missing,omitempty"`
}

// Scenario is the scenario the run executed, with the text of its file so that the record
// stands alone.
type Scenario struct {
	Name    string `json:"name"`
	Path    string `json:"path,omitempty"`
	Content string `json:"content,omitempty"`
	// Includes are other files the scenario used, such as its traffic-pattern map.
	Includes []SourceFile `json:"includes,omitempty"`
}

// SourceFile is a file the run read, kept verbatim.
type SourceFile struct {
	Path    string `json:"path"`
	Content string `json:"content"`
}

// Environment is where the run ran.
type Environment struct {
	GitCommit string `json:"gitCommit,omitempty"`
	GoVersion string `json:"goVersion"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	NumCPU    int    `json:"numCPU"`
	Hostname  string `json:"hostname"`
	// Extra holds anything else worth knowing (driver, backends, control-plane URL, kernel).
	Extra map[string]string `json:"extra,omitempty"`
}

// CurrentEnvironment describes the running process: Go version, OS, CPU count, host name and,
// when the binary was built from a Git checkout, the commit (with "-dirty" when modified).
func CurrentEnvironment() Environment {
	env := Environment{GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH, NumCPU: runtime.NumCPU()}
	env.Hostname, _ = os.Hostname()
	if bi, ok := debug.ReadBuildInfo(); ok {
		dirty := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				env.GitCommit = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if dirty && env.GitCommit != "" {
			env.GitCommit += "-dirty"
		}
	}
	return env
}

// Step is one step of the scenario as it ran.
type Step struct {
	Name string `json:"name"`
	// Phase is PhaseSetup for the setup of a step's load, which runs before the step; empty
	// for a step of the scenario.
	Phase string    `json:"phase,omitempty"`
	Start time.Time `json:"start"`
	// End is when the step ended, or when the run was aborted during it.
	End time.Time `json:"end"`
	// Error says why the step failed, if it did.
	Error string `json:"error,omitempty"`
}

// PhaseSetup marks the record of a step's load setup: the load's objects created and the
// fleet given time to apply them, before the step starts.
const PhaseSetup = "setup"

// Fault is one injected fault.
type Fault struct {
	Kind string `json:"kind"`
	// Target describes what the fault hit, e.g. "10% of dsns in site=eu1" or "control plane".
	Target string    `json:"target"`
	Step   string    `json:"step,omitempty"`
	Start  time.Time `json:"start"`
	// Start and End bound the time the fault was in effect: from its injection to its recovery
	// (or, for a restart, to its end). End is zero if it never was recovered.
	End time.Time `json:"end,omitzero"`
	// Error says what went wrong injecting or recovering it, if anything did.
	Error string `json:"error,omitempty"`
	// Optional says the scenario let the fault fail without breaking the run.
	Optional bool `json:"optional,omitempty"`
}

// Op is a comparison an SLO makes between the observed value and its threshold.
type Op string

// The SLO operators.
const (
	OpLT Op = "<"
	OpLE Op = "<="
	OpGT Op = ">"
	OpGE Op = ">="
	OpEQ Op = "=="
	OpNE Op = "!="
)

// Holds reports whether observed op threshold is true. It is false for an unknown operator.
func (op Op) Holds(observed, threshold float64) bool {
	switch op {
	case OpLT:
		return observed < threshold
	case OpLE:
		return observed <= threshold
	case OpGT:
		return observed > threshold
	case OpGE:
		return observed >= threshold
	case OpEQ:
		return observed == threshold
	case OpNE:
		return observed != threshold
	}
	return false
}

// Verdict is the outcome of one SLO: Pass says whether Observed Op Threshold held.
type Verdict struct {
	Name string `json:"name"`
	// Measurement names the measurement and, after a dot, the value the SLO reads
	// (e.g. "api-latency.p99").
	Measurement string  `json:"measurement"`
	Op          Op      `json:"op"`
	Threshold   float64 `json:"threshold"`
	Unit        string  `json:"unit,omitempty"`
	// Observed is nil when the measurement produced no value; the SLO then fails, unless
	// MissingOK.
	Observed *float64 `json:"observed"`
	Pass     bool     `json:"pass"`
	// Reason says why there is no observed value (a measurement that could not be taken).
	Reason string `json:"reason,omitempty"`
	// MissingOK says the SLO passes when its value is missing (the scenario's "missing: pass").
	MissingOK bool `json:"missingOK,omitempty"`
}

// Float returns a pointer to v, for Verdict.Observed and the IntentChange times.
func Float(v float64) *float64 { return &v }

// Measurement is what one measurement of the scenario produced.
type Measurement struct {
	Name string `json:"name"`
	// Kind is the measurement's registered kind.
	Kind   string   `json:"kind,omitempty"`
	Step   string   `json:"step,omitempty"`
	Values []Value  `json:"values,omitempty"`
	Series []Series `json:"series,omitempty"`
	// Notes are the measurement's remarks: what was not available, what was assumed.
	Notes []string `json:"notes,omitempty"`
}

// Direction says which way a figure improves.
type Direction string

// The directions. An empty Direction is derived from the figure's name and unit (see
// DirectionFor).
const (
	LowerIsBetter  Direction = "lower"
	HigherIsBetter Direction = "higher"
	// Neutral figures are compared but a change is never a regression.
	Neutral Direction = "neutral"
)

// Value is one named figure. A value that could not be measured (nothing to measure, or the
// measurement failed) is missing: Missing says why, and Value means nothing (it is absent from
// run.json, never 0).
type Value struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit,omitempty"`
	// Better overrides the direction derived from the unit.
	Better Direction `json:"better,omitempty"`
	// Missing, when set, says why there is no value.
	Missing string `json:"missing,omitempty"`
}

// Present reports whether the value was measured.
func (v Value) Present() bool { return v.Missing == "" }

// Anomaly is one thing that went wrong in a run, with its counts: reports show anomalies first,
// whether the run passed or not.
type Anomaly struct {
	// Kind is lost, dropped, refused, rolled-up, duplicated, regressed, failed, incomplete,
	// generator-limited, or another a newer build knows.
	Kind string `json:"kind"`
	// Source is the measurement that found it, or "harness" for the harness's own trouble.
	Source string `json:"source"`
	// Step is the step it happened in, when it belongs to one.
	Step    string `json:"step,omitempty"`
	Summary string `json:"summary"`
	// Count is how many things it concerns; Of, when not 0, the whole they are part of.
	Count float64 `json:"count"`
	Of    float64 `json:"of,omitempty"`
	// DSNs are the first few DSNs concerned; Examples the first few instances.
	DSNs     []string `json:"dsns,omitempty"`
	Examples []string `json:"examples,omitempty"`
}

// SourceHarness is the Source of an anomaly of the harness's own (its store, its records).
const SourceHarness = "harness"

// Series is a named time series.
type Series struct {
	Name   string  `json:"name"`
	Unit   string  `json:"unit,omitempty"`
	Points []Point `json:"points,omitempty"`
}

// Point is one sample: T is milliseconds since Run.Start.
type Point struct {
	T int64   `json:"t"`
	V float64 `json:"v"`
}

// Offset converts an absolute time into a Point.T for a run that started at start.
func Offset(start, t time.Time) int64 { return t.Sub(start).Milliseconds() }

// Add appends a sample taken at t to s, for a run that started at start.
func (s *Series) Add(start, t time.Time, v float64) {
	s.Points = append(s.Points, Point{T: Offset(start, t), V: v})
}

// IntentChange is how fast the fleet converged on one intent change: the time from the commit
// until 50, 90, 99 and 100% of the targeted DSNs acked it, in milliseconds. A nil time means
// that share was never reached during the run.
type IntentChange struct {
	Revision    uint64    `json:"revision"`
	Step        string    `json:"step,omitempty"`
	Description string    `json:"description,omitempty"`
	At          time.Time `json:"at"`
	Targets     int       `json:"targets"`
	To50Ms      *float64  `json:"to50Ms"`
	To90Ms      *float64  `json:"to90Ms"`
	To99Ms      *float64  `json:"to99Ms"`
	To100Ms     *float64  `json:"to100Ms"`
}

// API holds the northbound API series.
type API struct {
	P50      Series `json:"p50,omitzero"`      // latency, ms
	P99      Series `json:"p99,omitzero"`      // latency, ms
	Requests Series `json:"requests,omitzero"` // completed requests per second, 1/s
	Errors   Series `json:"errors,omitzero"`   // failed requests per second, 1/s
}

// The usual component names.
const (
	ComponentControlPlane = "control-plane"
	ComponentFleet        = "fleet"
	ComponentHarness      = "harness"
)

// Component is the resource use of one process role.
type Component struct {
	// Name is the role: ComponentControlPlane, ComponentFleet, ComponentHarness or another.
	Name string `json:"name"`
	// CPUSeconds is the user+system CPU time used during the run.
	CPUSeconds float64 `json:"cpuSeconds"`
	// PeakRSSBytes is the highest resident set size seen.
	PeakRSSBytes int64 `json:"peakRSSBytes"`
	// CPU is cumulative CPU seconds at each sample (unit s); the report charts its rate.
	CPU Series `json:"cpu,omitzero"`
	// RSS is the resident set size at each sample (unit bytes).
	RSS Series `json:"rss,omitzero"`
}

// Duration is how long the run took.
func (r *Run) Duration() time.Duration { return r.End.Sub(r.Start) }
