package reports

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/dsnscale/dsnscale/reports/stats"
)

// FigureComparison is one figure across the base and head runs, and its verdict.
type FigureComparison struct {
	Name    string     `json:"name"`
	Label   string     `json:"label"`
	Unit    string     `json:"unit,omitempty"`
	Better  Direction  `json:"better"`
	Kind    FigureKind `json:"kind"`
	Guessed bool       `json:"guessed,omitempty"`
	// Gated says whether the verdict counts towards the comparison's: every correctness
	// figure, and the performance figures the options name (all of them by default).
	Gated bool `json:"gated"`
	// Tolerance is the relative move of the median a performance figure is allowed.
	Tolerance float64 `json:"tolerance,omitempty"`
	Base      Side    `json:"base"`
	Head      Side    `json:"head"`
	// Change is (head median - base median) / |base median| for a figure judged by statistics
	// (P is set), the highest head value for a correctness figure from a clean base; nil when
	// undefined.
	Change *float64 `json:"change"`
	// P is the Mann-Whitney U test's p-value, for figures judged by statistics: performance
	// figures, and correctness figures whose base is not clean.
	P       *float64      `json:"p"`
	Verdict FigureVerdict `json:"verdict"`
	// Noisy says the base runs spread too much for this many runs to tell a move of the
	// tolerance's size from noise (fewer runs than stats.RunsNeeded for the base's coefficient of
	// variation): the figure does not gate in this comparison, whatever its verdict. RunsNeeded is about how many runs per side
	// would do.
	Noisy      bool `json:"noisy,omitempty"`
	RunsNeeded int  `json:"runsNeeded,omitempty"`
	// Why explains the verdict.
	Why string `json:"why"`
}

// Side is one figure in one side's runs.
type Side struct {
	// Values are the figure's values in the runs that have it, in run order.
	Values []float64 `json:"values"`
	// Runs is how many runs could have had it; the others lack it.
	Runs    int           `json:"runs"`
	Summary stats.Summary `json:"-"`
}

// Missing is how many runs lack the figure.
func (s Side) Missing() int { return s.Runs - len(s.Values) }

// MarshalJSON writes the summary's finite numbers; an undefined one (no interval, no spread)
// is null.
func (s Side) MarshalJSON() ([]byte, error) {
	fin := func(v float64) *float64 {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
		return &v
	}
	values := s.Values
	if values == nil {
		values = []float64{}
	}
	return json.Marshal(struct {
		Values []float64 `json:"values"`
		Runs   int       `json:"runs"`
		Median *float64  `json:"median"`
		Lo     *float64  `json:"lo"`
		Hi     *float64  `json:"hi"`
		CV     *float64  `json:"cv"`
		Max    *float64  `json:"max"`
	}{values, s.Runs, fin(s.Summary.Median), fin(s.Summary.Lo), fin(s.Summary.Hi), fin(s.Summary.CV), fin(s.Summary.Max)})
}

// IsSLOFigure reports whether a figure is an SLO's verdict (1 failed, 0 passed).
func IsSLOFigure(name string) bool {
	return len(name) > len(SLOFigurePrefix) && name[:len(SLOFigurePrefix)] == SLOFigurePrefix
}

// sampled is a figure's description and its values in each run of a side (nil: missing).
type sampled struct {
	fig        Figure
	base, head []*float64
}

// sample gathers every figure of every run: the runs' own figures, one per SLO and
// run.broken, in the order they first appear.
func sample(base, head *RunSet) []*sampled {
	var order []*sampled
	index := map[string]*sampled{}
	get := func(f Figure) *sampled {
		s, ok := index[f.Name]
		if !ok {
			s = &sampled{fig: f, base: make([]*float64, len(base.Runs)), head: make([]*float64, len(head.Runs))}
			index[f.Name] = s
			order = append(order, s)
		}
		return s
	}
	for side, set := range []*RunSet{base, head} {
		for i, r := range set.Runs {
			for _, f := range runFigures(r) {
				s := get(f)
				vals := s.base
				if side == 1 {
					vals = s.head
				}
				vals[i] = Float(f.Value)
			}
		}
	}
	// run.broken covers every run, broken ones included.
	broken := classify(Figure{Name: FigureBroken, Label: "broken runs"}, FigureBroken, "")
	b := &sampled{fig: broken}
	for side, set := range []*RunSet{base, head} {
		var vals []*float64
		for range set.Runs {
			vals = append(vals, Float(0))
		}
		for range set.Broken {
			vals = append(vals, Float(1))
		}
		if side == 0 {
			b.base = vals
		} else {
			b.head = vals
		}
	}
	return append([]*sampled{b}, order...)
}

