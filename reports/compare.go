package reports

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/dsnscale/dsnscale/reports/stats"
)

// Errors of Compare.
var (
	// ErrTolerance marks a malformed Tolerance.
	ErrTolerance = errors.New("invalid tolerance")
	// ErrIncomparable marks runs of different scenarios or parameters.
	ErrIncomparable = errors.New("runs not comparable")
	// ErrTooFewRuns marks a side with fewer good runs than required.
	ErrTooFewRuns = errors.New("too few runs")
	// ErrOptions marks invalid CompareOptions.
	ErrOptions = errors.New("invalid comparison options")
)

// DefaultToleranceFraction is the relative change Compare lets pass when not told otherwise.
const DefaultToleranceFraction = 0.1

// DefaultAlpha is the significance level Compare uses when not told otherwise.
const DefaultAlpha = 0.05

// Tolerance is how far a performance figure's median may move, relative to the base's,
// before Compare counts the move.
type Tolerance struct {
	// Default applies to every figure without an entry in Figures: 0.1 lets ±10% pass.
	// Zero means DefaultToleranceFraction.
	Default float64 `json:"default"`
	// Figures overrides Default for figures by name: the full name or the one SLOs use.
	Figures map[string]float64 `json:"figures,omitempty"`
}

// DefaultTolerance lets every figure move by 10%.
func DefaultTolerance() Tolerance { return Tolerance{Default: DefaultToleranceFraction} }

// Validate checks that every fraction is a finite number in (0, 100].
func (t Tolerance) Validate() error {
	check := func(name string, v float64, zeroOK bool) error {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v > 100 || (v == 0 && !zeroOK) {
			return fmt.Errorf("%w: %s: %v is not a fraction in (0, 100] (0.1 means 10%%)", ErrTolerance, name, v)
		}
		return nil
	}
	var errs []error
	errs = append(errs, check("default", t.Default, true))
	for _, k := range sortedKeys(t.Figures) {
		errs = append(errs, check("figures["+k+"]", t.Figures[k], false))
	}
	return errors.Join(errs...)
}

// For returns the tolerance for one figure, looked up by its full name, then by its SLO name.
func (t Tolerance) For(figure string) float64 {
	if v, ok := t.Figures[figure]; ok {
		return v
	}
	if v, ok := t.Figures[SLOName(figure)]; ok {
		return v
	}
	if t.Default == 0 {
		return DefaultToleranceFraction
	}
	return t.Default
}

// CompareOptions says how Compare judges. The zero value judges every figure at DefaultAlpha
// and DefaultTolerance, with no required number of runs.
type CompareOptions struct {
	// Alpha is the significance level of the U test (0: DefaultAlpha).
	Alpha     float64   `json:"alpha"`
	Tolerance Tolerance `json:"tolerance"`
	// Gate names the performance figures that gate (full or SLO names); empty: every one.
	// Correctness figures always gate.
	Gate []string `json:"gate,omitempty"`
	// Better gives the direction of figures outside the Catalogue, by full or SLO name.
	Better map[string]Direction `json:"better,omitempty"`
	// MinRuns is how many good runs each side must have (0: no requirement).
	MinRuns int `json:"minRuns,omitempty"`
	// AllowDifferent compares runs of different scenarios or parameters, with a warning,
	// instead of refusing.
	AllowDifferent bool `json:"allowDifferent,omitempty"`
}

func (o CompareOptions) withDefaults() CompareOptions {
	if o.Alpha == 0 {
		o.Alpha = DefaultAlpha
	}
	if o.Tolerance.Default == 0 {
		o.Tolerance.Default = DefaultToleranceFraction
	}
	return o
}

// Validate checks the options.
func (o CompareOptions) Validate() error {
	var errs []error
	if math.IsNaN(o.Alpha) || o.Alpha < 0 || o.Alpha > 0.5 {
		errs = append(errs, fmt.Errorf("%w: alpha %v: want a significance level in (0, 0.5]", ErrOptions, o.Alpha))
	}
	if o.MinRuns < 0 {
		errs = append(errs, fmt.Errorf("%w: required runs %d: want 0 or more", ErrOptions, o.MinRuns))
	}
	for _, k := range sortedKeys(o.Better) {
		if d := o.Better[k]; d != LowerIsBetter && d != HigherIsBetter {
			errs = append(errs, fmt.Errorf("%w: direction of %s: %q: want lower or higher", ErrOptions, k, d))
		}
	}
	errs = append(errs, o.Tolerance.Validate())
	return errors.Join(errs...)
}

