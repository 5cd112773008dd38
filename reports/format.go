package reports

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/dsnscale/dsnscale/reports/svgchart"
)

// FormatNumber formats v with a precision that suits its magnitude (about three significant
// digits, integers whole, thousands grouped), the same way on every machine.
func FormatNumber(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "∞"
	case math.IsInf(v, -1):
		return "-∞"
	}
	a := math.Abs(v)
	var s string
	switch {
	case a == 0:
		return "0"
	case a >= 1000 || v == math.Trunc(v):
		s = strconv.FormatFloat(v, 'f', 0, 64)
		return group(s)
	case a >= 100:
		s = strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 10:
		s = strconv.FormatFloat(v, 'f', 2, 64)
	case a >= 1:
		s = strconv.FormatFloat(v, 'f', 3, 64)
	default:
		d := 2 - int(math.Floor(math.Log10(a)))
		if d > 12 {
			return strconv.FormatFloat(v, 'g', 3, 64)
		}
		s = strconv.FormatFloat(v, 'f', d, 64)
	}
	s = trimZeros(s)
	if s == "-0" {
		s = "0"
	}
	return s
}

func trimZeros(s string) string {
	if !strings.Contains(s, ".") {
		return s
	}
	return strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
}

// group inserts thousands separators into an integer string.
func group(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	if len(s) > 4 {
		var b strings.Builder
		pre := len(s) % 3
		if pre > 0 {
			b.WriteString(s[:pre])
		}
		for i := pre; i < len(s); i += 3 {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(s[i : i+3])
		}
		s = b.String()
	}
	if neg {
		return "-" + s
	}
	return s
}

// FormatValue formats v in unit: bytes in binary multiples, durations in seconds readable as
// such, percentages without a space, anything else as "number unit".
func FormatValue(v float64, unit string) string {
	switch unit {
	case UnitBytes, "B":
		return formatBytes(v)
	case UnitPercent:
		return FormatNumber(v) + "%"
	case UnitPerSecond:
		return FormatNumber(v) + "/s"
	case "":
		return FormatNumber(v)
	}
	return FormatNumber(v) + " " + unit
}

func formatBytes(v float64) string {
	a := math.Abs(v)
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for a >= 1024 && i < len(units)-1 {
		a /= 1024
		v /= 1024
		i++
	}
	if i == 0 {
		return FormatNumber(v) + " B"
	}
	return FormatNumber(v) + " " + units[i]
}

// FormatMillis formats a duration given in milliseconds: "850 ms", "4.21 s", "2m5s".
func FormatMillis(ms float64) string {
	switch {
	case math.Abs(ms) < 1000:
		return FormatNumber(ms) + " ms"
	case math.Abs(ms) < 60_000:
		return FormatNumber(ms/1000) + " s"
	}
	return svgchart.DurationLabel(math.Round(ms/1000*100) / 100)
}

// formatOffset formats a time relative to the run's start, e.g. "+1m30s".
func formatOffset(start, t time.Time) string {
	return "+" + svgchart.DurationLabel(float64(t.Sub(start).Milliseconds())/1000)
}

// formatDuration formats a duration for people: "5m12s", "850ms".
func formatDuration(d time.Duration) string {
	return svgchart.DurationLabel(float64(d.Milliseconds()) / 1000)
}

// formatTime formats an absolute time the same way wherever the report is rendered.
func formatTime(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04:05.000 UTC")
}

// shortCommit abbreviates a Git commit id for tables.
func shortCommit(c string) string {
	dirty := strings.HasSuffix(c, "-dirty")
	c = strings.TrimSuffix(c, "-dirty")
	if len(c) > 12 {
		c = c[:12]
	}
	if dirty {
		c += "-dirty"
	}
	if c == "" {
		return "unknown"
	}
	return c
}

// FormatObserved formats an SLO's observed value. Where rounding would show it equal to the
// threshold although it differs (99.99999999% against >= 100%), it is shown in full, so that a
// verdict never reads as contradicting its own figure.
func FormatObserved(observed, threshold float64, unit string) string {
	s := FormatValue(observed, unit)
	if observed == threshold || s != FormatValue(threshold, unit) || unit == UnitBytes || unit == "B" {
		return s
	}
	full := strconv.FormatFloat(observed, 'g', -1, 64)
	switch unit {
	case "":
		return full
	case UnitPercent:
		return full + "%"
	case UnitPerSecond:
		return full + "/s"
	}
	return full + " " + unit
}
