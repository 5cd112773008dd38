package sweeps

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"

	"github.com/dsnscale/dsnscale/reports"
	"github.com/dsnscale/dsnscale/reports/capacity"
	"github.com/dsnscale/dsnscale/reports/svgchart"
)

const style = `body{font-family:sans-serif;margin:24px;color:#222;max-width:1040px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px}h3{font-size:15px}
.answer{border:2px solid #1f77b4;background:#f2f7fc;padding:12px 16px;font-size:16px;margin:12px 0}
.answer.none{border-color:#d62728;background:#fdf2f2}
table{border-collapse:collapse;margin:8px 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}.fail{color:#b00;font-weight:bold}.pass{color:#176d17}.first td{background:#fff0f0}
.muted{color:#666;font-size:12px}svg{display:block;margin:8px 0}`

// RenderHTML writes report.html: self-contained, charts as inline SVG. The capacity answer is
// at the top; then each modelled figure against the first axis on log-log axes (each run a
// dot, the median a line, the best fit dashed, the SLO's threshold dotted), the per-DSN cost
// curves, the fits with R² and residuals, the verdicts of every run and the search path.
func RenderHTML(w io.Writer, r *Result) error {
	var b strings.Builder
	e := html.EscapeString
	fmt.Fprintf(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>sweep %s</title><style>%s</style></head><body>\n", e(r.Name), style)
	axes := make([]string, len(r.Axes))
	for i, a := range r.Axes {
		axes[i] = a.Param + " = " + strings.Join(a.Values, ", ")
	}
	fmt.Fprintf(&b, "<h1>Sweep %s: %s</h1>\n", e(r.Name), e(r.Scenario))
	for _, a := range r.Analysis {
		class := "answer"
		if a.Capacity == nil || a.Capacity.Bound == capacity.Below {
			class += " none"
		}
		fmt.Fprintf(&b, "<div class=\"%s\"><b>Capacity:</b> %s.</div>\n", class, e(r.CapacityLine(a)))
	}
	fmt.Fprintf(&b, "<p>%s. Axes: %s; %d run(s) per point.", e(statusLine(r)), e(strings.Join(axes, "; ")), r.Repeat)
	if len(r.Set) > 0 {
		var set []string
		for _, k := range sortedKeys(r.Set) {
			set = append(set, k+"="+r.Set[k])
		}
		fmt.Fprintf(&b, " Fixed: %s.", e(strings.Join(set, ", ")))
	}
	b.WriteString(" The capacity is the largest size at which every SLO is predicted to hold by the best fit of its value; an equality SLO (such as no DSN lost) bounds it below the first size where a run failed it. Predictions never go beyond twice the largest size measured. Broken runs are left out of every fit.</p>\n")
	if d := r.Description; d != "" {
		fmt.Fprintf(&b, "<p class=\"muted\">%s</p>\n", e(d))
	}
	if r.Search != nil {
		writeSearch(&b, r)
	}
	for _, a := range r.Analysis {
		writeAnalysis(&b, r, a)
	}
	writeVerdicts(&b, r)
	b.WriteString("</body></html>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func writeSearch(b *strings.Builder, r *Result) {
	e := html.EscapeString
	s := r.Search
	fmt.Fprintf(b, "<h2>Limit search</h2>\n<p>%s: last pass %s, first fail %s (resolution %.0f%%, from %s up to at most %s).</p>\n",
		e(s.Reason), orNone(s.LastPass), orNone(s.FirstFail), s.Resolution*100, sizeLabel(s.Start), sizeLabel(s.Max))
	pass, fail := svgchart.Series{Name: "pass", Style: svgchart.Scatter, Color: "#2ca02c"}, svgchart.Series{Name: "fail", Style: svgchart.Scatter, Color: "#d62728"}
	path := svgchart.Series{Name: "search path", Style: svgchart.Line, Color: "#999", Dashed: true}
	for i, p := range s.Path {
		pt := svgchart.Point{X: float64(i + 1), Y: p.N}
		path.Points = append(path.Points, pt)
		if p.Pass {
			pass.Points = append(pass.Points, pt)
		} else {
			fail.Points = append(fail.Points, pt)
		}
	}
	chart := svgchart.Chart{ID: "search", Title: "search path", Height: 220, X: svgchart.Axis{Label: "probe"}, Y: svgchart.Axis{Label: r.scaleParam(), Log: true},
		Series: []svgchart.Series{path, pass, fail}}
	b.WriteString(chart.SVG())
	b.WriteString("\n<table><tr><th>#</th><th>phase</th><th>" + e(r.scaleParam()) + "</th><th>verdict</th></tr>\n")
	for i, p := range s.Path {
		v := `<span class="pass">pass</span>`
		if !p.Pass {
			v = `<span class="fail">FAIL</span> ` + e(p.Note)
		}
		fmt.Fprintf(b, "<tr><td>%d</td><td>%s</td><td>%s</td><td>%s</td></tr>\n", i+1, e(p.Phase), e(p.Value), v)
	}
	b.WriteString("</table>\n")
}

func writeAnalysis(b *strings.Builder, r *Result, a Analysis) {
	e := html.EscapeString
	title := "Figures against " + r.scaleParam()
	if a.Series != "" {
		title += " at " + r.Axes[1].Param + "=" + a.Series
	}
	fmt.Fprintf(b, "<h2>%s</h2>\n", e(title))
	var capN float64
	if a.Capacity != nil && a.Capacity.Bound != capacity.Below {
		capN = a.Capacity.N
	}
	var perDSN []Model
	for _, m := range a.Models {
		if m.PerDSN {
			perDSN = append(perDSN, m)
			continue
		}
		b.WriteString(modelChart(r, a.Series, m, capN))
		b.WriteString("\n")
		writeNote(b, m)
	}
	if len(perDSN) > 0 {
		fmt.Fprintf(b, "<h3>Cost per DSN</h3>\n<p class=\"muted\">The control plane's CPU-seconds per DSN per minute of run, and its peak RSS per DSN: flat means it scales linearly, rising means each DSN costs more as the fleet grows.</p>\n")
		for _, m := range perDSN {
			b.WriteString(modelChart(r, a.Series, m, capN))
			b.WriteString("\n")
			writeNote(b, m)
		}
	}
	b.WriteString("<h3>Fits</h3>\n<table><tr><th>figure</th><th>form</th><th>fit</th><th>R²</th><th>AICc</th><th>residuals (observed − fit)</th><th>knee</th></tr>\n")
	for _, m := range a.Models {
		if len(m.Fits) == 0 {
			fmt.Fprintf(b, "<tr><td>%s</td><td colspan=\"5\">no fit: %s</td><td>%s</td></tr>\n", e(m.Label), e(m.FitError), e(kneeText(r, m.Knee)))
			continue
		}
		for i, f := range m.Fits {
			name, knee, form := "", "", e(string(f.Form))
			if i == 0 {
				name, knee, form = e(m.Label), e(kneeText(r, m.Knee)), "<b>"+form+"</b> (best)"
			}
			res := make([]string, len(f.Residuals))
			for j, v := range f.Residuals {
				res[j] = reports.FormatValue(v, m.Unit)
			}
			fmt.Fprintf(b, "<tr><td>%s</td><td>%s</td><td>%s</td><td>%.3f</td><td>%.1f</td><td class=\"muted\">%s</td><td>%s</td></tr>\n",
				name, form, e(f.String()), f.R2, f.AICc, e(strings.Join(res, ", ")), knee)
		}
	}
	b.WriteString("</table>\n")
	if a.Capacity != nil && len(a.Capacity.Notes) > 0 {
		b.WriteString("<ul class=\"muted\">")
		for _, n := range a.Capacity.Notes {
			fmt.Fprintf(b, "<li>%s</li>", e(n))
		}
		b.WriteString("</ul>\n")
	}
}

func writeNote(b *strings.Builder, m Model) {
	if m.Note != "" {
		fmt.Fprintf(b, "<p class=\"muted\">%s</p>\n", html.EscapeString(m.Note))
	}
}

// modelChart draws one figure against the first axis on log-log axes.
func modelChart(r *Result, series string, m Model, capN float64) string {
	runs := svgchart.Series{Name: "runs", Style: svgchart.Scatter, Color: "#1f77b4"}
	for _, o := range m.Observations {
		runs.Points = append(runs.Points, svgchart.Point{X: o.N, Y: o.Y})
	}
	med := svgchart.Series{Name: "median", Style: svgchart.Line, Color: "#1f77b4"}
	for _, o := range m.Medians {
		med.Points = append(med.Points, svgchart.Point{X: o.N, Y: o.Y})
	}
	list := []svgchart.Series{runs, med}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, o := range m.Medians {
		lo, hi = math.Min(lo, o.N), math.Max(hi, o.N)
	}
	if len(m.Fits) > 0 && lo < hi {
		f := m.Fits[0]
		to := hi
		if capN > hi {
			to = math.Min(capN, capacity.MaxExtrapolation*hi)
		}
		fit := svgchart.Series{Name: fmt.Sprintf("fit: %s (R² %.3f)", f.Form, f.R2), Style: svgchart.Line, Color: "#ff7f0e", Dashed: true}
		const steps = 40
		for i := 0; i <= steps; i++ {
			n := lo * math.Pow(to/lo, float64(i)/steps)
			fit.Points = append(fit.Points, svgchart.Point{X: n, Y: f.Predict(n)})
		}
		list = append(list, fit)
	}
	if m.SLO != nil && m.SLO.Threshold > 0 && lo < hi {
		to := hi
		if capN > hi {
			to = capN
		}
		list = append(list, svgchart.Series{Name: fmt.Sprintf("SLO %s %s", m.SLO.Op, reports.FormatValue(m.SLO.Threshold, m.Unit)), Style: svgchart.Line, Color: "#d62728", Dashed: true,
			Points: []svgchart.Point{{X: lo, Y: m.SLO.Threshold}, {X: to, Y: m.SLO.Threshold}}})
	}
	var marks []svgchart.Mark
	if capN > 0 {
		marks = append(marks, svgchart.Mark{At: capN, Label: "capacity " + sizeLabel(roundSize(capN))})
	}
	if m.Knee != nil && m.Knee.Found {
		marks = append(marks, svgchart.Mark{At: m.Knee.N, Label: "knee " + sizeLabel(m.Knee.N)})
	}
	// Room right of the last mark for its label.
	var xMax *float64
	if last := math.Max(hi, capN); len(marks) > 0 && !math.IsInf(last, 0) {
		xMax = svgchart.F(last * 1.4)
	}
	empty := "no run measured it"
	if len(m.Observations) > 0 {
		empty = "every value is 0 (or below): nothing to draw on a log scale"
	}
	c := svgchart.Chart{
		ID: "m-" + m.Name + "-" + series, Title: m.Label, Height: 240,
		X: svgchart.Axis{Label: r.scaleParam(), Log: true, Max: xMax}, Y: svgchart.Axis{Unit: m.Unit, Log: true},
		Series: list, Marks: marks, MarkLegend: "capacity / knee",
		Empty: empty,
	}
	return c.SVG()
}

func writeVerdicts(b *strings.Builder, r *Result) {
	e := html.EscapeString
	names := sloNames(r)
	b.WriteString("<h2>SLO verdicts per run</h2>\n<table><tr><th>point</th><th>run</th><th>result</th><th>time</th>")
	for _, n := range names {
		fmt.Fprintf(b, "<th>%s</th>", e(n))
	}
	b.WriteString("</tr>\n")
	for i, p := range r.Points {
		class, label := "", e(pointLabel(r, p))
		if i == r.FirstFailing {
			class, label = ` class="first"`, "<b>"+label+"</b> (first failure)"
		}
		res := `<span class="pass">pass</span>`
		if p.Status != PointPass {
			res = `<span class="fail">` + e(strings.ToUpper(string(p.Status))) + `</span>`
			if p.Error != "" && p.Status != PointFail {
				res += " " + e(p.Error)
			}
		}
		fmt.Fprintf(b, "<tr%s><td>%s</td><td><a href=\"%s/report.html\">%d</a></td><td>%s</td><td>%s</td>", class, label, e(p.Dir), p.Repeat, res, roundDur(p.End.Sub(p.Start)))
		by := map[string]reports.Verdict{}
		for _, v := range p.SLOs {
			by[v.Name] = v
		}
		for _, n := range names {
			v, ok := by[n]
			switch {
			case !ok:
				b.WriteString("<td>—</td>")
			case v.Pass:
				fmt.Fprintf(b, "<td class=\"pass\">%s</td>", e(observed(v)))
			default:
				fmt.Fprintf(b, "<td class=\"fail\">%s</td>", e(observed(v)))
			}
		}
		b.WriteString("</tr>\n")
	}
	b.WriteString("</table>\n")
}
