package svgchart

import (
	"encoding/xml"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// wellFormed parses svg as XML and returns the count of each element name.
func wellFormed(t *testing.T, svg string) map[string]int {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(svg))
	counts := map[string]int{}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		require.NoError(t, err, "chart is not well-formed XML:\n%s", svg)
		if se, ok := tok.(xml.StartElement); ok {
			counts[se.Name.Local]++
		}
	}
	require.Equal(t, 1, counts["svg"])
	return counts
}

func line(n int, f func(i int) float64) []Point {
	pts := make([]Point, n)
	for i := range pts {
		pts[i] = Point{X: float64(i), Y: f(i)}
	}
	return pts
}

func TestChartShapes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		chart     Chart
		polylines int
		circles   int
		noData    bool
	}{
		{name: "empty", chart: Chart{Title: "empty"}, noData: true},
		{name: "series without points", chart: Chart{Title: "e", Series: []Series{{Name: "a"}}}, noData: true},
		{name: "only non-finite points", chart: Chart{Title: "nan", Series: []Series{{Name: "a", Points: []Point{{0, math.NaN()}, {math.Inf(1), 1}}}}}, noData: true},
		{name: "single point", chart: Chart{Title: "one", Series: []Series{{Name: "a", Points: []Point{{5, 3}}}}}, circles: 1},
		{name: "single zero point", chart: Chart{Title: "zero", Series: []Series{{Name: "a", Points: []Point{{0, 0}}}}}, circles: 1},
		{name: "flat line", chart: Chart{Title: "flat", Series: []Series{{Name: "a", Points: line(10, func(int) float64 { return 7 })}}}, polylines: 1},
		{name: "two series and area", chart: Chart{Title: "two", Series: []Series{
			{Name: "a", Points: line(10, func(i int) float64 { return float64(i * i) })},
			{Name: "b", Style: Area, Points: line(10, func(i int) float64 { return float64(i) })}}}, polylines: 2},
		{name: "markers", chart: Chart{Title: "m", Series: []Series{{Name: "a", Style: Markers, Points: line(4, func(i int) float64 { return float64(i) })}}}, polylines: 1, circles: 4},
		{name: "bands and marks without data", chart: Chart{Title: "frame", X: Axis{Time: true, Min: F(0), Max: F(60)},
			Bands: []Band{{From: 10, To: 20, Label: "fault"}}, Marks: []Mark{{At: 30, Label: "step"}}}, noData: true},
		{name: "negative values", chart: Chart{Title: "neg", Series: []Series{{Name: "a", Points: line(5, func(i int) float64 { return float64(i) - 10 })}}}, polylines: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svg := tc.chart.SVG()
			counts := wellFormed(t, svg)
			assert.Equal(t, tc.polylines, counts["polyline"], "polylines")
			assert.Equal(t, tc.circles, counts["circle"], "circles")
			assert.Equal(t, tc.noData, strings.Contains(svg, ">no data<"), "no-data text")
			assert.Equal(t, svg, tc.chart.SVG(), "rendering must be deterministic")
			assert.NotContains(t, svg, "NaN")
			assert.NotContains(t, svg, "Inf")
		})
	}
}

func TestChartBandsMarksAndLegend(t *testing.T) {
	c := Chart{
		Title: "latency", X: Axis{Label: "time", Time: true, Min: F(0), Max: F(300)}, Y: Axis{Label: "latency", Unit: "ms", Min: F(0)},
		Series: []Series{{Name: "p50", Points: line(300, func(i int) float64 { return 5 })}, {Name: "p99", Points: line(300, func(i int) float64 { return 40 })}},
		Bands:  []Band{{From: 60, To: 90, Label: "dsn.restart"}, {From: 280, To: 400, Label: "past the end"}},
		Marks:  []Mark{{At: 0, Label: "baseline"}, {At: 120, Label: "storm"}, {At: 999, Label: "outside"}},
	}
	svg := c.SVG()
	counts := wellFormed(t, svg)
	assert.Equal(t, 2, strings.Count(svg, `class="band"`))
	assert.Equal(t, 2, strings.Count(svg, `class="mark"`), "a mark outside the X range is not drawn")
	assert.Contains(t, svg, ">latency (ms)<")
	assert.Contains(t, svg, ">1m<", "time ticks read as durations")
	assert.Contains(t, svg, ">fault<", "legend names the bands")
	assert.Contains(t, svg, ">step boundary<", "legend names the marks")
	assert.Equal(t, 2, counts["polyline"])
	// Bands are clamped to the plot area.
	assert.NotContains(t, svg, `width="-`)
}

