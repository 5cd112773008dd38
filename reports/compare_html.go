package reports

import (
	"fmt"
	"io"
	"math"

	"github.com/dsnscale/dsnscale/reports/svgchart"
)

type compareRunRow struct {
	Side, ID, Commit, Start, Result, Note string
}

type compareView struct {
	C                            Comparison
	Headline                     string
	Base, Head, Options          string
	Flagged, Inconclusive, Noisy []compareRow
	Steady, Ungated, Info        []compareRow
	Runs                         []compareRunRow
	Charts, FigureCharts         []htmlChart
}

// RenderCompareHTML writes compare.html: the verdict and warnings, the figures with their
// medians, confidence intervals, spread, p-values and the reason for each verdict, each run
// of both sides, the values of each run for the figures that moved, and charts that lay every
// head run's key series over the base runs'.
func RenderCompareHTML(w io.Writer, c Comparison) error {
	plain := func(s string) string { return s }
	v := compareView{C: c, Headline: compareHeadline(c), Base: sideLine(c.Base, plain), Head: sideLine(c.Head, plain), Options: optionsLine(c)}
	for _, r := range compareRows(c, htmlMarks) {
		switch r.Group {
		case groupFlagged:
			v.Flagged = append(v.Flagged, r)
		case groupInconclusive:
			v.Inconclusive = append(v.Inconclusive, r)
		case groupNoisy:
			v.Noisy = append(v.Noisy, r)
		case groupSteady:
			v.Steady = append(v.Steady, r)
		case groupUngated:
			v.Ungated = append(v.Ungated, r)
		default:
			v.Info = append(v.Info, r)
		}
	}
	for _, s := range []struct {
		name string
		info SideInfo
	}{{"base", c.Base}, {"head", c.Head}} {
		for _, r := range s.info.Runs {
			v.Runs = append(v.Runs, compareRunRow{Side: s.name, ID: r.ID, Commit: shortCommit(r.GitCommit), Start: formatTime(r.Start), Result: string(r.Result)})
		}
		for _, b := range s.info.Broken {
			row := compareRunRow{Side: s.name, ID: b.ID, Result: "broken", Note: b.Error}
			if b.Run != nil {
				row.Commit, row.Start = shortCommit(b.Run.Environment.GitCommit), formatTime(b.Run.Start)
			}
			if row.ID == "" {
				row.ID = b.Dir
			}
			v.Runs = append(v.Runs, row)
		}
	}
	v.Charts = trustCharts(overlayCharts(c))
	v.FigureCharts = trustCharts(valueCharts(c))
	return templates.ExecuteTemplate(w, "compare", v)
}

// maxValueCharts bounds the per-figure charts of one comparison.
const maxValueCharts = 12

// valueCharts plot each run's value of the figures judged by statistics that regressed or
// improved, those that gate first: base runs then head runs, so that a shift and the spread
// around it show at a glance.
func valueCharts(c Comparison) []chartView {
	var figs []FigureComparison
	for _, gating := range []bool{true, false} {
		for _, f := range c.Figures {
			if f.P != nil && (f.Verdict == Regressed || f.Verdict == Improved) && (f.Gated && !f.Noisy) == gating {
				figs = append(figs, f)
			}
		}
	}
	var out []chartView
	for _, f := range figs {
		if len(out) == maxValueCharts {
			break
		}
		unit, div := f.Unit, 1.0
		switch f.Unit {
		case UnitSeconds:
			unit, div = millisScale(1000 * math.Max(f.Base.Summary.Max, f.Head.Summary.Max))
			div /= 1000
		case UnitMillis:
			unit, div = millisScale(math.Max(f.Base.Summary.Max, f.Head.Summary.Max))
		case UnitBytes:
			unit, div = bytesScale(math.Max(f.Base.Summary.Max, f.Head.Summary.Max))
		}
		pts := func(vals []float64, from int) []svgchart.Point {
			out := make([]svgchart.Point, len(vals))
			for i, v := range vals {
				out[i] = svgchart.Point{X: float64(from + i), Y: v / div}
			}
			return out
		}
		nb := len(f.Base.Values)
		ch := svgchart.Chart{
			ID: fmt.Sprintf("values-%d", len(out)), Title: displayName(f) + ": each run's value",
			Height: 180,
			X:      svgchart.Axis{Label: "run (base, then head)", Min: svgchart.F(0.5), Max: svgchart.F(float64(nb+len(f.Head.Values)) + 0.5)},
			Y:      svgchart.Axis{Label: displayName(f), Unit: unit},
			Series: []svgchart.Series{
				{Name: "base", Points: pts(f.Base.Values, 1), Style: svgchart.Markers, Color: "#888888"},
				{Name: "head", Points: pts(f.Head.Values, nb+1), Style: svgchart.Markers, Color: "#1f77b4"},
			},
		}
		out = append(out, chartView{ID: ch.ID, Title: ch.Title, SVG: ch.SVG()})
	}
	return out
}

func overlayCharts(c Comparison) []chartView {
	var out []chartView
	for i, o := range c.Overlays {
		all := append(append([]Series(nil), o.Base...), o.Head...)
		unit, div := o.Unit, 1.0
		switch o.Unit {
		case UnitBytes:
			unit, div = bytesScale(seriesMax(all...))
		case UnitMillis:
			unit, div = millisScale(seriesMax(all...))
		}
		y := svgchart.Axis{Label: o.Name, Unit: unit, Min: svgchart.F(0)}
		if o.Unit == UnitPercent {
			y.Max = svgchart.F(100)
		}
		var series []svgchart.Series
		for j, s := range o.Base {
			series = append(series, svgchart.Series{Name: fmt.Sprintf("base %d", j+1), Points: points(s, div), Color: "#888888", Dashed: true})
		}
		for j, s := range o.Head {
			series = append(series, svgchart.Series{Name: fmt.Sprintf("head %d", j+1), Points: points(s, div), Color: "#1f77b4"})
		}
		ch := svgchart.Chart{
			ID: fmt.Sprintf("overlay-%d", i), Title: o.Name + ": head runs over base runs",
			X: svgchart.Axis{Label: "time since start", Time: true, Min: svgchart.F(0)}, Y: y,
			Series: nonEmpty(series...),
		}
		out = append(out, chartView{ID: ch.ID, Title: ch.Title, SVG: ch.SVG()})
	}
	return out
}
