package reports

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"time"
)

// ErrTolerance marks a malformed Tolerance.
var ErrTolerance = errors.New("invalid tolerance")

// DefaultToleranceFraction is the relative change Compare lets pass when not told otherwise.
const DefaultToleranceFraction = 0.1

// Tolerance is how far a figure may move, relative to the base run, before Compare flags it.
type Tolerance struct {
	// Default applies to every figure without an entry in Figures: 0.1 lets ±10% pass.
	// Zero means DefaultToleranceFraction.
	Default float64 `json:"default"`
	// Figures overrides Default for figures by name.
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

// For returns the tolerance for one figure.
func (t Tolerance) For(figure string) float64 {
	if v, ok := t.Figures[figure]; ok {
		return v
	}
	if t.Default == 0 {
		return DefaultToleranceFraction
	}
	return t.Default
}

// Change classifies the difference of one figure or SLO between two runs.
type Change string

// The kinds of change.
const (
	Unchanged Change = "unchanged" // within tolerance, or the same verdict
	Improved  Change = "improved"  // better beyond tolerance, or an SLO now passing
	Regressed Change = "regressed" // worse beyond tolerance, or an SLO now failing
	Changed   Change = "changed"   // beyond tolerance for a Neutral figure
	Added     Change = "added"     // only in head (a failing SLO added is Regressed)
	Removed   Change = "removed"   // only in base
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

// FigureDelta is one figure in both runs.
type FigureDelta struct {
	Name   string    `json:"name"`
	Label  string    `json:"label"`
	Unit   string    `json:"unit,omitempty"`
	Better Direction `json:"better"`
	// Base and Head are nil when the figure is missing from that run.
	Base *float64 `json:"base"`
	Head *float64 `json:"head"`
	// Ratio is Head/Base; nil when either is missing or Base is 0 and Head is not.
	Ratio     *float64 `json:"ratio"`
	Tolerance float64  `json:"tolerance"`
	Change    Change   `json:"change"`
}

// SLOChange is one SLO's verdict in both runs; Base or Head is nil when the SLO is missing
// from that run.
type SLOChange struct {
	Name   string   `json:"name"`
	Base   *Verdict `json:"base"`
	Head   *Verdict `json:"head"`
	Change Change   `json:"change"`
}

// Comparison is the result of comparing a head run against a base run.
type Comparison struct {
	Base      RunInfo       `json:"base"`
	Head      RunInfo       `json:"head"`
	Tolerance Tolerance     `json:"tolerance"`
	Figures   []FigureDelta `json:"figures"`
	SLOs      []SLOChange   `json:"slos"`
	// Overlays are key series of both runs, for charts that lay one over the other.
	Overlays []Overlay `json:"overlays,omitempty"`
	// Warnings say why the comparison may mislead: different scenarios, parameters or machines.
	Warnings []string `json:"warnings,omitempty"`
}

// Overlay is one series as both runs recorded it.
type Overlay struct {
	Name string `json:"name"`
	Unit string `json:"unit"`
	Base Series `json:"base"`
	Head Series `json:"head"`
}

// Regressions counts the figures and SLOs that got worse.
func (c Comparison) Regressions() int {
	n := 0
	for _, f := range c.Figures {
		if f.Change == Regressed {
			n++
		}
	}
	for _, s := range c.SLOs {
		if s.Change == Regressed {
			n++
		}
	}
	return n
}

// Regressed reports whether anything got worse beyond tolerance, or an SLO started failing.
func (c Comparison) Regressed() bool { return c.Regressions() > 0 }

// Compare compares head against base figure by figure (see Run.Figures) and SLO by SLO. A
// figure is flagged when it moved by more than its tolerance relative to base, as a
// regression or an improvement according to its direction. An invalid tolerance is replaced
// by the default, with a warning.
func Compare(base, head *Run, tol Tolerance) Comparison {
	c := Comparison{Base: infoOf(base), Head: infoOf(head), Tolerance: tol}
	if err := tol.Validate(); err != nil {
		c.Warnings = append(c.Warnings, fmt.Sprintf("%v; using ±%g%% for every figure", err, DefaultToleranceFraction*100))
		c.Tolerance = DefaultTolerance()
	}
	c.Warnings = append(c.Warnings, comparabilityWarnings(base, head)...)

	bf, hf := base.Figures(), head.Figures()
	hIndex := map[string]Figure{}
	for _, f := range hf {
		hIndex[f.Name] = f
	}
	inBase := map[string]bool{}
	for _, b := range bf {
		inBase[b.Name] = true
		h, ok := hIndex[b.Name]
		d := FigureDelta{Name: b.Name, Label: b.Label, Unit: b.Unit, Better: b.Better, Base: Float(b.Value), Tolerance: c.Tolerance.For(b.Name), Change: Removed}
		if ok {
			d.Head = Float(h.Value)
			d.Ratio, d.Change = judge(b.Value, h.Value, d.Better, d.Tolerance)
		}
		c.Figures = append(c.Figures, d)
	}
	for _, h := range hf {
		if !inBase[h.Name] {
			c.Figures = append(c.Figures, FigureDelta{Name: h.Name, Label: h.Label, Unit: h.Unit, Better: h.Better, Head: Float(h.Value), Tolerance: c.Tolerance.For(h.Name), Change: Added})
		}
	}
	c.SLOs = compareSLOs(base.SLOs, head.SLOs)
	c.Overlays = overlays(base, head)
	return c
}

// overlays picks the series worth laying over each other: acked share, API p99 latency and
// the control plane's CPU and memory.
func overlays(base, head *Run) []Overlay {
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
	all := []Overlay{
		{Name: "fleet acked", Unit: UnitPercent, Base: base.Acked, Head: head.Acked},
		{Name: "API latency p99", Unit: UnitMillis, Base: base.API.P99, Head: head.API.P99},
		{Name: "control-plane CPU", Unit: "cores", Base: cpuRate(cp(base).CPU), Head: cpuRate(cp(head).CPU)},
		{Name: "control-plane RSS", Unit: UnitBytes, Base: cp(base).RSS, Head: cp(head).RSS},
	}
	var out []Overlay
	for _, o := range all {
		if len(o.Base.Points)+len(o.Head.Points) > 0 {
			out = append(out, o)
		}
	}
	return out
}

// judge classifies the move from base to head. The change is taken relative to |base| so that
// negative figures behave; a base of zero makes any other head a change beyond tolerance.
func judge(base, head float64, better Direction, tol float64) (*float64, Change) {
	var ratio *float64
	switch {
	case base != 0:
		ratio = Float(head / base)
	case head == 0:
		ratio = Float(1)
	}
	var rel float64
	switch {
	case base == head:
		rel = 0
	case base == 0:
		rel = math.Copysign(math.Inf(1), head)
	default:
		rel = (head - base) / math.Abs(base)
	}
	if math.Abs(rel) <= tol+1e-12 {
		return ratio, Unchanged
	}
	worse := (better == LowerIsBetter && rel > 0) || (better == HigherIsBetter && rel < 0)
	switch {
	case better != LowerIsBetter && better != HigherIsBetter:
		return ratio, Changed
	case worse:
		return ratio, Regressed
	}
	return ratio, Improved
}

func compareSLOs(base, head []Verdict) []SLOChange {
	var out []SLOChange
	hIndex := map[string]int{}
	for i, v := range head {
		hIndex[v.Name] = i
	}
	inBase := map[string]bool{}
	for i := range base {
		b := &base[i]
		inBase[b.Name] = true
		ch := SLOChange{Name: b.Name, Base: b, Change: Removed}
		if j, ok := hIndex[b.Name]; ok {
			ch.Head = &head[j]
			switch {
			case b.Pass == ch.Head.Pass:
				ch.Change = Unchanged
			case ch.Head.Pass:
				ch.Change = Improved
			default:
				ch.Change = Regressed
			}
		}
		out = append(out, ch)
	}
	for i := range head {
		h := &head[i]
		if inBase[h.Name] {
			continue
		}
		ch := SLOChange{Name: h.Name, Head: h, Change: Added}
		if !h.Pass {
			ch.Change = Regressed
		}
		out = append(out, ch)
	}
	return out
}

func comparabilityWarnings(base, head *Run) []string {
	var w []string
	if base.Scenario.Name != head.Scenario.Name {
		w = append(w, fmt.Sprintf("the runs are of different scenarios (%q and %q)", base.Scenario.Name, head.Scenario.Name))
	}
	for _, k := range sortedKeys(mergeKeys(base.Params, head.Params)) {
		bv, bok := base.Params[k]
		hv, hok := head.Params[k]
		switch {
		case !bok:
			w = append(w, fmt.Sprintf("parameter %s is set only in head (%q)", k, hv))
		case !hok:
			w = append(w, fmt.Sprintf("parameter %s is set only in base (%q)", k, bv))
		case bv != hv:
			w = append(w, fmt.Sprintf("parameter %s differs: %q in base, %q in head", k, bv, hv))
		}
	}
	if base.Environment.NumCPU != head.Environment.NumCPU {
		w = append(w, fmt.Sprintf("the runs had different CPU counts (%d and %d)", base.Environment.NumCPU, head.Environment.NumCPU))
	}
	if base.Environment.Hostname != head.Environment.Hostname {
		w = append(w, fmt.Sprintf("the runs ran on different hosts (%q and %q)", base.Environment.Hostname, head.Environment.Hostname))
	}
	if base.Result == ResultAborted || head.Result == ResultAborted {
		w = append(w, "a run was aborted: its figures cover only part of the scenario")
	}
	return w
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
