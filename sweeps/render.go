package sweeps

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/dsnscale/dsnscale/reports"
	"github.com/dsnscale/dsnscale/reports/capacity"
)

// scaleParam is the first axis's parameter, which the answer counts in.
func (r *Result) scaleParam() string {
	if len(r.Axes) == 0 {
		return "N"
	}
	return r.Axes[0].Param
}

// unitWord is what a size on the first axis counts: DSNs for the fleet size.
func (r *Result) unitWord() string {
	if p := r.scaleParam(); p != "dsns" {
		return p
	}
	return "DSNs"
}

// CapacityLine is the answer in one sentence.
func (r *Result) CapacityLine(a Analysis) string {
	prefix := ""
	if a.Series != "" {
		prefix = fmt.Sprintf("%s=%s: ", r.Axes[1].Param, a.Series)
	}
	c := a.Capacity
	if c == nil {
		return prefix + "no capacity answer: " + a.CapacityError
	}
	u := r.unitWord()
	interval := ""
	if c.Resamples > 0 {
		interval = fmt.Sprintf(" (%.0f%% interval %s–%s from %d resamples of the repeats)", c.Level*100, sizeLabel(roundSize(c.Low)), sizeLabel(roundSize(c.High)), c.Resamples)
	} else {
		interval = " (one run per size: no interval; repeat the sweep's points for one)"
	}
	switch c.Bound {
	case capacity.Below:
		return fmt.Sprintf("%sbelow %s %s: %s fails already at the smallest size measured", prefix, sizeLabel(c.MinMeasured), u, a.label(c.Limiting))
	case capacity.AtLargest:
		return fmt.Sprintf("%sat least %s %s: every SLO held at every size measured, and %s has too few values for a curve to predict beyond the largest",
			prefix, sizeLabel(c.N), u, a.label(c.Limiting))
	case capacity.AtCap:
		if c.Low >= c.N {
			interval = ""
		} else if c.Resamples > 0 {
			interval = fmt.Sprintf(" (%.0f%% interval from %s, from %d resamples of the repeats)", c.Level*100, sizeLabel(roundSize(c.Low)), c.Resamples)
		}
		return fmt.Sprintf("%sat least %s %s%s: every SLO is predicted to hold up to twice the largest size measured (%s), and no prediction goes further",
			prefix, sizeLabel(c.N), u, interval, sizeLabel(c.MaxMeasured))
	}
	extra := ""
	if c.Extrapolated {
		extra = fmt.Sprintf(", extrapolated beyond the largest size measured (%s)", sizeLabel(c.MaxMeasured))
	}
	return fmt.Sprintf("%s%s %s%s%s; limited by %s", prefix, sizeLabel(roundSize(c.N)), u, interval, extra, a.label(c.Limiting))
}

// label is the name people read for a modelled figure: its SLO, when it has one.
func (a Analysis) label(name string) string {
	for _, m := range a.Models {
		if m.Name == name && m.Label != "" {
			return m.Label
		}
	}
	return name
}

// roundSize rounds a predicted size down to three significant figures: more would claim a
// precision no sweep has.
func roundSize(n float64) float64 {
	if n <= 0 || math.IsInf(n, 0) || math.IsNaN(n) {
		return n
	}
	mag := math.Pow(10, math.Floor(math.Log10(n))-2)
	return math.Floor(n/mag+1e-9) * mag
}

// SearchLine sums up the limit search: its last pass, first fail and runs.
func (r *Result) SearchLine() string {
	if r.Search == nil {
		return ""
	}
	return fmt.Sprintf("last pass %s, first fail %s, %d sizes tried in %d runs", orNone(r.Search.LastPass), orNone(r.Search.FirstFail), len(r.Search.Path), len(r.Points))
}

// orNone is sizeLabel, or "none" for 0 (no such size).
func orNone(n float64) string {
	if n == 0 {
		return "none"
	}
	return sizeLabel(n)
}

