package svgchart

import (
	"math"
	"strconv"
)

// logged returns the chart with the coordinates of its logarithmic axes replaced by their
// base-10 logarithms (NaN, and so left out, at or below zero); the rest of the drawing then
// works on a linear scale, and only the ticks know better.
func (c Chart) logged() Chart {
	if !c.X.Log && !c.Y.Log {
		return c
	}
	lx := func(v float64) float64 { return v }
	ly := lx
	if c.X.Log {
		lx = log10
		c.X.Min, c.X.Max = logBound(c.X.Min), logBound(c.X.Max)
	}
	if c.Y.Log {
		ly = log10
		c.Y.Min, c.Y.Max = logBound(c.Y.Min), logBound(c.Y.Max)
	}
	series := make([]Series, len(c.Series))
	for i, s := range c.Series {
		pts := make([]Point, len(s.Points))
		for j, p := range s.Points {
			pts[j] = Point{X: lx(p.X), Y: ly(p.Y)}
		}
		s.Points = pts
		if c.X.Log && s.Gap > 0 {
			s.Gap = 0 // a gap in data units means nothing on a log scale
		}
		series[i] = s
	}
	c.Series = series
	bands := make([]Band, len(c.Bands))
	for i, bd := range c.Bands {
		bands[i] = Band{From: lx(bd.From), To: lx(bd.To), Label: bd.Label}
	}
	c.Bands = bands
	marks := make([]Mark, len(c.Marks))
	for i, m := range c.Marks {
		marks[i] = Mark{At: lx(m.At), Label: m.Label}
	}
	c.Marks = marks
	return c
}

func log10(v float64) float64 {
	if v <= 0 {
		return math.NaN()
	}
	return math.Log10(v)
}

func logBound(v *float64) *float64 {
	if v == nil {
		return nil
	}
	return F(log10(*v))
}

// padLog widens a log-scale range by 5% on each side it is free to, so that points at the
// extremes do not sit on the frame.
func padLog(r [2]float64, a Axis) [2]float64 {
	pad := math.Max((r[1]-r[0])*0.05, 0.02)
	if a.Min == nil {
		r[0] -= pad
	}
	if a.Max == nil {
		r[1] += pad
	}
	return r
}

// logTicks returns the positions (as base-10 logarithms) of the ticks of a log axis from lo
// to hi: powers of ten, with 2 and 5 times them when there are few decades, and every
// integer multiple when there is less than one.
func logTicks(lo, hi float64, maxTicks int) []float64 {
	if !(hi > lo) || math.IsInf(lo, 0) || math.IsInf(hi, 0) {
		return nil
	}
	for _, mults := range [][]float64{{1, 2, 5}, {1, 2, 3, 4, 5, 6, 7, 8, 9}, {1}} {
		var out []float64
		for d := math.Floor(lo); d <= math.Ceil(hi); d++ {
			for _, m := range mults {
				t := d + math.Log10(m)
				if t >= lo-1e-9 && t <= hi+1e-9 {
					out = append(out, t)
				}
			}
		}
		if len(out) >= 2 && len(out) <= maxTicks+1 {
			return out
		}
		if len(out) > maxTicks+1 && len(mults) == 1 {
			// Too many decades for every one: every few.
			every := (len(out) + maxTicks - 1) / maxTicks
			thin := out[:0:0]
			for i := 0; i < len(out); i += every {
				thin = append(thin, out[i])
			}
			return thin
		}
	}
	// Less than a decade and no multiple of its leading digit inside: the two ends.
	return []float64{lo, hi}
}

// logLabel formats the value at log position t: 500, 2k, 1.5M.
func logLabel(t float64) string {
	v := math.Pow(10, t)
	suffix, div := "", 1.0
	switch {
	case v >= 1e9:
		suffix, div = "G", 1e9
	case v >= 1e6:
		suffix, div = "M", 1e6
	case v >= 1e3:
		suffix, div = "k", 1e3
	}
	return strconv.FormatFloat(v/div, 'g', 3, 64) + suffix
}
