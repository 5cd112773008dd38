package svgchart

import (
	"fmt"
	"sort"
	"strings"
)

func (c Chart) drawSeries(b *strings.Builder, g geometry, id string) {
	fmt.Fprintf(b, `<g clip-path="url(#%s-plot)">`, id)
	base := g.py(clamp(0, g.y0, g.y1))
	for i, s := range c.Series {
		color := seriesColor(s, i)
		clean := cleanPoints(s.Points)
		if len(clean) == 0 {
			continue
		}
		fmt.Fprintf(b, `<g class="series"><title>%s</title>`, Escape(s.Name))
		width := int(g.right - g.left)
		span := clean[len(clean)-1].X - clean[0].X
		for _, run := range splitAtGaps(clean, s.Gap) {
			// Each run keeps its share of the decimation budget.
			share := width
			if span > 0 && len(run) > 1 {
				share = max(1, int(float64(width)*(run[len(run)-1].X-run[0].X)/span))
			}
			if s.Style == Scatter {
				share = len(run) // every point is a measurement of its own
			}
			c.drawRun(b, g, s, color, base, decimate(run, share))
		}
		b.WriteString(`</g>`)
	}
	b.WriteString(`</g>`)
}

// drawRun draws one unbroken stretch of a series.
func (c Chart) drawRun(b *strings.Builder, g geometry, s Series, color string, base float64, pts []Point) {
	dash := ""
	if s.Dashed {
		dash = ` stroke-dasharray="6 3"`
	}
	var coords strings.Builder
	for j, p := range pts {
		if j > 0 {
			coords.WriteByte(' ')
		}
		coords.WriteString(n(g.px(p.X)) + "," + n(g.py(p.Y)))
	}
	if s.Style == Area && len(pts) > 1 {
		fmt.Fprintf(b, `<polygon points="%s,%s %s %s,%s" fill="%s" fill-opacity="0.18" stroke="none"/>`,
			n(g.px(pts[0].X)), n(base), coords.String(), n(g.px(pts[len(pts)-1].X)), n(base), Escape(color))
	}
	width := "1.8"
	if s.Style == Markers {
		width = "1"
	}
	if len(pts) > 1 && s.Style != Scatter {
		fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="%s" stroke-linejoin="round"%s/>`, coords.String(), Escape(color), width, dash)
	}
	if s.Style == Markers || s.Style == Scatter || len(pts) == 1 {
		for _, p := range pts {
			fmt.Fprintf(b, `<circle cx="%s" cy="%s" r="3" fill="%s"/>`, n(g.px(p.X)), n(g.py(p.Y)), Escape(color))
		}
	}
}

// splitAtGaps cuts sorted points into runs wherever two neighbours are more than gap apart on
// X; a gap of 0 or less keeps them together.
func splitAtGaps(pts []Point, gap float64) [][]Point {
	if gap <= 0 {
		return [][]Point{pts}
	}
	var out [][]Point
	start := 0
	for i := 1; i < len(pts); i++ {
		if pts[i].X-pts[i-1].X > gap {
			out = append(out, pts[start:i])
			start = i
		}
	}
	return append(out, pts[start:])
}

func seriesColor(s Series, i int) string {
	if s.Color != "" {
		return s.Color
	}
	return Palette[i%len(Palette)]
}

// cleanPoints drops non-finite points and sorts the rest by X.
func cleanPoints(in []Point) []Point {
	out := make([]Point, 0, len(in))
	for _, p := range in {
		if finite(p.X) && finite(p.Y) {
			out = append(out, p)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].X < out[j].X })
	return out
}

// decimate keeps, for each of about width buckets along X, the first, lowest, highest and last
// point, so that a long series keeps its shape (spikes included) at a size bounded by the
// chart width rather than the series length.
func decimate(pts []Point, width int) []Point {
	if width < 1 || len(pts) <= 4*width {
		return pts
	}
	x0, x1 := pts[0].X, pts[len(pts)-1].X
	if x1 == x0 {
		return pts[:1]
	}
	out := make([]Point, 0, 4*width)
	start := 0
	for start < len(pts) {
		bucket := int(float64(width) * (pts[start].X - x0) / (x1 - x0))
		end := start + 1
		for end < len(pts) && int(float64(width)*(pts[end].X-x0)/(x1-x0)) == bucket {
			end++
		}
		lo, hi := start, start
		for k := start; k < end; k++ {
			if pts[k].Y < pts[lo].Y {
				lo = k
			}
			if pts[k].Y > pts[hi].Y {
				hi = k
			}
		}
		idx := []int{start, lo, hi, end - 1}
		sort.Ints(idx)
		prev := -1
		for _, k := range idx {
			if k != prev {
				out = append(out, pts[k])
				prev = k
			}
		}
		start = end
	}
	return out
}
