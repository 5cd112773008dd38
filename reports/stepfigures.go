package reports

import (
	"math"
	"time"
)

// stepFigureRow is the key figures of one window of a run: the whole run, or one step (a load's
// setup included), so that a reader sees which step a run-wide figure comes from.
type stepFigureRow struct {
	Name, Phase, Duration                              string
	Acked, P99, Requests, Errors, To99, CPCores, CPRSS string
}

// noData marks a figure a window has no data for.
const noData = "–"

// stepFigureRows gives the key figures of the whole run and then of each step.
func stepFigureRows(r *Run) []stepFigureRow {
	out := []stepFigureRow{windowFigures(r, "whole run", "", r.Start, r.End, nil)}
	for _, s := range r.Steps {
		step := s.Name
		out = append(out, windowFigures(r, s.Name, s.Phase, s.Start, s.End, &step))
	}
	return out
}

// windowFigures computes the key figures over [start, end]; step, when set, picks the intent
// changes the record assigns to that step.
func windowFigures(r *Run, name, phase string, start, end time.Time, step *string) stepFigureRow {
	// Windows are half-open, so that a sample on a boundary belongs to the step it starts;
	// the run's last sample belongs to its last step.
	from, to, last := Offset(r.Start, start), Offset(r.Start, end), !end.Before(r.End)
	in := func(s Series) []Point {
		var pts []Point
		for _, p := range s.Points {
			if p.T >= from && (p.T < to || last && p.T == to) {
				pts = append(pts, p)
			}
		}
		return pts
	}
	row := stepFigureRow{Name: name, Phase: phase, Duration: formatDuration(end.Sub(start)),
		Acked: noData, P99: noData, Requests: noData, Errors: noData, To99: noData, CPCores: noData, CPRSS: noData}
	if pts := in(r.Acked); len(pts) > 0 {
		row.Acked = FormatValue(minOf(pointValues(pts)), UnitPercent)
	}
	if pts := in(r.API.P99); len(pts) > 0 {
		row.P99 = FormatMillis(maxOf(pointValues(pts)))
	}
	if pts := in(r.API.Requests); len(pts) > 0 {
		row.Requests = FormatValue(mean(pointValues(pts)), UnitPerSecond)
	}
	if pts := in(r.API.Errors); len(pts) > 1 {
		row.Errors = FormatNumber(math.Round(integrate(pts)))
	}
	worst, reached, never := 0.0, 0, 0
	for _, c := range r.Convergence {
		if (step != nil && c.Step != *step) || (step == nil && (c.At.Before(start) || c.At.After(end))) {
			continue
		}
		if c.To99Ms == nil {
			never++
			continue
		}
		reached++
		worst = math.Max(worst, *c.To99Ms)
	}
	switch {
	case never > 0:
		row.To99 = FormatNumber(float64(never)) + " never"
	case reached > 0:
		row.To99 = FormatMillis(worst)
	}
	for _, c := range r.Components {
		if c.Name != ComponentControlPlane {
			continue
		}
		if cpu := in(c.CPU); len(cpu) > 1 {
			if secs := float64(cpu[len(cpu)-1].T-cpu[0].T) / 1000; secs > 0 {
				row.CPCores = FormatNumber(math.Max(0, cpu[len(cpu)-1].V-cpu[0].V) / secs)
			}
		}
		if rss := in(c.RSS); len(rss) > 0 {
			row.CPRSS = formatBytes(maxOf(pointValues(rss)))
		}
	}
	return row
}

func pointValues(pts []Point) []float64 {
	out := make([]float64, len(pts))
	for i, p := range pts {
		out[i] = p.V
	}
	return out
}
