// Package svgchart draws small line, area and marker charts as self-contained SVG: axes with
// ticks, labels and units, a legend, shaded vertical bands (fault windows) and vertical lines
// (step boundaries). It needs no script, font or other resource, so a report that embeds its
// output reads offline.
//
// Output is deterministic: the same Chart always gives the same bytes. Every piece of text is
// escaped, so names taken from user files cannot inject markup.
package svgchart

import (
	"fmt"
	"hash/fnv"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Style is how a series is drawn.
type Style int

const (
	// Line joins the points with a line.
	Line Style = iota
	// Area is a line with the region below it filled.
	Area
	// Markers draws each point as a dot joined by a thin line; for sparse series such as one
	// point per intent change.
	Markers
	// Scatter draws each point as a dot, unjoined: repeated measurements at each X.
	Scatter
)

// Point is one sample. Points with a NaN or infinite coordinate are skipped.
type Point struct{ X, Y float64 }

// Series is one named line.
type Series struct {
	Name   string
	Points []Point
	Style  Style
	// Color is a CSS colour; empty picks the next colour of the palette.
	Color string
	// Dashed draws the line dashed, to set apart e.g. a baseline.
	Dashed bool
	// Gap, when above 0, breaks the line between points further apart than Gap on the X axis:
	// where sampling stopped (a component that was down), nothing is drawn rather than a
	// straight line across.
	Gap float64
}

// Band is a shaded vertical region from From to To on the X axis, such as a fault window.
type Band struct {
	From, To float64
	Label    string
}

// Mark is a vertical line at At on the X axis, such as a step boundary.
type Mark struct {
	At    float64
	Label string
}

// Axis describes one axis. Min and Max, when set, fix the range; otherwise it covers the data.
type Axis struct {
	Label string
	Unit  string
	// Time says the values are seconds: ticks fall on time-friendly steps and read like 1m30s.
	Time bool
	// Log plots the values on a base-10 logarithmic scale, with ticks at 1, 2 and 5 times
	// powers of ten; values at or below zero are left out.
	Log      bool
	Min, Max *float64
}

// F returns a pointer to v, for Axis.Min and Axis.Max.
func F(v float64) *float64 { return &v }

// Chart is one chart. The zero value of every field is usable.
type Chart struct {
	// ID prefixes the element ids the chart defines; it must be unique within one HTML page.
	// Empty derives one from the title and series names.
	ID     string
	Title  string
	Width  int // default 960
	Height int // of the plot and its axes, without the legend; default 260
	X, Y   Axis
	Series []Series
	Bands  []Band
	Marks  []Mark
	// Empty is the text shown when no series has a point; default "no data".
	Empty string
	// BandLegend and MarkLegend name the band and mark entries in the legend; defaults "fault"
	// and "step boundary".
	BandLegend, MarkLegend string
}

// Palette is the default series colours, in order: distinct for most forms of colour blindness.
var Palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"}

const (
	marginLeft   = 64
	marginRight  = 18
	marginTop    = 30
	marginBottom = 44
	legendRow    = 18
	charWidth    = 6.4 // rough advance of an 11px sans-serif character
	maxTicksX    = 8
	maxTicksY    = 5
)

// geometry maps data coordinates to pixels.
type geometry struct {
	left, right, top, bottom float64
	x0, x1, y0, y1           float64
}

func (g geometry) px(x float64) float64 {
	return g.left + (x-g.x0)/(g.x1-g.x0)*(g.right-g.left)
}

func (g geometry) py(y float64) float64 {
	return g.bottom - (y-g.y0)/(g.y1-g.y0)*(g.bottom-g.top)
}

// SVG renders the chart as one <svg> element, safe to embed in HTML as it is.
func (c Chart) SVG() string {
	w, h := c.Width, c.Height
	if w <= 0 {
		w = 960
	}
	if h <= 0 {
		h = 260
	}
	id := c.id()
	c = c.logged()
	legend := c.legendItems()
	rows := layoutLegend(legend, float64(w-marginLeft-marginRight))
	total := h
	if len(legend) > 0 {
		total += rows[len(rows)-1].row*legendRow + legendRow + 4
	}
	g := geometry{left: marginLeft, right: float64(w - marginRight), top: marginTop, bottom: float64(h - marginBottom)}
	xr, hasX := c.xRange()
	yr, hasY := c.yRange()

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="%s" role="img" aria-label="%s" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`,
		id, Escape(c.Title), w, total, w, total)
	fmt.Fprintf(&b, `<title>%s</title>`, Escape(c.Title))
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%d" height="%d" fill="#fff"/>`, w, total)
	fmt.Fprintf(&b, `<text x="%d" y="18" font-size="13" font-weight="bold" fill="#222">%s</text>`, marginLeft, Escape(c.Title))
	fmt.Fprintf(&b, `<defs><clipPath id="%s-plot"><rect x="%s" y="%s" width="%s" height="%s"/></clipPath></defs>`,
		id, n(g.left), n(g.top), n(g.right-g.left), n(g.bottom-g.top))

	if hasX {
		if c.X.Log {
			xr = padLog(xr, c.X)
		}
		g.x0, g.x1 = xr[0], xr[1]
	}
	var yTicks []float64
	if hasY && c.Y.Log {
		yr = padLog(yr, c.Y)
		g.y0, g.y1 = yr[0], yr[1]
		for _, t := range logTicks(yr[0], yr[1], maxTicksY) {
			y := g.py(t)
			fmt.Fprintf(&b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#e6e6e6"/>`, n(g.left), n(y), n(g.right), n(y))
			fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="end" fill="#444">%s</text>`, n(g.left-6), n(y+4), Escape(logLabel(t)))
		}
	} else if hasY {
		step := niceStep(yr[1]-yr[0], maxTicksY)
		if c.Y.Min == nil {
			yr[0] = math.Floor(yr[0]/step) * step
		}
		if c.Y.Max == nil {
			yr[1] = math.Ceil(yr[1]/step) * step
		}
		g.y0, g.y1 = yr[0], yr[1]
		yTicks = ticks(yr[0], yr[1], step)
		maxAbs := math.Max(math.Abs(yr[0]), math.Abs(yr[1]))
		for _, t := range yTicks {
			y := g.py(t)
			fmt.Fprintf(&b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#e6e6e6"/>`, n(g.left), n(y), n(g.right), n(y))
			fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="end" fill="#444">%s</text>`, n(g.left-6), n(y+4), Escape(numberLabel(t, step, maxAbs)))
		}
	}
	if hasX {
		c.drawBands(&b, g)
		c.drawXTicks(&b, g)
	}
	fmt.Fprintf(&b, `<rect x="%s" y="%s" width="%s" height="%s" fill="none" stroke="#999"/>`, n(g.left), n(g.top), n(g.right-g.left), n(g.bottom-g.top))
	if hasX {
		c.drawMarks(&b, g)
	}
	if hasX && hasY {
		c.drawSeries(&b, g, id)
	} else {
		empty := c.Empty
		if empty == "" {
			empty = "no data"
		}
		fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="middle" fill="#888" font-size="13">%s</text>`, n((g.left+g.right)/2), n((g.top+g.bottom)/2), Escape(empty))
	}
	if l := axisTitle(c.X); l != "" {
		fmt.Fprintf(&b, `<text x="%s" y="%d" text-anchor="middle" fill="#333">%s</text>`, n((g.left+g.right)/2), h-8, Escape(l))
	}
	if l := axisTitle(c.Y); l != "" {
		cy := (g.top + g.bottom) / 2
		fmt.Fprintf(&b, `<text x="14" y="%s" text-anchor="middle" fill="#333" transform="rotate(-90 14 %s)">%s</text>`, n(cy), n(cy), Escape(l))
	}
	drawLegend(&b, legend, rows, float64(marginLeft), float64(h+4))
	b.WriteString(`</svg>`)
	return b.String()
}

