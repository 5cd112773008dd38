package reports

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/dsnscale/dsnscale/reports/svgchart"
)

// chartView is one chart of a report, rendered.
type chartView struct {
	ID    string
	Title string
	SVG   string
}

// timeFrame is what every time chart of a run shares: the X range, the fault windows and the
// step boundaries.
type timeFrame struct {
	x     svgchart.Axis
	bands []svgchart.Band
	marks []svgchart.Mark
}

func newTimeFrame(r *Run) timeFrame {
	dur := r.Duration().Seconds()
	f := timeFrame{x: svgchart.Axis{Label: "time since start", Time: true, Min: svgchart.F(0), Max: svgchart.F(math.Max(dur, 0))}}
	for _, ft := range r.Faults {
		end := ft.End
		label := ft.Kind
		if ft.Target != "" {
			label += ": " + ft.Target
		}
		if end.IsZero() {
			end = r.End
			label += " (not recovered)"
		}
		f.bands = append(f.bands, svgchart.Band{From: ft.Start.Sub(r.Start).Seconds(), To: end.Sub(r.Start).Seconds(), Label: label})
	}
	for _, s := range r.Steps {
		f.marks = append(f.marks, svgchart.Mark{At: s.Start.Sub(r.Start).Seconds(), Label: s.Name})
	}
	return f
}

func (f timeFrame) chart(id, title string, y svgchart.Axis, series []svgchart.Series) chartView {
	c := svgchart.Chart{ID: id, Title: title, X: f.x, Y: y, Series: series, Bands: f.bands, Marks: f.marks}
	return chartView{ID: id, Title: title, SVG: c.SVG()}
}

// points converts a series to chart points (seconds since start), scaled by div.
func points(s Series, div float64) []svgchart.Point {
	out := make([]svgchart.Point, len(s.Points))
	for i, p := range s.Points {
		out[i] = svgchart.Point{X: float64(p.T) / 1000, Y: p.V / div}
	}
	return out
}

// samplingGap is how far apart, in seconds, two points of a series must be for the chart to
// take the stretch between them as a gap in sampling rather than draw a line across it: three
// times the series' usual interval (its median spacing). 0 when the series is too short to say.
func samplingGap(s Series) float64 {
	if len(s.Points) < 3 {
		return 0
	}
	steps := make([]float64, 0, len(s.Points)-1)
	for i := 1; i < len(s.Points); i++ {
		steps = append(steps, float64(s.Points[i].T-s.Points[i-1].T)/1000)
	}
	return 3 * median(steps)
}

// rate turns cumulative samples into a per-second rate at each sample after the first; across a
// gap in sampling (see samplingGap) there is no rate, since it would average over the gap.
func rate(s Series) []svgchart.Point {
	var out []svgchart.Point
	gap := samplingGap(s)
	for i := 1; i < len(s.Points); i++ {
		dt := float64(s.Points[i].T-s.Points[i-1].T) / 1000
		if dt <= 0 || (gap > 0 && dt > gap) {
			continue
		}
		out = append(out, svgchart.Point{X: float64(s.Points[i].T) / 1000, Y: (s.Points[i].V - s.Points[i-1].V) / dt})
	}
	return out
}

// millisScale picks seconds for an axis of milliseconds when values run into seconds.
func millisScale(max float64) (string, float64) {
	if max >= 2000 {
		return UnitSeconds, 1000
	}
	return UnitMillis, 1
}

func seriesMax(ss ...Series) float64 {
	m := 0.0
	for _, s := range ss {
		for _, p := range s.Points {
			m = math.Max(m, p.V)
		}
	}
	return m
}

// bytesScale picks the binary multiple that keeps axis labels short.
func bytesScale(max float64) (string, float64) {
	switch {
	case max >= 4<<30:
		return "GiB", 1 << 30
	case max >= 4<<20:
		return "MiB", 1 << 20
	case max >= 4<<10:
		return "KiB", 1 << 10
	}
	return "B", 1
}