func statusLine(r *Result) string {
	s := fmt.Sprintf("%s; %d runs", r.Status, len(r.Points))
	if r.Planned > 0 {
		s = fmt.Sprintf("%s; %d of %d runs", r.Status, len(r.Points), r.Planned)
	}
	if !r.End.IsZero() {
		s += fmt.Sprintf(" in %s", roundDur(r.End.Sub(r.Start)))
	}
	return s
}

// md escapes text for a Markdown table cell.
func md(s string) string {
	r := strings.NewReplacer("|", `\|`, "_", `\_`, "*", `\*`, "<", "&lt;", ">", "&gt;", "\n", " ")
	return r.Replace(s)
}

func observed(v reports.Verdict) string {
	if v.Observed == nil {
		if v.Reason != "" {
			return "missing: " + v.Reason
		}
		return "missing"
	}
	return reports.FormatValue(*v.Observed, v.Unit)
}

// sloNames are the SLOs of the runs, in the order of the first run that has them.
func sloNames(r *Result) []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range r.Points {
		for _, v := range p.SLOs {
			if !seen[v.Name] {
				seen[v.Name] = true
				out = append(out, v.Name)
			}
		}
	}
	return out
}

func pointLabel(r *Result, p PointRecord) string {
	parts := make([]string, len(p.Point.Values))
	for i, v := range p.Point.Values {
		parts[i] = r.Axes[i].Param + "=" + v
	}
	return strings.Join(parts, " ")
}

