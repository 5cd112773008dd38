package svgchart

import (
	"math"
	"strconv"
	"strings"
)

// niceStep returns a step of 1, 2, 2.5 or 5 times a power of ten such that span/step is close to
// target.
func niceStep(span float64, target int) float64 {
	if span <= 0 || math.IsNaN(span) || math.IsInf(span, 0) {
		return 1
	}
	rough := span / float64(target)
	mag := math.Pow(10, math.Floor(math.Log10(rough)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= rough {
			return m * mag
		}
	}
	return 10 * mag
}

// timeSteps are the tick steps, in seconds, a time axis may use: they fall on the boundaries a
// reader counts in.
var timeSteps = []float64{
	0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5,
	1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
}

// timeStep returns the smallest time step giving at most maxTicks intervals over span seconds.
func timeStep(span float64, maxTicks int) float64 {
	for _, s := range timeSteps {
		if span/s <= float64(maxTicks) {
			return s
		}
	}
	return niceStep(span, maxTicks)
}

// ticks returns the multiples of step within [lo, hi], tolerant of floating-point error at the
// ends.
func ticks(lo, hi, step float64) []float64 {
	if step <= 0 || hi < lo {
		return nil
	}
	eps := step * 1e-9
	first := math.Ceil((lo-eps)/step) * step
	var out []float64
	for i := 0; i < 1000; i++ {
		v := first + float64(i)*step
		if v > hi+eps {
			break
		}
		if math.Abs(v) < eps {
			v = 0 // avoid "-0"
		}
		out = append(out, v)
	}
	return out
}

// decimals is how many fractional digits labels need to tell ticks step apart.
func decimals(step float64) int {
	if step <= 0 || step >= 1 {
		if step > 0 && step != math.Trunc(step) {
			return 1
		}
		return 0
	}
	d := int(math.Ceil(-math.Log10(step) - 1e-9))
	// 0.25 or 0.025 need one digit more than their magnitude says.
	if v := step * math.Pow(10, float64(d)); math.Abs(v-math.Round(v)) > 1e-9 {
		d++
	}
	return d
}

// numberLabel formats v for an axis whose ticks are step apart, switching to k, M or G suffixes
// for large magnitudes so that labels stay short.
func numberLabel(v, step, maxAbs float64) string {
	suffix := ""
	div := 1.0
	switch {
	case maxAbs >= 1e9:
		suffix, div = "G", 1e9
	case maxAbs >= 1e6:
		suffix, div = "M", 1e6
	case maxAbs >= 1e4:
		suffix, div = "k", 1e3
	}
	if math.Abs(v) < step*1e-9 {
		return "0"
	}
	return strconv.FormatFloat(v/div, 'f', decimals(step/div), 64) + suffix
}

// DurationLabel formats seconds the way a time axis labels them: "750ms", "45s", "1m30s",
// "2h5m".
func DurationLabel(sec float64) string {
	neg := sec < 0
	if neg {
		sec = -sec
	}
	var s string
	switch {
	case sec == 0:
		s = "0"
	case sec < 1:
		s = trimZeros(strconv.FormatFloat(sec*1000, 'f', 1, 64)) + "ms"
	case sec < 60:
		s = trimZeros(strconv.FormatFloat(sec, 'f', 2, 64)) + "s"
	case sec < 3600:
		m := math.Floor(sec / 60)
		r := sec - m*60
		s = strconv.Itoa(int(m)) + "m"
		if r >= 0.005 {
			s += trimZeros(strconv.FormatFloat(r, 'f', 2, 64)) + "s"
		}
	default:
		h := math.Floor(sec / 3600)
		m := math.Round((sec - h*3600) / 60)
		if m == 60 {
			h, m = h+1, 0
		}
		s = strconv.Itoa(int(h)) + "h"
		if m > 0 {
			s += strconv.Itoa(int(m)) + "m"
		}
	}
	if neg {
		return "-" + s
	}
	return s
}

func trimZeros(s string) string {
	if !strings.Contains(s, ".") {
		return s
	}
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}