// runCharts builds the report's charts, in the order they appear.
func runCharts(r *Run) []chartView {
	f := newTimeFrame(r)
	zero := svgchart.F(0)
	var out []chartView

	// Convergence: one point per intent change, at its commit time.
	var maxMs float64
	for _, c := range r.Convergence {
		for _, q := range convergenceQuantiles {
			if v := q.get(c); v != nil {
				maxMs = math.Max(maxMs, *v)
			}
		}
	}
	unit, div := millisScale(maxMs)
	var conv []svgchart.Series
	for _, q := range convergenceQuantiles {
		s := svgchart.Series{Name: q.label + " acked", Style: svgchart.Markers}
		for _, c := range r.Convergence {
			if v := q.get(c); v != nil {
				s.Points = append(s.Points, svgchart.Point{X: c.At.Sub(r.Start).Seconds(), Y: *v / div})
			}
		}
		conv = append(conv, s)
	}
	if len(r.Convergence) == 0 {
		conv = nil
	}
	out = append(out, f.chart("chart-convergence", "Convergence: time to 50/90/99/100% acked, per intent change",
		svgchart.Axis{Label: "time since commit", Unit: unit, Min: zero}, conv))

	out = append(out, f.chart("chart-acked", "Fleet acked: share in session with every change older than 1 s applied",
		svgchart.Axis{Label: "acked", Unit: "%", Min: zero, Max: svgchart.F(100)},
		nonEmpty(svgchart.Series{Name: "acked", Points: points(r.Acked, 1), Style: svgchart.Area, Gap: samplingGap(r.Acked)})))

	comps := append([]Component(nil), r.Components...)
	sort.SliceStable(comps, func(i, j int) bool { return componentRank(comps[i].Name) < componentRank(comps[j].Name) })
	var cpu, rss []svgchart.Series
	var rssMax float64
	for _, c := range comps {
		rssMax = math.Max(rssMax, seriesMax(c.RSS))
	}
	rssUnit, rssDiv := bytesScale(rssMax)
	for _, c := range comps {
		if len(c.CPU.Points) > 1 {
			cpu = append(cpu, svgchart.Series{Name: c.Name, Points: rate(c.CPU), Gap: samplingGap(c.CPU)})
		}
		if len(c.RSS.Points) > 0 {
			rss = append(rss, svgchart.Series{Name: c.Name, Points: points(c.RSS, rssDiv), Gap: samplingGap(c.RSS)})
		}
	}
	out = append(out, f.chart("chart-cpu", "CPU use per component", svgchart.Axis{Label: "CPU", Unit: "cores", Min: zero}, cpu))
	out = append(out, f.chart("chart-rss", "Resident memory per component", svgchart.Axis{Label: "RSS", Unit: rssUnit, Min: zero}, rss))

	latUnit, latDiv := millisScale(seriesMax(r.API.P50, r.API.P99))
	out = append(out, f.chart("chart-api-latency", "Northbound API latency",
		svgchart.Axis{Label: "latency", Unit: latUnit, Min: zero},
		nonEmpty(svgchart.Series{Name: "p50", Points: points(r.API.P50, latDiv), Gap: samplingGap(r.API.P50)},
			svgchart.Series{Name: "p99", Points: points(r.API.P99, latDiv), Gap: samplingGap(r.API.P99)})))
	out = append(out, f.chart("chart-api-errors", "Northbound API errors",
		svgchart.Axis{Label: "errors", Unit: "per second", Min: zero},
		nonEmpty(svgchart.Series{Name: "errors/s", Points: points(r.API.Errors, 1), Color: "#d62728", Style: svgchart.Area, Gap: samplingGap(r.API.Errors)})))
	if len(r.API.Requests.Points) > 0 {
		out = append(out, f.chart("chart-api-requests", "Northbound API throughput",
			svgchart.Axis{Label: "requests", Unit: "per second", Min: zero},
			[]svgchart.Series{{Name: "requests/s", Points: points(r.API.Requests, 1), Color: "#2ca02c", Gap: samplingGap(r.API.Requests)}}))
	}

	// Each measurement's own series, one chart per unit.
	for i, m := range r.Measurements {
		units := map[string][]Series{}
		var order []string
		for _, s := range m.Series {
			if _, ok := units[s.Unit]; !ok {
				order = append(order, s.Unit)
			}
			units[s.Unit] = append(units[s.Unit], s)
		}
		for k, u := range order {
			var ss []svgchart.Series
			var names []string
			for _, s := range units[u] {
				ss = append(ss, svgchart.Series{Name: s.Name, Points: points(s, 1), Gap: samplingGap(s)})
				names = append(names, s.Name)
			}
			title := m.Name + ": " + strings.Join(names, ", ")
			if m.Step != "" {
				title += " (step " + m.Step + ")"
			}
			label := m.Name
			if len(names) == 1 {
				label = names[0]
			}
			out = append(out, f.chart(fmt.Sprintf("chart-m%d-%d", i, k), title, svgchart.Axis{Label: label, Unit: axisUnit(u)}, ss))
		}
	}
	return out
}

// axisUnit spells a unit for an axis title.
func axisUnit(u string) string {
	if u == UnitPerSecond {
		return "per second"
	}
	return u
}

// nonEmpty drops series without points, so that a chart with no data says so.
func nonEmpty(ss ...svgchart.Series) []svgchart.Series {
	var out []svgchart.Series
	for _, s := range ss {
		if len(s.Points) > 0 {
			out = append(out, s)
		}
	}
	return out
}
