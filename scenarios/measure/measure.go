// Package measure holds the measurements a scenario can take, one file each, and the registry
// scenario validation checks names against.
//
// Measurements are computed from what the harness observed from outside the control plane: the
// DSNs' reported states and applied revisions (a Timeline), the revisions the control plane's
// public API reported and when (Revisions), the faults injected, the northbound requests the load
// generator made, the resource samples of each component, and the control plane's public API
// itself. They never look inside the control plane.
package measure

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dsnscale/dsnscale/faults"
	"github.com/dsnscale/dsnscale/internal/registry"
)

// Sentinel errors.
var (
	ErrDuplicate = errors.New("duplicate measurement")
	ErrUnknown   = errors.New("unknown measurement")
)

// Units of figures; they are the units reports understand.
const (
	UnitSeconds = "s"
	UnitPercent = "%"
	UnitBytes   = "bytes"
	UnitCount   = ""
	UnitPerSec  = "1/s"
)

// Figure declares a value a measurement produces. Names are unique across all measurements, so
// an SLO can name a value without naming its measurement.
type Figure struct {
	Name        string
	Unit        string
	Description string
}

// Value is one figure as measured. Missing, when set, says why there is no value (an SLO on it
// then fails with that reason).
type Value struct {
	Name    string
	Unit    string
	Value   float64
	Missing string
}

// Result is what a measurement produced.
type Result struct {
	Values []Value
	// Notes are short remarks for the report (what was not available, what was assumed).
	Notes []string
	// Anomalies are what went wrong in the window (lost, dropped, duplicated, a generator
	// that could not keep up): reports show them first, whether the run passed or not.
	Anomalies []Anomaly
	// Details are larger findings kept in the run directory (stragglers, per-change tables).
	Details any
}

// Kinds of anomaly.
const (
	// AnomalyLost: DSNs, changes or data that never got where they were going.
	AnomalyLost = "lost"
	// AnomalyDropped: something the control plane counted as dropped (a full queue).
	AnomalyDropped = "dropped"
	// AnomalyRefused: something the control plane refused (invalid, rejected).
	AnomalyRefused = "refused"
	// AnomalyRolledUp: data the control plane kept only in aggregate.
	AnomalyRolledUp = "rolled-up"
	// AnomalyDuplicated: something delivered more than once.
	AnomalyDuplicated = "duplicated"
	// AnomalyRegressed: a revision that went back.
	AnomalyRegressed = "regressed"
	// AnomalyFailed: requests that failed.
	AnomalyFailed = "failed"
	// AnomalyIncomplete: changes that never reached every DSN.
	AnomalyIncomplete = "incomplete"
	// AnomalyGeneratorLimited: the load generator could not keep its schedule, so its figures
	// describe the generator as much as the control plane.
	AnomalyGeneratorLimited = "generator-limited"
)

// Anomaly is one thing that went wrong, with its counts.
type Anomaly struct {
	Kind string
	// Summary says what happened, with the counts, in one line.
	Summary string
	// Count is how many things it concerns; Of, when not 0, the whole they are part of.
	Count, Of float64
	// DSNs are the first few DSNs concerned (maxAnomalyDSNs at most).
	DSNs []string
	// Examples are the first few instances, one line each (maxAnomalyExamples at most).
	Examples []string
}

// Bounds of an anomaly's lists.
const (
	maxAnomalyDSNs     = 20
	maxAnomalyExamples = 10
)

// AnomalyFinder marks a measurement the engine takes over the whole of every run, listed in
// the scenario or not, for the anomalies it finds: a report shows trouble whatever the
// scenario chose to measure.
type AnomalyFinder interface {
	Measurement
	FindsAnomalies()
}

// Measurement is a registered kind of measurement.
type Measurement interface {
	Name() string
	Description() string
	Figures() []Figure
	// Measure computes the figures over in's window. An error means the measurement could not
	// be taken at all; a figure it could not compute is a Value with Missing set instead.
	Measure(ctx context.Context, in *Input) (Result, error)
}

// Window is the stretch of time a measurement covers.
type Window struct {
	// Step is the step's name, or "" for the whole run.
	Step       string
	Start, End time.Time
	// Horizon is the end of observation: changes made in the window are followed until then
	// (the end of the run), so a change made near the end of a step is not cut short.
	Horizon time.Time
}

// API is the control plane's public northbound API, as measurements query it.
type API interface {
	// Get performs GET path (with its query) and returns the status and body.
	Get(ctx context.Context, path string) (status int, body []byte, err error)
}

// Input is everything a measurement may use.
type Input struct {
	Window
	// DSNs are the fleet's members; Labels their labels (site, rack, group, ...), by DSN.
	DSNs       []string
	Labels     map[string]map[string]string
	Timeline   *Timeline
	Revisions  *Revisions
	Injections []faults.Injection
	Requests   *Requests
	Resources  *Resources
	CP         *CPEvents
	Telemetry  TelemetryCounts
	// Counters are the control plane's counters of what it dropped, refused or rolled up.
	Counters *Counters
	API      API
	// Acked are the writes the API acknowledged (the acked-writes action).
	Acked *AckedWrites
	// Wait waits d (on the engine's clock) or until ctx ends; nil means measurements do not
	// wait for anything.
	Wait func(ctx context.Context, d time.Duration) error
}

