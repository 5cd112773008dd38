package reports

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode"
)

// Sentinel errors; the errors this package returns wrap them.
var (
	// ErrInvalid marks a run record that breaks the schema's rules.
	ErrInvalid = errors.New("invalid run record")
	// ErrSchemaVersion marks a run.json of a schema version this build does not read.
	ErrSchemaVersion = errors.New("unsupported run.json schema version")
)

// FieldError is one problem with one field of a run record. Path is the field's JSON path,
// such as "measurements[2].values[0].value".
type FieldError struct {
	Path    string
	Problem string
	err     error
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Problem }

// Unwrap returns ErrInvalid, and ErrSchemaVersion for a version mismatch.
func (e *FieldError) Unwrap() []error {
	if e.err != nil {
		return []error{ErrInvalid, e.err}
	}
	return []error{ErrInvalid}
}

// maxProblems bounds how many problems Validate lists, so that a badly broken file gives a
// readable error.
const maxProblems = 20

type checker struct {
	errs  []error
	extra int
}

func (c *checker) add(path, format string, args ...any) {
	if len(c.errs) >= maxProblems {
		c.extra++
		return
	}
	c.errs = append(c.errs, &FieldError{Path: path, Problem: fmt.Sprintf(format, args...)})
}

func (c *checker) err() error {
	if c.extra > 0 {
		c.errs = append(c.errs, fmt.Errorf("%w: and %d more problems", ErrInvalid, c.extra))
	}
	return errors.Join(c.errs...)
}

func (c *checker) finite(path string, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		c.add(path, "must be a finite number, got %v", v)
	}
}

func (c *checker) required(path, v string) {
	if strings.TrimSpace(v) == "" {
		c.add(path, "must not be empty")
	}
}

func (c *checker) timeSet(path string, t time.Time) {
	if t.IsZero() {
		c.add(path, "must be set")
	}
}

func (c *checker) ordered(path string, start, end time.Time) {
	if !end.IsZero() && !start.IsZero() && end.Before(start) {
		c.add(path, "%s is before start %s", end.UTC().Format(time.RFC3339Nano), start.UTC().Format(time.RFC3339Nano))
	}
}

// Validate checks the record against the schema's rules and returns every problem found (up to
// a limit) joined, each a *FieldError wrapping ErrInvalid; nil if the record is valid.
func (r *Run) Validate() error {
	c := &checker{}
	if r.SchemaVersion != SchemaVersion {
		c.errs = append(c.errs, &FieldError{Path: "schemaVersion",
			Problem: fmt.Sprintf("%d is not supported (this build reads %d)", r.SchemaVersion, SchemaVersion), err: ErrSchemaVersion})
	}
	c.id(r.ID)
	c.required("scenario.name", r.Scenario.Name)
	for i, f := range r.Scenario.Includes {
		c.required(fmt.Sprintf("scenario.includes[%d].path", i), f.Path)
	}
	for k := range r.Params {
		if strings.TrimSpace(k) == "" {
			c.add("params", "has an empty name")
		}
	}
	c.required("environment.goVersion", r.Environment.GoVersion)
	c.required("environment.os", r.Environment.OS)
	if r.Environment.NumCPU < 1 {
		c.add("environment.numCPU", "must be at least 1, got %d", r.Environment.NumCPU)
	}
	c.timeSet("start", r.Start)
	c.timeSet("end", r.End)
	c.ordered("end", r.Start, r.End)
	c.result(r)
	for i, s := range r.Steps {
		p := fmt.Sprintf("steps[%d]", i)
		c.required(p+".name", s.Name)
		c.timeSet(p+".start", s.Start)
		c.timeSet(p+".end", s.End)
		c.ordered(p+".end", s.Start, s.End)
		if s.Phase != "" && s.Phase != PhaseSetup {
			c.add(p+".phase", "must be empty or %q, got %q", PhaseSetup, s.Phase)
		}
	}
	for i, f := range r.Faults {
		p := fmt.Sprintf("faults[%d]", i)
		c.required(p+".kind", f.Kind)
		c.timeSet(p+".start", f.Start)
		c.ordered(p+".end", f.Start, f.End)
	}
	c.verdicts(r.SLOs)
	c.measurements(r.Measurements)
	c.anomalies(r.Anomalies)
	c.dsnFigures(r.DSNs)
	c.convergence(r.Convergence)
	c.series("acked", r.Acked, UnitPercent, false)
	c.series("api.p50", r.API.P50, UnitMillis, false)
	c.series("api.p99", r.API.P99, UnitMillis, false)
	c.series("api.requests", r.API.Requests, UnitPerSecond, false)
	c.series("api.errors", r.API.Errors, UnitPerSecond, false)
	c.components(r.Components)
	c.units(r.Units)
	return c.err()
}

