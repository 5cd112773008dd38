package svgchart

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// outage is a series sampled every second with nothing from 10 to 20: a component that was down.
func outage() []Point {
	var pts []Point
	for i := 0; i <= 30; i++ {
		if i <= 10 || i >= 20 {
			pts = append(pts, Point{X: float64(i), Y: 5})
		}
	}
	return pts
}

func TestLinesBreakOverGapsInSampling(t *testing.T) {
	joined := Chart{Title: "joined", Series: []Series{{Name: "rss", Points: outage()}}}.SVG()
	assert.Equal(t, 1, wellFormed(t, joined)["polyline"], "without Gap the line runs across the outage")

	broken := Chart{Title: "broken", Series: []Series{{Name: "rss", Points: outage(), Gap: 3}}}.SVG()
	counts := wellFormed(t, broken)
	assert.Equal(t, 2, counts["polyline"], "one line before the outage, one after")
	assert.Equal(t, 1, counts["title"]-1, "still one series in the legend and tooltips")

	area := Chart{Title: "area", Series: []Series{{Name: "acked", Style: Area, Points: outage(), Gap: 3}}}.SVG()
	assert.Equal(t, 2, wellFormed(t, area)["polygon"], "areas break too")

	// A lone sample between two gaps is a dot.
	pts := append(outage(), Point{X: 40, Y: 5})
	lone := Chart{Title: "lone", Series: []Series{{Name: "rss", Points: pts, Gap: 3}}}.SVG()
	c := wellFormed(t, lone)
	assert.Equal(t, 2, c["polyline"])
	assert.Equal(t, 1, c["circle"])
	assert.False(t, strings.Contains(lone, "NaN"))
}

func TestHistogram(t *testing.T) {
	h := Histogram{ID: "h", Title: "recovery <time>", X: Axis{Label: "recovery", Unit: "s", Time: true},
		Bins:  []Bin{{From: 0, To: 1, Count: 997}, {From: 1, To: 2}, {From: 2, To: 3, Count: 3, Highlight: true}},
		Marks: []Mark{{At: 0.5, Label: "median"}}}
	svg := h.SVG()
	c := wellFormed(t, svg)
	assert.Equal(t, 2, c["rect"]-2, "two bars besides the background and the frame")
	assert.Contains(t, svg, `fill="#d62728"`, "the highlighted bin")
	assert.Contains(t, svg, ">997<")
	assert.Contains(t, svg, ">3<", "a small bar has its count written")
	assert.Contains(t, svg, "recovery &lt;time&gt;")
	assert.Equal(t, svg, h.SVG(), "deterministic")
	assert.Contains(t, Histogram{Title: "none"}.SVG(), "no data")
}