// runFigures are a run's figures and one per SLO.
func runFigures(r *Run) []Figure {
	out := r.Figures()
	for _, v := range r.SLOs {
		failed := 0.0
		if !v.Pass {
			failed = 1
		}
		out = append(out, classify(Figure{Name: SLOFigurePrefix + v.Name, Label: "SLO " + v.Name, Value: failed}, SLOFigurePrefix, ""))
	}
	return out
}

func present(vals []*float64) []float64 {
	var out []float64
	for _, v := range vals {
		if v != nil {
			out = append(out, *v)
		}
	}
	return out
}

// matches reports whether a figure is named by name: its full name or its SLO name.
func matches(figure, name string) bool { return figure == name || SLOName(figure) == name }

func judgeAll(base, head *RunSet, opts CompareOptions) []FigureComparison {
	var out []FigureComparison
	for _, s := range sample(base, head) {
		f := s.fig
		for name, d := range opts.Better {
			if _, known := LookupFigure(f.Name); !known && matches(f.Name, name) {
				f.Better, f.Guessed, f.Kind = d, false, KindPerformance
			}
		}
		fc := FigureComparison{Name: f.Name, Label: f.Label, Unit: f.Unit, Better: f.Better, Kind: f.Kind, Guessed: f.Guessed}
		fc.Base = Side{Values: present(s.base), Runs: len(s.base)}
		fc.Head = Side{Values: present(s.head), Runs: len(s.head)}
		fc.Base.Summary = stats.Summarize(fc.Base.Values, 0)
		fc.Head.Summary = stats.Summarize(fc.Head.Values, 0)
		switch f.Kind {
		case KindCorrectness:
			fc.Gated = true
			judgeCorrectness(&fc, opts.Tolerance.For(f.Name), opts.Alpha)
		case KindPerformance:
			fc.Gated = len(opts.Gate) == 0
			for _, g := range opts.Gate {
				fc.Gated = fc.Gated || matches(f.Name, g)
			}
			fc.Tolerance = opts.Tolerance.For(f.Name)
			judgePerformance(&fc, opts.Alpha)
		default:
			fc.Verdict, fc.Why = Info, "counts what the run did; not judged"
		}
		out = append(out, fc)
	}
	return out
}

// missingWhy says which side lacks a figure, or "" when both have values.
func missingWhy(fc *FigureComparison) string {
	b, h := len(fc.Base.Values) == 0, len(fc.Head.Values) == 0
	switch {
	case b && h:
		return "missing in base and head"
	case b:
		return fmt.Sprintf("missing in base (%d %s)", fc.Base.Runs, plural(fc.Base.Runs, "run", "runs"))
	case h:
		return fmt.Sprintf("missing in head (%d %s)", fc.Head.Runs, plural(fc.Head.Runs, "run", "runs"))
	}
	return ""
}

// partlyMissing notes the runs of a side that lack a figure another run of it has.
func partlyMissing(fc *FigureComparison) string {
	note := ""
	for _, s := range []struct {
		name string
		side Side
	}{{"base", fc.Base}, {"head", fc.Head}} {
		if m := s.side.Missing(); m > 0 {
			note += fmt.Sprintf("; missing in %d of %d %s runs", m, s.side.Runs, s.name)
		}
	}
	return note
}

// judgeCorrectness: from a clean base (no run above 0), any head run above 0 is a
// regression, without statistics. A base that is not clean (watch duplicates in every run of a
// restart storm, say) varies from run to run like any count, and any increase over its highest
// value would be noise as often as not: such a figure is judged like a performance figure, and
// the comparison warns that the base is not clean.
func judgeCorrectness(fc *FigureComparison, tolerance, alpha float64) {
	if why := missingWhy(fc); why != "" {
		fc.Verdict, fc.Why = Missing, why+": not judged"
		return
	}
	if b := fc.Base.Summary.Max; b > 0 {
		fc.Tolerance = tolerance
		judgePerformance(fc, alpha)
		fc.Why = fmt.Sprintf("base not clean (up to %s), so judged by statistics: %s", FormatNumber(b), fc.Why)
		return
	}
	h := fc.Head.Summary.Max
	fc.Change = Float(h)
	count := 0
	for _, v := range fc.Head.Values {
		if v > 0 {
			count++
		}
	}
	switch {
	case h > 0 && IsSLOFigure(fc.Name):
		fc.Verdict, fc.Why = Regressed, fmt.Sprintf("fails in %d of %d head runs, in no base run", count, len(fc.Head.Values))
	case h > 0:
		fc.Verdict, fc.Why = Regressed, fmt.Sprintf("rose from 0 to %s (in %d of %d head runs): any increase from a clean base is a regression", FormatNumber(h), count, len(fc.Head.Values))
	default:
		fc.Verdict, fc.Why = Unchanged, "none in base or head"
	}
	fc.Why += partlyMissing(fc)
}