func (c *checker) id(id string) {
	switch {
	case strings.TrimSpace(id) == "":
		c.add("id", "must not be empty")
	case id == "." || id == "..", strings.ContainsAny(id, `/\`):
		c.add("id", "%q must be usable as a directory name (no slashes, not . or ..)", id)
	case len(id) > 200:
		c.add("id", "is %d bytes long; at most 200", len(id))
	case strings.IndexFunc(id, unicode.IsControl) >= 0:
		c.add("id", "%q contains a control character", id)
	}
}

func (c *checker) result(r *Run) {
	failed := 0
	for _, v := range r.SLOs {
		if !v.Pass {
			failed++
		}
	}
	stepErr := false
	for _, s := range r.Steps {
		stepErr = stepErr || s.Error != ""
	}
	switch r.Result {
	case ResultPass:
		if failed > 0 {
			c.add("result", "is pass but %d SLO(s) failed", failed)
		}
		if r.Error != "" {
			c.add("error", "is set on a run whose result is pass")
		}
	case ResultFail:
		if failed == 0 && r.Error == "" && !stepErr {
			c.add("result", "is fail but no SLO failed and neither error nor a step's error says why")
		}
	case ResultAborted:
		c.required("error", r.Error)
	default:
		c.add("result", "must be %q, %q or %q, got %q", ResultPass, ResultFail, ResultAborted, r.Result)
	}
}

func (c *checker) verdicts(vs []Verdict) {
	seen := map[string]int{}
	for i, v := range vs {
		p := fmt.Sprintf("slos[%d]", i)
		c.required(p+".name", v.Name)
		if j, dup := seen[v.Name]; dup && v.Name != "" {
			c.add(p+".name", "%q repeats slos[%d]", v.Name, j)
		}
		seen[v.Name] = i
		c.required(p+".measurement", v.Measurement)
		c.finite(p+".threshold", v.Threshold)
		if !validOp(v.Op) {
			c.add(p+".op", "must be one of < <= > >= == !=, got %q", v.Op)
			continue
		}
		if v.Observed == nil {
			if v.Pass != v.MissingOK {
				c.add(p+".pass", "is %t but nothing was observed and missingOK is %t", v.Pass, v.MissingOK)
			}
			continue
		}
		c.finite(p+".observed", *v.Observed)
		if want := v.Op.Holds(*v.Observed, v.Threshold); want != v.Pass {
			c.add(p+".pass", "is %t but observed %v %s threshold %v is %t", v.Pass, *v.Observed, v.Op, v.Threshold, want)
		}
	}
}

func validOp(op Op) bool {
	switch op {
	case OpLT, OpLE, OpGT, OpGE, OpEQ, OpNE:
		return true
	}
	return false
}

func validDirection(d Direction) bool {
	switch d {
	case "", LowerIsBetter, HigherIsBetter, Neutral:
		return true
	}
	return false
}

func (c *checker) anomalies(as []Anomaly) {
	for i, a := range as {
		p := fmt.Sprintf("anomalies[%d]", i)
		c.required(p+".kind", a.Kind)
		c.required(p+".source", a.Source)
		c.required(p+".summary", a.Summary)
		c.finite(p+".count", a.Count)
		c.finite(p+".of", a.Of)
		if a.Count < 0 {
			c.add(p+".count", "must not be negative, got %v", a.Count)
		}
		if a.Of != 0 && a.Of < a.Count {
			c.add(p+".of", "%v is less than count %v", a.Of, a.Count)
		}
	}
}

func (c *checker) dsnFigures(fs []DSNFigure) {
	seen := map[string]int{}
	for i, f := range fs {
		p := fmt.Sprintf("dsns[%d]", i)
		c.required(p+".name", f.Name)
		if j, dup := seen[f.Name]; dup && f.Name != "" {
			c.add(p+".name", "%q repeats dsns[%d]", f.Name, j)
		}
		seen[f.Name] = i
		if f.Missing != "" {
			if f.DSNs != 0 || len(f.Histogram) > 0 || len(f.Top) > 0 {
				c.add(p+".missing", "is set on a figure that has values")
			}
			continue
		}
		if f.DSNs < 1 {
			c.add(p+".dsns", "must be at least 1 for a figure that is not missing, got %d", f.DSNs)
		}
		for _, x := range []struct {
			name string
			v    float64
		}{{"median", f.Median}, {"mad", f.MAD}, {"p90", f.P90}, {"max", f.Max}} {
			c.finite(p+"."+x.name, x.v)
		}
		total := 0
		for k, b := range f.Histogram {
			bp := fmt.Sprintf("%s.histogram[%d]", p, k)
			c.finite(bp+".from", b.From)
			c.finite(bp+".to", b.To)
			if b.To < b.From {
				c.add(bp+".to", "%v is below from %v", b.To, b.From)
			}
			if b.Count < 0 {
				c.add(bp+".count", "must not be negative, got %d", b.Count)
			}
			total += b.Count
		}
		if len(f.Histogram) > 0 && total != f.DSNs {
			c.add(p+".histogram", "counts %d DSNs, the figure %d", total, f.DSNs)
		}
		for k, d := range f.Top {
			c.required(fmt.Sprintf("%s.top[%d].dsn", p, k), d.DSN)
			c.finite(fmt.Sprintf("%s.top[%d].value", p, k), d.Value)
			c.finite(fmt.Sprintf("%s.top[%d].z", p, k), d.Z)
		}
		for k, g := range f.Groups {
			c.required(fmt.Sprintf("%s.groups[%d].label", p, k), g.Label)
			c.finite(fmt.Sprintf("%s.groups[%d].median", p, k), g.Median)
			c.finite(fmt.Sprintf("%s.groups[%d].z", p, k), g.Z)
		}
	}
}

func (c *checker) measurements(ms []Measurement) {
	seen := map[string]int{}
	for i, m := range ms {
		p := fmt.Sprintf("measurements[%d]", i)
		c.required(p+".name", m.Name)
		if j, dup := seen[m.Name]; dup && m.Name != "" {
			c.add(p+".name", "%q repeats measurements[%d]", m.Name, j)
		}
		seen[m.Name] = i
		vals := map[string]int{}
		for k, v := range m.Values {
			vp := fmt.Sprintf("%s.values[%d]", p, k)
			c.required(vp+".name", v.Name)
			if j, dup := vals[v.Name]; dup && v.Name != "" {
				c.add(vp+".name", "%q repeats values[%d]", v.Name, j)
			}
			vals[v.Name] = k
			switch {
			case v.Missing != "" && v.Value != 0:
				c.add(vp+".value", "is set on a value that says it is missing (%s)", v.Missing)
			case v.Missing == "" && math.IsNaN(v.Value):
				c.add(vp+".value", "is absent: a value has a number, or says why it is missing")
			case v.Missing == "":
				c.finite(vp+".value", v.Value)
			}
			if !validDirection(v.Better) {
				c.add(vp+".better", "must be %q, %q or %q, got %q", LowerIsBetter, HigherIsBetter, Neutral, v.Better)
			}
		}
		for k, s := range m.Series {
			c.series(fmt.Sprintf("%s.series[%d]", p, k), s, "", true)
		}
	}
}

// series checks one series. named says it must have a name (a measurement's series must; a
// well-known series is named by its field). unit, when set, is the only unit it may declare
// besides none.
func (c *checker) series(p string, s Series, unit string, named bool) {
	if named {
		c.required(p+".name", s.Name)
	}
	if unit != "" && s.Unit != "" && s.Unit != unit {
		c.add(p+".unit", "must be %q, got %q", unit, s.Unit)
	}
	for i, pt := range s.Points {
		if math.IsNaN(pt.V) || math.IsInf(pt.V, 0) {
			c.add(fmt.Sprintf("%s.points[%d].v", p, i), "must be a finite number, got %v", pt.V)
		}
		if i > 0 && pt.T < s.Points[i-1].T {
			c.add(fmt.Sprintf("%s.points[%d].t", p, i), "%d is before the previous point's %d; points must be in time order", pt.T, s.Points[i-1].T)
		}
	}
}

func (c *checker) convergence(cs []IntentChange) {
	for i, ch := range cs {
		p := fmt.Sprintf("convergence[%d]", i)
		c.timeSet(p+".at", ch.At)
		if ch.Targets < 0 {
			c.add(p+".targets", "must not be negative, got %d", ch.Targets)
		}
		names := []string{"to50Ms", "to90Ms", "to99Ms", "to100Ms"}
		prev, prevName := -1.0, ""
		missing := ""
		for k, t := range []*float64{ch.To50Ms, ch.To90Ms, ch.To99Ms, ch.To100Ms} {
			fp := p + "." + names[k]
			if t == nil {
				if missing == "" {
					missing = names[k]
				}
				continue
			}
			if math.IsNaN(*t) || math.IsInf(*t, 0) || *t < 0 {
				c.add(fp, "must be a finite number of milliseconds at least 0, got %v", *t)
				continue
			}
			if missing != "" {
				c.add(fp, "is set but %s is not: a larger share cannot be reached before a smaller one", missing)
			}
			if *t < prev {
				c.add(fp, "%v is less than %s %v", *t, prevName, prev)
			}
			prev, prevName = *t, names[k]
		}
	}
}

func (c *checker) units(us []Unit) {
	seen := map[string]int{}
	for i, u := range us {
		p := fmt.Sprintf("units[%d]", i)
		c.required(p+".name", u.Name)
		if j, dup := seen[u.Name]; dup && u.Name != "" {
			c.add(p+".name", "%q repeats units[%d]", u.Name, j)
		}
		seen[u.Name] = i
		c.finite(p+".cpuSeconds", u.CPUSeconds)
		if u.DSNs < 0 || u.CPUSeconds < 0 || u.PeakRSSBytes < 0 {
			c.add(p, "dsns, cpuSeconds and peakRSSBytes must not be negative")
		}
	}
}

func (c *checker) components(cs []Component) {
	seen := map[string]int{}
	for i, comp := range cs {
		p := fmt.Sprintf("components[%d]", i)
		c.required(p+".name", comp.Name)
		if j, dup := seen[comp.Name]; dup && comp.Name != "" {
			c.add(p+".name", "%q repeats components[%d]", comp.Name, j)
		}
		seen[comp.Name] = i
		c.finite(p+".cpuSeconds", comp.CPUSeconds)
		if comp.CPUSeconds < 0 {
			c.add(p+".cpuSeconds", "must not be negative, got %v", comp.CPUSeconds)
		}
		if comp.PeakRSSBytes < 0 {
			c.add(p+".peakRSSBytes", "must not be negative, got %d", comp.PeakRSSBytes)
		}
		c.series(p+".cpu", comp.CPU, UnitSeconds, false)
		c.series(p+".rss", comp.RSS, UnitBytes, false)
	}
}