// TelemetryCounts are what the fleet says it sent.
type TelemetryCounts struct {
	// Known is false when the fleet does not count what it sends.
	Known bool
	// Batches are telemetry messages; Samples the samples in them (-1 when not counted).
	Batches, Samples int64
	Events           int64
}

// InjectionsIn returns the injections of kind that started inside the window.
func (in *Input) InjectionsIn(kind string) []faults.Injection {
	var out []faults.Injection
	for _, i := range in.Injections {
		if i.Kind == kind && !i.Start.Before(in.Start) && i.Start.Before(in.End) {
			out = append(out, i)
		}
	}
	return out
}

// Registry maps names to measurements, and the names of the figures they produce to the
// measurement producing each. The zero value is empty and ready to use.
type Registry struct {
	mu           sync.Mutex // makes a measurement and its figures one registration
	measurements registry.Registry[Measurement]
	figures      registry.Registry[string]
}

// Default holds this package's measurements.
var Default = &Registry{}

func mustRegister(m Measurement) {
	if err := Default.Register(m); err != nil {
		panic(err)
	}
}

// Register adds m; a name or a figure name already taken gets ErrDuplicate.
func (r *Registry) Register(m Measurement) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.measurements.Lookup(m.Name()); dup {
		return fmt.Errorf("%w: %q", ErrDuplicate, m.Name())
	}
	for _, f := range m.Figures() {
		if other, dup := r.figures.Lookup(f.Name); dup {
			return fmt.Errorf("%w: figure %q of %q is already produced by %q", ErrDuplicate, f.Name, m.Name(), other)
		}
	}
	if err := r.measurements.Register(m.Name(), m); err != nil {
		return fmt.Errorf("%w: %w", ErrDuplicate, err)
	}
	for _, f := range m.Figures() {
		r.figures.MustRegister(f.Name, m.Name())
	}
	return nil
}

// Lookup returns the measurement called name.
func (r *Registry) Lookup(name string) (Measurement, bool) { return r.measurements.Lookup(name) }

// Producer returns the measurement that produces figure, and the figure.
func (r *Registry) Producer(figure string) (Measurement, Figure, bool) {
	name, ok := r.figures.Lookup(figure)
	if !ok {
		return nil, Figure{}, false
	}
	m, _ := r.measurements.Lookup(name)
	for _, f := range m.Figures() {
		if f.Name == figure {
			return m, f, true
		}
	}
	return nil, Figure{}, false
}

// Names lists the registered names, sorted.
func (r *Registry) Names() []string { return r.measurements.Names() }

// AnomalyFinders lists the measurements that look for anomalies in every run, by name.
func (r *Registry) AnomalyFinders() []Measurement {
	var out []Measurement
	for _, n := range r.Names() {
		m, _ := r.Lookup(n)
		if _, ok := m.(AnomalyFinder); ok {
			out = append(out, m)
		}
	}
	return out
}

// FigureNames lists the names of every figure the registered measurements produce, sorted.
func (r *Registry) FigureNames() []string { return r.figures.Names() }

// Hint is the tail of a message about an unknown measurement name: the closest known name and
// the known ones.
func (r *Registry) Hint(name string) string { return registry.Suggest(name, r.Names()) }

// missing returns a Value without a number.
func missing(f Figure, format string, args ...any) Value {
	return Value{Name: f.Name, Unit: f.Unit, Missing: fmt.Sprintf(format, args...)}
}

func value(f Figure, v float64) Value { return Value{Name: f.Name, Unit: f.Unit, Value: v} }

// quantile returns the q-quantile (0-1) of sorted xs by the nearest-rank method.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(q*float64(len(sorted))+0.999999999) - 1
	rank = max(0, min(rank, len(sorted)-1))
	return sorted[rank]
}

// getNotAvailable tells whether an API answer means the endpoint does not exist.
func notAvailable(status int) bool {
	return status == http.StatusNotFound || status == http.StatusNotImplemented || status == http.StatusMethodNotAllowed
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

// limit returns the first n of xs.
func limit(xs []string, n int) []string {
	if len(xs) <= n {
		return xs
	}
	return append([]string(nil), xs[:n]...)
}

// count formats n with thousands grouped: 1,237,339.
func count(n float64) string {
	s := strconv.FormatFloat(math.Round(n), 'f', 0, 64)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		return "-" + s
	}
	return s
}

// countOf formats n things: "1 DSN", "1,024 DSNs".
func countOf(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return count(float64(n)) + " " + many
}

// noFleet is why a value about DSNs has nothing to measure.
const noFleet = "the fleet has no DSNs: nothing to measure"

func firstN(ids []string, n int) string {
	if len(ids) <= n {
		return strings.Join(ids, ", ")
	}
	return strings.Join(ids[:n], ", ") + fmt.Sprintf(" and %d more", len(ids)-n)
}

func sortedKeys[K ~string, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