func axisTitle(a Axis) string {
	switch {
	case a.Label != "" && a.Unit != "":
		return a.Label + " (" + a.Unit + ")"
	case a.Unit != "":
		return a.Unit
	}
	return a.Label
}

func (c Chart) id() string {
	if c.ID != "" {
		return sanitizeID(c.ID)
	}
	h := fnv.New64a()
	h.Write([]byte(c.Title))
	for _, s := range c.Series {
		h.Write([]byte{0})
		h.Write([]byte(s.Name))
	}
	return "chart-" + strconv.FormatUint(h.Sum64(), 36)
}

func sanitizeID(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 128 && (r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 || !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') {
		return "c" + b.String()
	}
	return b.String()
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// xRange is the X extent of data, bands and marks, overridden by the axis bounds.
func (c Chart) xRange() ([2]float64, bool) {
	lo, hi := math.Inf(1), math.Inf(-1)
	see := func(v float64) {
		if finite(v) {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	for _, s := range c.Series {
		for _, p := range s.Points {
			if finite(p.Y) {
				see(p.X)
			}
		}
	}
	for _, bd := range c.Bands {
		see(bd.From)
		see(bd.To)
	}
	for _, m := range c.Marks {
		see(m.At)
	}
	return bounds(lo, hi, c.X)
}

func (c Chart) yRange() ([2]float64, bool) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range c.Series {
		for _, p := range s.Points {
			if finite(p.X) && finite(p.Y) {
				lo, hi = math.Min(lo, p.Y), math.Max(hi, p.Y)
			}
		}
	}
	if math.IsInf(lo, 1) {
		return [2]float64{}, false // axis bounds alone are not data
	}
	return bounds(lo, hi, c.Y)
}

// bounds applies fixed axis bounds and widens an empty range so that a single point or a flat
// line still has an axis to sit on.
func bounds(lo, hi float64, a Axis) ([2]float64, bool) {
	if a.Min != nil && finite(*a.Min) {
		lo = *a.Min
		if math.IsInf(hi, -1) {
			hi = lo
		}
	}
	if a.Max != nil && finite(*a.Max) {
		hi = *a.Max
		if math.IsInf(lo, 1) {
			lo = hi
		}
	}
	if math.IsInf(lo, 1) || math.IsInf(hi, -1) {
		return [2]float64{}, false
	}
	if hi < lo {
		lo, hi = hi, lo
	}
	if hi == lo {
		d := math.Abs(lo) * 0.1
		if d == 0 {
			d = 1
		}
		switch {
		case a.Min != nil && a.Max != nil:
			hi = lo + d
		case a.Min != nil:
			hi += d
		case a.Max != nil:
			lo -= d
		default:
			lo, hi = lo-d, hi+d
		}
	}
	return [2]float64{lo, hi}, true
}

func (c Chart) drawXTicks(b *strings.Builder, g geometry) {
	if c.X.Log {
		for _, t := range logTicks(g.x0, g.x1, maxTicksX) {
			x := g.px(t)
			fmt.Fprintf(b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#999"/>`, n(x), n(g.bottom), n(x), n(g.bottom+4))
			fmt.Fprintf(b, `<text x="%s" y="%s" text-anchor="middle" fill="#444">%s</text>`, n(x), n(g.bottom+16), Escape(logLabel(t)))
		}
		return
	}
	span := g.x1 - g.x0
	var step float64
	if c.X.Time {
		step = timeStep(span, maxTicksX)
	} else {
		step = niceStep(span, maxTicksX)
	}
	maxAbs := math.Max(math.Abs(g.x0), math.Abs(g.x1))
	for _, t := range ticks(g.x0, g.x1, step) {
		x := g.px(t)
		label := numberLabel(t, step, maxAbs)
		if c.X.Time {
			label = DurationLabel(t)
		}
		fmt.Fprintf(b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#999"/>`, n(x), n(g.bottom), n(x), n(g.bottom+4))
		fmt.Fprintf(b, `<text x="%s" y="%s" text-anchor="middle" fill="#444">%s</text>`, n(x), n(g.bottom+16), Escape(label))
	}
}

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

func (c Chart) drawBands(b *strings.Builder, g geometry) {
	for _, bd := range c.Bands {
		if !finite(bd.From) || !finite(bd.To) {
			continue
		}
		from, to := math.Min(bd.From, bd.To), math.Max(bd.From, bd.To)
		x0 := clamp(g.px(from), g.left, g.right)
		x1 := clamp(g.px(to), g.left, g.right)
		if x1-x0 < 2 {
			x1 = math.Min(x0+2, g.right)
			x0 = x1 - 2
		}
		fmt.Fprintf(b, `<rect class="band" x="%s" y="%s" width="%s" height="%s" fill="#e45756" fill-opacity="0.16"><title>%s</title></rect>`,
			n(x0), n(g.top), n(x1-x0), n(g.bottom-g.top), Escape(bd.Label))
		if lbl := fit(bd.Label, x1-x0-4); lbl != "" {
			fmt.Fprintf(b, `<text x="%s" y="%s" fill="#a8322d" font-size="10">%s</text>`, n(x0+2), n(g.bottom-4), Escape(lbl))
		}
	}
}

func (c Chart) drawMarks(b *strings.Builder, g geometry) {
	marks := make([]Mark, 0, len(c.Marks))
	for _, m := range c.Marks {
		if finite(m.At) && m.At >= g.x0 && m.At <= g.x1 {
			marks = append(marks, m)
		}
	}
	sort.SliceStable(marks, func(i, j int) bool { return marks[i].At < marks[j].At })
	for i, m := range marks {
		x := g.px(m.At)
		next := g.right
		if i+1 < len(marks) {
			next = g.px(marks[i+1].At)
		}
		fmt.Fprintf(b, `<line class="mark" x1="%s" y1="%s" x2="%s" y2="%s" stroke="#555" stroke-dasharray="4 3"><title>%s</title></line>`,
			n(x), n(g.top), n(x), n(g.bottom), Escape(m.Label))
		if lbl := fit(m.Label, next-x-6); lbl != "" {
			fmt.Fprintf(b, `<text x="%s" y="%s" fill="#555" font-size="10">%s</text>`, n(x+3), n(g.top+11), Escape(lbl))
		}
	}
}

// fit shortens s to the characters that fit in width pixels, with an ellipsis when cut; it
// returns "" when not even two characters fit.
func fit(s string, width float64) string {
	max := int(width / (charWidth * 10 / 11)) // labels are 10px
	r := []rune(s)
	if len(r) <= max {
		return s
	}
	if max < 3 {
		return ""
	}
	return string(r[:max-1]) + "…"
}

// n formats a pixel coordinate with one decimal, trimmed.
func n(v float64) string {
	return trimZeros(strconv.FormatFloat(v, 'f', 1, 64))
}