// FigureVerdict is Compare's judgement of one figure.
type FigureVerdict string

// The verdicts.
const (
	// Regressed: a performance figure moved in its worse direction beyond its tolerance and
	// significantly; a correctness figure rose above the base's.
	Regressed FigureVerdict = "regressed"
	// Improved is the same in the better direction.
	Improved FigureVerdict = "improved"
	// Unchanged: within tolerance, not significant, or the same count as the base.
	Unchanged FigureVerdict = "unchanged"
	// Inconclusive: too few runs for the U test to be significant at alpha.
	Inconclusive FigureVerdict = "inconclusive"
	// Missing: one side (or both) has no value for the figure; nothing is judged.
	Missing FigureVerdict = "missing"
	// Info: the figure counts what the run did and is not judged.
	Info FigureVerdict = "info"
)

// RunInfo identifies a compared run.
type RunInfo struct {
	ID        string    `json:"id"`
	Scenario  string    `json:"scenario"`
	GitCommit string    `json:"gitCommit,omitempty"`
	Start     time.Time `json:"start"`
	Result    Result    `json:"result"`
}

func infoOf(r *Run) RunInfo {
	return RunInfo{ID: r.ID, Scenario: r.Scenario.Name, GitCommit: r.Environment.GitCommit, Start: r.Start, Result: r.Result}
}

// SideInfo describes one side of a comparison.
type SideInfo struct {
	Source string  `json:"source"`
	Kind   SetKind `json:"kind"`
	// Runs are the good runs; Broken the runs left out of every figure but run.broken.
	Runs   []RunInfo   `json:"runs"`
	Broken []BrokenRun `json:"broken,omitempty"`
	// Commits are the distinct commits of the runs, in order.
	Commits []string `json:"commits,omitempty"`
	Notes   []string `json:"notes,omitempty"`
}

// Size is how many runs the side has, broken ones included.
func (s SideInfo) Size() int { return len(s.Runs) + len(s.Broken) }

// Comparison is the result of comparing the head runs against the base runs.
type Comparison struct {
	Scenario string   `json:"scenario"`
	Base     SideInfo `json:"base"`
	Head     SideInfo `json:"head"`
	// Options are the options in effect, defaults filled in.
	Options CompareOptions `json:"options"`
	// NeedRuns is how many runs per side the U test needs to be significant at Options.Alpha.
	NeedRuns int                `json:"needRuns"`
	Figures  []FigureComparison `json:"figures"`
	// Overlays are key series of every run, for charts that lay head over base.
	Overlays []Overlay `json:"-"`
	// Warnings say why the comparison may mislead: broken runs, different machines, a load
	// generator that fell behind, guessed directions.
	Warnings []string `json:"warnings,omitempty"`
}

// Regressions returns the gated figures that regressed, leaving out those too noisy to gate.
func (c Comparison) Regressions() []FigureComparison {
	var out []FigureComparison
	for _, f := range c.Figures {
		if f.Gated && f.Verdict == Regressed && !f.Noisy {
			out = append(out, f)
		}
	}
	return out
}

// Regressed reports whether a gated figure regressed (and was not too noisy to gate).
func (c Comparison) Regressed() bool { return len(c.Regressions()) > 0 }

// Overlay is one series as every run recorded it.
type Overlay struct {
	Name string   `json:"name"`
	Unit string   `json:"unit"`
	Base []Series `json:"base"`
	Head []Series `json:"head"`
}

