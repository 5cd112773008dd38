package svgchart

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

type legendKind int

const (
	legendSeries legendKind = iota
	legendBand
	legendMark
)

type legendItem struct {
	kind   legendKind
	name   string
	color  string
	dashed bool
	// dot draws the swatch as a dot, for a scatter.
	dot bool
}

type legendPos struct {
	row int
	x   float64
}

func (c Chart) legendItems() []legendItem {
	var items []legendItem
	for i, s := range c.Series {
		items = append(items, legendItem{kind: legendSeries, name: s.Name, color: seriesColor(s, i), dashed: s.Dashed, dot: s.Style == Scatter})
	}
	if len(c.Bands) > 0 {
		name := c.BandLegend
		if name == "" {
			name = "fault"
		}
		items = append(items, legendItem{kind: legendBand, name: name})
	}
	if len(c.Marks) > 0 {
		name := c.MarkLegend
		if name == "" {
			name = "step boundary"
		}
		items = append(items, legendItem{kind: legendMark, name: name})
	}
	return items
}

// itemWidth is the space a legend entry takes: swatch, gap, text, spacing.
func itemWidth(it legendItem) float64 {
	return 18 + 4 + float64(utf8.RuneCountInString(it.name))*charWidth + 16
}

// layoutLegend places entries left to right, wrapping to a new row when one would overflow.
func layoutLegend(items []legendItem, width float64) []legendPos {
	pos := make([]legendPos, len(items))
	row, x := 0, 0.0
	for i, it := range items {
		w := itemWidth(it)
		if x > 0 && x+w > width {
			row, x = row+1, 0
		}
		pos[i] = legendPos{row: row, x: x}
		x += w
	}
	return pos
}

func drawLegend(b *strings.Builder, items []legendItem, pos []legendPos, left, top float64) {
	if len(items) == 0 {
		return
	}
	b.WriteString(`<g class="legend">`)
	for i, it := range items {
		x := left + pos[i].x
		y := top + float64(pos[i].row*legendRow) + 9
		switch {
		case it.kind == legendSeries && it.dot:
			fmt.Fprintf(b, `<circle cx="%s" cy="%s" r="3" fill="%s"/>`, n(x+9), n(y), Escape(it.color))
		case it.kind == legendSeries:
			dash := ""
			if it.dashed {
				dash = ` stroke-dasharray="4 2"`
			}
			fmt.Fprintf(b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="3"%s/>`, n(x), n(y), n(x+18), n(y), Escape(it.color), dash)
		case it.kind == legendBand:
			fmt.Fprintf(b, `<rect x="%s" y="%s" width="18" height="10" fill="#e45756" fill-opacity="0.3"/>`, n(x), n(y-5))
		case it.kind == legendMark:
			fmt.Fprintf(b, `<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="#555" stroke-dasharray="4 3"/>`, n(x+9), n(y-6), n(x+9), n(y+6))
		}
		fmt.Fprintf(b, `<text x="%s" y="%s" fill="#333">%s</text>`, n(x+22), n(y+4), Escape(it.name))
	}
	b.WriteString(`</g>`)
}

// Escape makes s safe as XML or HTML text and attribute content: it escapes the markup
// characters and drops characters XML forbids (most control characters), which some names in
// user files may carry.
func Escape(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case r == '&':
			b.WriteString("&amp;")
		case r == '"':
			b.WriteString("&#34;")
		case r == '\'':
			b.WriteString("&#39;")
		case r == '\t' || r == '\n' || r == '\r':
			b.WriteByte(' ')
		case r < 0x20, r >= 0x7f && r < 0xa0, r == utf8.RuneError, r == 0xfffe, r == 0xffff, r >= 0xd800 && r < 0xe000:
			// not allowed (or unwise) in XML text
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
