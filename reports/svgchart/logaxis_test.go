package svgchart

import (
	"math"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLogAxesSpaceDecadesEvenly(t *testing.T) {
	c := Chart{
		Title: "log", X: Axis{Label: "DSNs", Log: true}, Y: Axis{Label: "seconds", Log: true},
		Series: []Series{{Name: "p", Style: Markers, Points: []Point{{10, 1}, {100, 10}, {1000, 100}, {0, 5}, {50, -1}}}},
	}
	svg := c.SVG()
	circles := regexp.MustCompile(`<circle cx="([0-9.]+)" cy="([0-9.]+)"`).FindAllStringSubmatch(svg, -1)
	require.Len(t, circles, 3, "points at or below zero are left out")
	var xs, ys []float64
	for _, m := range circles {
		x, _ := strconv.ParseFloat(m[1], 64)
		y, _ := strconv.ParseFloat(m[2], 64)
		xs, ys = append(xs, x), append(ys, y)
	}
	assert.InDelta(t, xs[1]-xs[0], xs[2]-xs[1], 0.2, "a decade is a decade wherever it is")
	assert.InDelta(t, ys[0]-ys[1], ys[1]-ys[2], 0.2)
	assert.Greater(t, ys[0], ys[2], "larger values are higher up")
	for _, label := range []string{">10<", ">100<", ">1k<", ">1<"} {
		assert.Contains(t, svg, label)
	}
	assert.Equal(t, svg, c.SVG(), "deterministic")
}

func TestLogTicks(t *testing.T) {
	labels := func(ts []float64) []string {
		var out []string
		for _, v := range ts {
			out = append(out, logLabel(v))
		}
		return out
	}
	assert.Equal(t, []string{"200", "500", "1k", "2k", "5k", "10k"}, labels(logTicks(math.Log10(150), math.Log10(11000), 8)))
	assert.Equal(t, []string{"1", "100", "10k", "1M", "100M"}, labels(logTicks(0, 9, 5)), "many decades: every other")
	assert.Equal(t, []string{"300", "400", "500"}, labels(logTicks(math.Log10(250), math.Log10(550), 8)))
	assert.Nil(t, logTicks(2, 2, 5))
}

func TestScatterDrawsUnjoinedDots(t *testing.T) {
	c := Chart{Title: "s", Series: []Series{{Name: "runs", Style: Scatter, Points: []Point{{1, 1}, {1, 2}, {2, 3}}}}}
	svg := c.SVG()
	assert.Len(t, regexp.MustCompile(`<circle `).FindAllString(svg, -1), 3+1, "three dots and the legend's")
	assert.NotContains(t, svg, "<polyline")
}