// Compare judges head against base figure by figure (see Run.Figures; each SLO and whether
// each run broke are figures too):
//
//   - a performance figure regressed when its median moved in its worse direction by more
//     than its tolerance and the Mann-Whitney U test finds the move significant at alpha;
//     with too few runs for that it is inconclusive, never a guess;
//   - a correctness figure regressed, from a clean base (0 in every base run), when any head
//     run is above 0: no statistics; from a base that is not clean, as a performance figure,
//     with a warning;
//   - a figure missing on a side is not judged, and says so;
//   - broken runs are left out of every figure but run.broken.
//
// It refuses (ErrIncomparable) runs of different scenarios or parameters unless
// opts.AllowDifferent, and a side with fewer good runs than opts.MinRuns (ErrTooFewRuns).
func Compare(base, head *RunSet, opts CompareOptions) (Comparison, error) {
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return Comparison{}, err
	}
	c := Comparison{Base: sideInfo(base), Head: sideInfo(head), Options: opts, NeedRuns: stats.MinRuns(opts.Alpha)}
	if len(base.Runs) > 0 {
		c.Scenario = base.Runs[0].Scenario.Name
	} else if len(head.Runs) > 0 {
		c.Scenario = head.Runs[0].Scenario.Name
	}
	problems, warnings := comparability(base, head)
	if len(problems) > 0 && !opts.AllowDifferent {
		return Comparison{}, fmt.Errorf("%w: %s (--allow-different compares them anyway)", ErrIncomparable, joinSentences(problems))
	}
	c.Warnings = append(c.Warnings, problems...)
	c.Warnings = append(c.Warnings, warnings...)
	if opts.MinRuns > 0 {
		var short []string
		for _, s := range []struct {
			name string
			set  *RunSet
		}{{"base", base}, {"head", head}} {
			if n := len(s.set.Runs); n < opts.MinRuns {
				short = append(short, fmt.Sprintf("%s has %d good %s", s.name, n, plural(n, "run", "runs")))
			}
		}
		if len(short) > 0 {
			return Comparison{}, fmt.Errorf("%w: %d runs per side required; %s", ErrTooFewRuns, opts.MinRuns, joinSentences(short))
		}
	}
	c.Figures = judgeAll(base, head, opts)
	c.Warnings = append(c.Warnings, figureWarnings(c, base, head)...)
	c.Overlays = overlays(base, head)
	return c, nil
}

func sideInfo(s *RunSet) SideInfo {
	info := SideInfo{Source: s.Source, Kind: s.Kind, Broken: s.Broken, Notes: s.Notes}
	seen := map[string]bool{}
	for _, r := range s.Runs {
		info.Runs = append(info.Runs, infoOf(r))
		if c := r.Environment.GitCommit; !seen[c] {
			seen[c] = true
			info.Commits = append(info.Commits, c)
		}
	}
	return info
}

// comparability returns what makes the runs incomparable (different scenarios or parameters)
// and what only warrants a warning (different machines or scenario files, mixed commits).
func comparability(base, head *RunSet) (problems, warnings []string) {
	type tagged struct {
		side string
		run  *Run
	}
	var all []tagged
	for _, s := range []struct {
		name string
		set  *RunSet
	}{{"base", base}, {"head", head}} {
		for _, r := range s.set.Runs {
			all = append(all, tagged{s.name, r})
		}
		for _, b := range s.set.Broken {
			if b.Run != nil {
				all = append(all, tagged{s.name, b.Run})
			}
		}
	}
	if len(all) == 0 {
		return nil, nil
	}
	ref := all[0]
	seen := map[string]bool{}
	note := func(list *[]string, msg string) {
		if !seen[msg] {
			seen[msg] = true
			*list = append(*list, msg)
		}
	}
	for _, t := range all[1:] {
		a, b := ref.run, t.run
		if a.Scenario.Name != b.Scenario.Name {
			note(&problems, fmt.Sprintf("%s run %s is of scenario %q, %s run %s of %q", ref.side, a.ID, a.Scenario.Name, t.side, b.ID, b.Scenario.Name))
			continue
		}
		for _, k := range sortedKeys(mergeKeys(a.Params, b.Params)) {
			av, aok := a.Params[k]
			bv, bok := b.Params[k]
			switch {
			case !aok:
				note(&problems, fmt.Sprintf("parameter %s is set only in %s run %s (%q)", k, t.side, b.ID, bv))
			case !bok:
				note(&problems, fmt.Sprintf("parameter %s is set only in %s run %s (%q)", k, ref.side, a.ID, av))
			case av != bv:
				note(&problems, fmt.Sprintf("parameter %s is %q in %s run %s but %q in %s run %s", k, av, ref.side, a.ID, bv, t.side, b.ID))
			}
		}
		if a.Scenario.Content != b.Scenario.Content {
			note(&warnings, fmt.Sprintf("the scenario file of %s run %s differs from that of %s run %s", t.side, b.ID, ref.side, a.ID))
		}
		if a.Environment.NumCPU != b.Environment.NumCPU {
			note(&warnings, fmt.Sprintf("the runs had different CPU counts (%d and %d)", a.Environment.NumCPU, b.Environment.NumCPU))
		}
		if a.Environment.Hostname != b.Environment.Hostname {
			note(&warnings, fmt.Sprintf("the runs ran on different hosts (%q and %q)", a.Environment.Hostname, b.Environment.Hostname))
		}
	}
	return problems, warnings
}