func TestChartEscapesText(t *testing.T) {
	evil := `<script>alert("x")</script>&'` + "\x01"
	c := Chart{Title: evil, X: Axis{Label: evil, Unit: evil}, Y: Axis{Label: evil},
		Series: []Series{{Name: evil, Points: line(3, func(i int) float64 { return float64(i) }), Color: `red"/><script>`}},
		Bands:  []Band{{From: 0, To: 1, Label: evil}}, Marks: []Mark{{At: 1, Label: evil}}, ID: `a"b`}
	svg := c.SVG()
	wellFormed(t, svg)
	assert.NotContains(t, svg, "<script")
	assert.NotContains(t, svg, "\x01")
	assert.Contains(t, svg, "&lt;script&gt;")
}

func TestChartLegendWraps(t *testing.T) {
	var ss []Series
	for i := 0; i < 12; i++ {
		ss = append(ss, Series{Name: strings.Repeat("series-", 3) + string(rune('a'+i)), Points: line(3, func(j int) float64 { return float64(i + j) })})
	}
	short := Chart{Title: "one row", Series: ss[:1]}.SVG()
	long := Chart{Title: "rows", Series: ss}.SVG()
	wellFormed(t, long)
	assert.Greater(t, svgHeight(t, long), svgHeight(t, short), "a long legend takes more rows")
}

func svgHeight(t *testing.T, svg string) string {
	t.Helper()
	i := strings.Index(svg, `height="`)
	require.GreaterOrEqual(t, i, 0)
	rest := svg[i+len(`height="`):]
	return fmtRight(rest[:strings.IndexByte(rest, '"')])
}

// fmtRight pads a number for string comparison.
func fmtRight(s string) string { return strings.Repeat("0", 8-len(s)) + s }

func TestDecimateKeepsShapeAndBoundsSize(t *testing.T) {
	pts := line(100_000, func(i int) float64 {
		if i == 54_321 {
			return 1000 // one spike must survive
		}
		return float64(i % 7)
	})
	out := decimate(pts, 800)
	assert.LessOrEqual(t, len(out), 4*801)
	assert.Equal(t, pts[0], out[0])
	assert.Equal(t, pts[len(pts)-1], out[len(out)-1])
	found := false
	for _, p := range out {
		found = found || p.Y == 1000
	}
	assert.True(t, found, "the spike was dropped")
	svg := Chart{Title: "long", Series: []Series{{Name: "a", Points: pts}}}.SVG()
	assert.Less(t, len(svg), 200_000)
	wellFormed(t, svg)
}

func TestDurationLabel(t *testing.T) {
	for _, tc := range []struct {
		sec  float64
		want string
	}{
		{0, "0"}, {0.25, "250ms"}, {1, "1s"}, {1.5, "1.5s"}, {45, "45s"}, {60, "1m"}, {90, "1m30s"},
		{3600, "1h"}, {5400, "1h30m"}, {7199.9, "2h"}, {-30, "-30s"},
	} {
		assert.Equal(t, tc.want, DurationLabel(tc.sec), "%v", tc.sec)
	}
}

func TestTicks(t *testing.T) {
	assert.Equal(t, []float64{0, 20, 40, 60, 80, 100}, ticks(0, 100, niceStep(100, 5)))
	assert.Equal(t, 2.5, niceStep(12, 5))
	assert.Equal(t, 60.0, timeStep(360, 8))
	assert.Equal(t, 1, decimals(0.5))
	assert.Equal(t, 2, decimals(0.25))
	assert.Equal(t, 0, decimals(5))
	assert.Equal(t, "1.5M", numberLabel(1.5e6, 5e5, 2e6))
	assert.Equal(t, "250", numberLabel(250, 50, 300))
	assert.Equal(t, "0.3", numberLabel(0.30000000000000004, 0.1, 1))
}