// judgePerformance: worse direction AND beyond tolerance AND significant is a regression.
func judgePerformance(fc *FigureComparison, alpha float64) {
	if why := missingWhy(fc); why != "" {
		fc.Verdict, fc.Why = Missing, why+": not judged"
		return
	}
	bs, hs := fc.Base.Summary, fc.Head.Summary
	beyond := false
	switch {
	case bs.Median == hs.Median:
		fc.Change = Float(0)
	case bs.Median == 0:
		beyond = true // any move from 0 is beyond a relative tolerance
	default:
		ch := (hs.Median - bs.Median) / math.Abs(bs.Median)
		fc.Change = Float(ch)
		beyond = math.Abs(ch) > fc.Tolerance+1e-12
	}
	p := stats.UTest(fc.Base.Values, fc.Head.Values)
	fc.P = Float(p)
	worse := (fc.Better == LowerIsBetter && hs.Median > bs.Median) || (fc.Better == HigherIsBetter && hs.Median < bs.Median)

	// The base runs' spread says whether this many runs can tell a move of the tolerance's size
	// from noise: the base is the reference, and a head that spreads more (one run of five
	// stalling, say) shows the change, not the figure's noise.
	nb, nh := len(fc.Base.Values), len(fc.Head.Values)
	cv := bs.CV
	if math.IsNaN(cv) || math.IsInf(cv, 0) {
		cv = 0
	}
	if need := stats.RunsNeeded(cv, fc.Tolerance, alpha); min(nb, nh) < need && stats.CanDetect(nb, nh, alpha) {
		fc.Noisy, fc.RunsNeeded = true, need
	}
	switch {
	case !stats.CanDetect(nb, nh, alpha):
		fc.Verdict = Inconclusive
		fc.Why = fmt.Sprintf("need >= %d runs per side for significance at alpha %v (have %d and %d)", stats.MinRuns(alpha), alpha, nb, nh)
	case !beyond:
		fc.Verdict, fc.Why = Unchanged, fmt.Sprintf("within ±%s%%", FormatNumber(fc.Tolerance*100))
	case p > alpha:
		fc.Verdict, fc.Why = Unchanged, fmt.Sprintf("beyond ±%s%% but not significant (p=%s > %v)", FormatNumber(fc.Tolerance*100), formatP(p), alpha)
	case worse:
		fc.Verdict, fc.Why = Regressed, fmt.Sprintf("worse beyond ±%s%%, significant (p=%s <= %v)", FormatNumber(fc.Tolerance*100), formatP(p), alpha)
	default:
		fc.Verdict, fc.Why = Improved, fmt.Sprintf("better beyond ±%s%%, significant (p=%s <= %v)", FormatNumber(fc.Tolerance*100), formatP(p), alpha)
	}
	if fc.Noisy {
		fc.Why += fmt.Sprintf("; too noisy to gate with %d runs: the base runs spread by %s, about %d runs per side would tell a %s%% move from noise",
			min(nb, nh), formatPercent(cv*100), fc.RunsNeeded, FormatNumber(fc.Tolerance*100))
	}
	switch {
	case hs.CV > 2*bs.CV && hs.CV > fc.Tolerance && fc.Noisy:
		fc.Why += fmt.Sprintf("; the head runs spread by %s", formatPercent(hs.CV*100))
	case hs.CV > 2*bs.CV && hs.CV > fc.Tolerance:
		fc.Why += fmt.Sprintf("; the head runs spread by %s, the base runs by %s", formatPercent(hs.CV*100), formatPercent(bs.CV*100))
	}
	fc.Why += partlyMissing(fc)
}

// formatP writes a p-value with two significant digits.
func formatP(p float64) string {
	switch {
	case p >= 0.1:
		return fmt.Sprintf("%.2f", p)
	case p >= 0.001:
		return fmt.Sprintf("%.3f", p)
	}
	return fmt.Sprintf("%.1e", p)
}