// figureWarnings are what the figures say about the runs themselves.
func figureWarnings(c Comparison, base, head *RunSet) []string {
	var w []string
	for _, s := range []struct {
		name string
		info SideInfo
	}{{"base", c.Base}, {"head", c.Head}} {
		if n := len(s.info.Broken); n > 0 {
			w = append(w, fmt.Sprintf("%d of %d %s runs broke and are left out of every figure but %s", n, s.info.Size(), s.name, FigureBroken))
		}
		if n := len(s.info.Commits); n > 1 {
			w = append(w, fmt.Sprintf("the %s runs come from %d different commits", s.name, n))
		}
		w = append(w, s.info.Notes...)
	}
	for _, s := range []struct {
		name string
		set  *RunSet
	}{{"base", base}, {"head", head}} {
		if n := generatorLimited(s.set); n > 0 {
			w = append(w, fmt.Sprintf("the load generator fell behind its schedule in %d %s %s: their API figures understate the load asked for", n, s.name, plural(n, "run", "runs")))
		}
	}
	var guessed, unclean []string
	for _, f := range c.Figures {
		if f.Guessed {
			guessed = append(guessed, f.Name)
		}
		if f.Kind == KindCorrectness && len(f.Base.Values) > 0 && f.Base.Summary.Max > 0 {
			unclean = append(unclean, fmt.Sprintf("%s (up to %s)", displayName(f), FormatNumber(f.Base.Summary.Max)))
		}
	}
	if len(unclean) > 0 {
		w = append(w, fmt.Sprintf("the base is not clean: %d correctness %s above 0 in base runs, so %s judged by statistics rather than on any increase: %s",
			len(unclean), plural(len(unclean), "figure is", "figures are"), plural(len(unclean), "it is", "they are"), joinList(unclean, 8)))
	}
	if len(guessed) > 0 {
		w = append(w, fmt.Sprintf("%d %s outside the catalogue: %s guessed from %s name and unit (%s)", len(guessed),
			plural(len(guessed), "figure is", "figures are"), plural(len(guessed), "its direction is", "their directions are"),
			plural(len(guessed), "its", "their"), joinList(guessed, 8)))
	}
	return w
}

// generatorLimited counts the runs in which a step's load generator could not keep its
// schedule.
func generatorLimited(s *RunSet) int {
	n := 0
	for _, r := range s.Runs {
		for _, m := range r.Measurements {
			hit := false
			for _, v := range m.Values {
				hit = hit || (v.Name == "api_generator_limited" && v.Value > 0)
			}
			if hit {
				n++
				break
			}
		}
	}
	return n
}

// overlays picks the series worth laying over each other: acked share, API p99 latency and
// the control plane's CPU and memory, of every good run.
func overlays(base, head *RunSet) []Overlay {
	cp := func(r *Run) Component {
		for _, c := range r.Components {
			if c.Name == ComponentControlPlane {
				return c
			}
		}
		return Component{}
	}
	cpuRate := func(s Series) Series {
		out := Series{Name: s.Name, Unit: "cores"}
		for _, p := range rate(s) {
			out.Points = append(out.Points, Point{T: int64(math.Round(p.X * 1000)), V: p.Y})
		}
		return out
	}
	pick := []struct {
		name, unit string
		get        func(*Run) Series
	}{
		{"fleet acked", UnitPercent, func(r *Run) Series { return r.Acked }},
		{"API latency p99", UnitMillis, func(r *Run) Series { return r.API.P99 }},
		{"control-plane CPU", "cores", func(r *Run) Series { return cpuRate(cp(r).CPU) }},
		{"control-plane RSS", UnitBytes, func(r *Run) Series { return cp(r).RSS }},
	}
	var out []Overlay
	for _, p := range pick {
		o := Overlay{Name: p.name, Unit: p.unit}
		points := 0
		for _, r := range base.Runs {
			s := p.get(r)
			o.Base = append(o.Base, s)
			points += len(s.Points)
		}
		for _, r := range head.Runs {
			s := p.get(r)
			o.Head = append(o.Head, s)
			points += len(s.Points)
		}
		if points > 0 {
			out = append(out, o)
		}
	}
	return out
}

func mergeKeys(a, b map[string]string) map[string]struct{} {
	out := map[string]struct{}{}
	for k := range a {
		out[k] = struct{}{}
	}
	for k := range b {
		out[k] = struct{}{}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func joinSentences(parts []string) string { return strings.Join(parts, "; ") }

// joinList joins names, the first max of them, saying how many more there are.
func joinList(names []string, max int) string {
	if len(names) <= max {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:max], ", ") + fmt.Sprintf(" and %d more", len(names)-max)
}