// RenderSummary writes summary.md: the answer first, then the fits, the verdicts of every
// point (the first failing one marked) and the search path.
func RenderSummary(w io.Writer, r *Result) error {
	var b strings.Builder
	axes := make([]string, len(r.Axes))
	for i, a := range r.Axes {
		axes[i] = a.Param
	}
	fmt.Fprintf(&b, "# Sweep %s: %s over %s\n\n", md(r.Name), md(r.Scenario), md(strings.Join(axes, " × ")))
	for _, a := range r.Analysis {
		fmt.Fprintf(&b, "**Capacity: %s.**\n\n", md(r.CapacityLine(a)))
	}
	fmt.Fprintf(&b, "Status: %s. Each point is an ordinary run in `points/`; figures of broken runs are left out of the fits.\n", md(statusLine(r)))
	if r.Search != nil {
		b.WriteString("\n## Limit search\n\n")
		fmt.Fprintf(&b, "%s. Last pass %s, first fail %s (resolution %.0f%%, bound %s).\n\n", md(r.Search.Reason),
			orNone(r.Search.LastPass), orNone(r.Search.FirstFail), r.Search.Resolution*100, sizeLabel(r.Search.Max))
		b.WriteString("| # | phase | " + md(r.scaleParam()) + " | verdict |\n|---|---|---|---|\n")
		for i, p := range r.Search.Path {
			v := "pass"
			if !p.Pass {
				v = "FAIL"
				if p.Note != "" {
					v += " (" + md(p.Note) + ")"
				}
			}
			fmt.Fprintf(&b, "| %d | %s | %s | %s |\n", i+1, p.Phase, md(p.Value), v)
		}
	}
	for _, a := range r.Analysis {
		title := "Fits"
		if a.Series != "" {
			title += " at " + r.Axes[1].Param + "=" + a.Series
		}
		fmt.Fprintf(&b, "\n## %s\n\n| figure | best form | fit | R² | knee |\n|---|---|---|---|---|\n", md(title))
		for _, m := range a.Models {
			form, fit, r2 := "—", md(m.FitError), "—"
			if len(m.Fits) > 0 {
				f := m.Fits[0]
				form, fit, r2 = string(f.Form), md(f.String()), fmt.Sprintf("%.3f", f.R2)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", md(m.Label), form, fit, r2, md(kneeText(r, m.Knee)))
		}
		b.WriteString("\n")
		if a.Capacity != nil {
			for _, n := range a.Capacity.Notes {
				fmt.Fprintf(&b, "- %s\n", md(n))
			}
		}
		for _, m := range a.Models {
			if m.Note != "" && !m.PerDSN {
				fmt.Fprintf(&b, "- %s: %s\n", md(m.Label), md(m.Note))
			}
		}
	}
	names := sloNames(r)
	b.WriteString("\n## SLO verdicts per run\n\n| point | run | result |")
	for _, n := range names {
		b.WriteString(" " + md(n) + " |")
	}
	b.WriteString("\n|---|---|---|" + strings.Repeat("---|", len(names)) + "\n")
	for i, p := range r.Points {
		label := md(pointLabel(r, p))
		if i == r.FirstFailing {
			label = "**" + label + "** (first failure)"
		}
		res := string(p.Status)
		if p.Status != PointPass {
			res = strings.ToUpper(res)
		}
		fmt.Fprintf(&b, "| %s | %d | %s |", label, p.Repeat, res)
		by := map[string]reports.Verdict{}
		for _, v := range p.SLOs {
			by[v.Name] = v
		}
		for _, n := range names {
			v, ok := by[n]
			switch {
			case !ok:
				b.WriteString(" — |")
			case v.Pass:
				fmt.Fprintf(&b, " pass (%s) |", md(observed(v)))
			default:
				fmt.Fprintf(&b, " **FAIL** (%s) |", md(observed(v)))
			}
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func kneeText(r *Result, k *capacity.Knee) string {
	switch {
	case k == nil:
		return "—"
	case !k.Found:
		return "none: " + k.Reason
	}
	return fmt.Sprintf("at %s %s (grows as N^%.2f up to %s)", sizeLabel(k.N), r.unitWord(), k.Elasticity, sizeLabel(k.To))
}

// RenderJUnit writes junit.xml: one testcase per point and SLO, failed when the SLO failed;
// a point that broke or was aborted gets one testcase "run" with the error.
func RenderJUnit(w io.Writer, r *Result) error {
	suite := reports.JUnitSuite{Name: "sweep." + r.Name, Timestamp: r.Start.UTC().Format("2006-01-02T15:04:05")}
	if !r.End.IsZero() {
		suite.Time = strconv.FormatFloat(r.End.Sub(r.Start).Seconds(), 'f', 3, 64)
	}
	suite.Properties = []reports.JUnitProperty{
		{Name: "sweep.id", Value: r.ID}, {Name: "sweep.scenario", Value: r.Scenario}, {Name: "sweep.status", Value: string(r.Status)}}
	for _, a := range r.Analysis {
		suite.Properties = append(suite.Properties, reports.JUnitProperty{Name: "sweep.capacity" + seriesSuffix(a.Series), Value: r.CapacityLine(a)})
	}
	for _, p := range r.Points {
		class := fmt.Sprintf("dsnscale.sweep.%s.%s", r.Name, strings.ReplaceAll(pointLabel(r, p), " ", "."))
		secs := strconv.FormatFloat(p.End.Sub(p.Start).Seconds(), 'f', 3, 64)
		prefix := fmt.Sprintf("run %d: ", p.Repeat)
		for _, v := range p.SLOs {
			c := reports.JUnitCase{Name: prefix + v.Name, Classname: class, Time: "0"}
			if !v.Pass {
				c.Failure = &reports.JUnitProblem{Message: fmt.Sprintf("%s: observed %s, want %s %s", v.Measurement, observed(v), v.Op, reports.FormatValue(v.Threshold, v.Unit)),
					Type: "SLOViolation", Text: fmt.Sprintf("SLO %s failed at %s (run %d, %s)", v.Name, pointLabel(r, p), p.Repeat, p.Dir)}
			}
			suite.Cases = append(suite.Cases, c)
		}
		if p.Status == PointBroken || p.Status == PointAborted {
			msg := p.Error
			if msg == "" {
				msg = "the run " + string(p.Status)
			}
			suite.Cases = append(suite.Cases, reports.JUnitCase{Name: prefix + "run", Classname: class, Time: secs,
				Error: &reports.JUnitProblem{Message: msg, Type: "Run" + strings.ToUpper(string(p.Status[:1])) + string(p.Status[1:]), Text: msg}})
		}
	}
	return reports.WriteJUnit(w, "dsnscale", suite)
}

func seriesSuffix(s string) string {
	if s == "" {
		return ""
	}
	return "." + s
}
