package svgchart

import (
	"fmt"
	"math"
	"strings"
)

// Bin is one bar of a histogram: Count values in [From, To). Highlight draws it in the
// highlight colour (values that stood out).
type Bin struct {
	From, To  float64
	Count     int
	Highlight bool
}

// Histogram is a bar chart of how many values fall in each range, with vertical lines (such as
// the median) over it. Every bar with a count has its count written above it and is at least
// two pixels high, so that a few outliers beside thousands of ordinary values stay visible.
type Histogram struct {
	// ID prefixes the element ids; it must be unique within one HTML page.
	ID     string
	Title  string
	Width  int // default 640
	Height int // default 200
	// X is the axis of the values; its label and unit name them. Time formats ticks as
	// durations (seconds).
	X     Axis
	Bins  []Bin
	Marks []Mark
}

// Colours of the bars.
const (
	barColor       = "#1f77b4"
	highlightColor = "#d62728"
)

// SVG renders the histogram as one <svg> element.
func (h Histogram) SVG() string {
	w, ht := h.Width, h.Height
	if w <= 0 {
		w = 640
	}
	if ht <= 0 {
		ht = 200
	}
	id := sanitizeID(h.ID)
	if h.ID == "" {
		id = Chart{Title: h.Title}.id()
	}
	g := geometry{left: marginLeft, right: float64(w - marginRight), top: marginTop, bottom: float64(ht - marginBottom)}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart histogram" id="%s" role="img" aria-label="%s" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`,
		id, Escape(h.Title), w, ht, w, ht)
	fmt.Fprintf(&b, `<title>%s</title>`, Escape(h.Title))
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%d" height="%d" fill="#fff"/>`, w, ht)
	fmt.Fprintf(&b, `<text x="%d" y="18" font-size="13" font-weight="bold" fill="#222">%s</text>`, marginLeft, Escape(h.Title))
	bins := make([]Bin, 0, len(h.Bins))
	maxCount := 0
	for _, bn := range h.Bins {
		if finite(bn.From) && finite(bn.To) && bn.Count >= 0 {
			bins = append(bins, bn)
			maxCount = max(maxCount, bn.Count)
		}
	}
	if len(bins) == 0 || maxCount == 0 {
		fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="middle" fill="#888" font-size="13">no data</text></svg>`, n((g.left+g.right)/2), n((g.top+g.bottom)/2))
		return b.String()
	}
	lo, hi := bins[0].From, bins[len(bins)-1].To
	if hi <= lo {
		hi = lo + 1
	}
	g.x0, g.x1 = lo, hi
	ystep := niceStep(float64(maxCount), maxTicksY)
	ystep = math.Max(1, math.Round(ystep))
	// Headroom above the highest bar for its count.
	g.y0, g.y1 = 0, math.Ceil(1.12*float64(maxCount)/ystep)*ystep
	for _, t := range ticks(g.y0, g.y1, ystep) {
		y := g.py(t)
		fmt.Fprintf(&b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#e6e6e6"/>`, n(g.left), n(y), n(g.right), n(y))
		fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="end" fill="#444">%s</text>`, n(g.left-6), n(y+4), Escape(numberLabel(t, ystep, g.y1)))
	}
	h.drawXTicks(&b, g)
	for _, bn := range bins {
		x0, x1 := g.px(bn.From), g.px(bn.To)
		if x1-x0 < 1 {
			x1 = x0 + 1
		}
		if bn.Count == 0 {
			continue
		}
		top := math.Min(g.py(float64(bn.Count)), g.bottom-2)
		color := barColor
		if bn.Highlight {
			color = highlightColor
		}
		fmt.Fprintf(&b, `<rect x="%s" y="%s" width="%s" height="%s" fill="%s" fill-opacity="0.75"><title>%d</title></rect>`,
			n(x0+0.5), n(top), n(math.Max(x1-x0-1, 1)), n(g.bottom-top), color, bn.Count)
		fmt.Fprintf(&b, `<text x="%s" y="%s" text-anchor="middle" fill="#333" font-size="10">%d</text>`, n((x0+x1)/2), n(top-3), bn.Count)
	}
	fmt.Fprintf(&b, `<rect x="%s" y="%s" width="%s" height="%s" fill="none" stroke="#999"/>`, n(g.left), n(g.top), n(g.right-g.left), n(g.bottom-g.top))
	Chart{Marks: h.Marks}.drawMarks(&b, g)
	if l := axisTitle(h.X); l != "" {
		fmt.Fprintf(&b, `<text x="%s" y="%d" text-anchor="middle" fill="#333">%s</text>`, n((g.left+g.right)/2), ht-8, Escape(l))
	}
	cy := (g.top + g.bottom) / 2
	fmt.Fprintf(&b, `<text x="14" y="%s" text-anchor="middle" fill="#333" transform="rotate(-90 14 %s)">DSNs</text>`, n(cy), n(cy))
	b.WriteString(`</svg>`)
	return b.String()
}

func (h Histogram) drawXTicks(b *strings.Builder, g geometry) {
	span := g.x1 - g.x0
	step := niceStep(span, maxTicksX)
	if h.X.Time {
		step = timeStep(span, maxTicksX)
	}
	maxAbs := math.Max(math.Abs(g.x0), math.Abs(g.x1))
	for _, t := range ticks(g.x0, g.x1, step) {
		x := g.px(t)
		label := numberLabel(t, step, maxAbs)
		if h.X.Time {
			label = DurationLabel(t)
		}
		fmt.Fprintf(b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#999"/>`, n(x), n(g.bottom), n(x), n(g.bottom+4))
		fmt.Fprintf(b, `<text x="%s" y="%s" text-anchor="middle" fill="#444">%s</text>`, n(x), n(g.bottom+16), Escape(label))
	}
}
