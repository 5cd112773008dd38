package reports

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/dsnscale/dsnscale/reports/svgchart"
)

// File names a comparison writes.
const (
	CompareHTMLFile     = "compare.html"
	CompareMarkdownFile = "compare.md"
)

// WriteComparison writes compare.html and compare.md into dir (created if needed), each
// atomically. The error joins every failure.
func WriteComparison(dir string, c Comparison) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("reports: create comparison directory: %w", err)
	}
	var errs []error
	for _, f := range []struct {
		name   string
		render func(io.Writer, Comparison) error
	}{{CompareHTMLFile, RenderCompareHTML}, {CompareMarkdownFile, RenderCompareMarkdown}} {
		var buf bytes.Buffer
		if err := f.render(&buf, c); err != nil {
			errs = append(errs, fmt.Errorf("reports: render %s: %w", f.name, err))
			continue
		}
		if err := writeAtomic(filepath.Join(dir, f.name), buf.Bytes()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

var changeRank = map[Change]int{Regressed: 0, Improved: 1, Changed: 2, Added: 3, Removed: 4, Unchanged: 5}

// markSet is the wording of changes and verdicts: emoji for Markdown (rendered by the CI's
// web page), plain symbols for HTML, which must read without an emoji font.
type markSet struct {
	figure, slo      map[Change]string
	pass, fail, warn string
}

var (
	markdownMarks = markSet{
		figure: map[Change]string{Regressed: "❌ regressed", Improved: "✅ improved", Changed: "⚠️ changed",
			Added: "➕ added", Removed: "➖ removed", Unchanged: "= within tolerance"},
		slo: map[Change]string{Regressed: "❌ now failing", Improved: "✅ now passing", Unchanged: "= same verdict",
			Added: "➕ added", Removed: "➖ removed"},
		pass: "✅", fail: "❌", warn: "⚠️",
	}
	htmlMarks = markSet{
		figure: map[Change]string{Regressed: "▲ regressed", Improved: "▼ improved", Changed: "△ changed",
			Added: "+ added", Removed: "− removed", Unchanged: "= within tolerance"},
		slo: map[Change]string{Regressed: "✘ now failing", Improved: "✔ now passing", Unchanged: "= same verdict",
			Added: "+ added", Removed: "− removed"},
		pass: "✔", fail: "✘", warn: "⚠",
	}
)

type figureDeltaRow struct {
	Label, Name, Base, Head, Ratio, Better, Change, Class string
	Flagged                                               bool
}

func formatFigure(v *float64, unit string) string {
	if v == nil {
		return "—"
	}
	return figureValue(Figure{Value: *v, Unit: unit})
}

func figureDeltaRows(c Comparison, marks markSet) []figureDeltaRow {
	fs := append([]FigureDelta(nil), c.Figures...)
	sort.SliceStable(fs, func(i, j int) bool { return changeRank[fs[i].Change] < changeRank[fs[j].Change] })
	out := make([]figureDeltaRow, len(fs))
	for i, f := range fs {
		ratio := "n/a"
		if f.Ratio != nil {
			ratio = FormatNumber(*f.Ratio) + "×"
		}
		class := ""
		switch f.Change {
		case Regressed:
			class = "bad"
		case Improved:
			class = "ok"
		}
		out[i] = figureDeltaRow{Label: f.Label, Name: f.Name, Base: formatFigure(f.Base, f.Unit), Head: formatFigure(f.Head, f.Unit),
			Ratio: ratio, Better: string(f.Better), Change: marks.figure[f.Change], Class: class, Flagged: f.Change != Unchanged}
	}
	return out
}

type sloChangeRow struct {
	Name, Base, Head, Change, Class string
}

func verdictText(v *Verdict, marks markSet) string {
	if v == nil {
		return "—"
	}
	obs := "not observed"
	if v.Observed != nil {
		obs = FormatValue(*v.Observed, v.Unit)
	}
	if v.Pass {
		return marks.pass + " " + obs
	}
	return marks.fail + " " + obs
}

func sloChangeRows(c Comparison, marks markSet) []sloChangeRow {
	ss := append([]SLOChange(nil), c.SLOs...)
	sort.SliceStable(ss, func(i, j int) bool { return changeRank[ss[i].Change] < changeRank[ss[j].Change] })
	out := make([]sloChangeRow, len(ss))
	for i, s := range ss {
		class := map[Change]string{Regressed: "bad", Improved: "ok"}[s.Change]
		out[i] = sloChangeRow{Name: s.Name, Base: verdictText(s.Base, marks), Head: verdictText(s.Head, marks), Change: marks.slo[s.Change], Class: class}
	}
	return out
}

// compareHeadline sums the comparison up in one line.
func compareHeadline(c Comparison) (regressed bool, text string) {
	var worse, better, slosBroken int
	for _, f := range c.Figures {
		switch f.Change {
		case Regressed:
			worse++
		case Improved:
			better++
		}
	}
	for _, s := range c.SLOs {
		if s.Change == Regressed {
			slosBroken++
		}
	}
	var parts []string
	if worse > 0 {
		parts = append(parts, fmt.Sprintf("%d %s worse", worse, plural(worse, "figure", "figures")))
	}
	if slosBroken > 0 {
		parts = append(parts, fmt.Sprintf("%d %s now failing", slosBroken, plural(slosBroken, "SLO", "SLOs")))
	}
	if better > 0 {
		parts = append(parts, fmt.Sprintf("%d %s better", better, plural(better, "figure", "figures")))
	}
	if c.Regressed() {
		return true, "regression: " + strings.Join(parts, ", ")
	}
	if len(parts) == 0 {
		return false, "no regression: every figure within tolerance"
	}
	return false, "no regression: " + strings.Join(parts, ", ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func toleranceText(t Tolerance) string {
	s := "±" + FormatNumber(t.For("")*100) + "%"
	for _, k := range sortedKeys(t.Figures) {
		s += fmt.Sprintf(", %s ±%s%%", k, FormatNumber(t.Figures[k]*100))
	}
	return s
}

func runLine(r RunInfo) string {
	return fmt.Sprintf("%s (commit %s, %s)", mdCode(r.ID), mdCode(shortCommit(r.GitCommit)), r.Result)
}

// RenderCompareMarkdown writes compare.md: the verdict, warnings, SLO verdict changes, then the
// figures beyond tolerance with head/base ratios; the figures within tolerance are folded away.
func RenderCompareMarkdown(w io.Writer, c Comparison) error {
	var b strings.Builder
	regressed, headline := compareHeadline(c)
	mark := markdownMarks.pass
	if regressed {
		mark = markdownMarks.fail
	}
	fmt.Fprintf(&b, "### %s Comparison of %s: %s\n\n", mark, mdText(c.Head.Scenario), mdText(headline))
	fmt.Fprintf(&b, "Base %s → head %s · tolerance %s\n", runLine(c.Base), runLine(c.Head), mdText(toleranceText(c.Tolerance)))
	for _, warn := range c.Warnings {
		fmt.Fprintf(&b, "\n> %s %s\n", markdownMarks.warn, mdText(warn))
	}
	if rows := sloChangeRows(c, markdownMarks); len(rows) > 0 {
		b.WriteString("\n**SLOs**\n\n| SLO | Base | Head | Change |\n|---|---:|---:|---|\n")
		for _, s := range rows {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", mdText(s.Name), mdText(s.Base), mdText(s.Head), s.Change)
		}
	}
	rows := figureDeltaRows(c, markdownMarks)
	var flagged, within []figureDeltaRow
	for _, f := range rows {
		if f.Flagged {
			flagged = append(flagged, f)
		} else {
			within = append(within, f)
		}
	}
	table := func(rs []figureDeltaRow) {
		b.WriteString("| Figure | Base | Head | Head/Base | Better | Change |\n|---|---:|---:|---:|---|---|\n")
		for _, f := range rs {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", mdText(f.Label), mdText(f.Base), mdText(f.Head), mdText(f.Ratio), f.Better, f.Change)
		}
	}
	if len(flagged) > 0 {
		fmt.Fprintf(&b, "\n**Figures beyond tolerance** (%d)\n\n", len(flagged))
		table(flagged)
	}
	if len(within) > 0 {
		fmt.Fprintf(&b, "\n<details><summary>Figures within tolerance (%d)</summary>\n\n", len(within))
		table(within)
		b.WriteString("\n</details>\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

type compareView struct {
	C               Comparison
	Headline        string
	Tolerance       string
	BaseCommit      string
	HeadCommit      string
	BaseStart       string
	HeadStart       string
	SLOs            []sloChangeRow
	Flagged, Within []figureDeltaRow
	Charts          []htmlChart
}

// RenderCompareHTML writes compare.html: the same content as compare.md, self-contained, with
// charts laying the head run's key series over the base run's.
func RenderCompareHTML(w io.Writer, c Comparison) error {
	_, headline := compareHeadline(c)
	v := compareView{C: c, Headline: headline, Tolerance: toleranceText(c.Tolerance),
		BaseCommit: shortCommit(c.Base.GitCommit), HeadCommit: shortCommit(c.Head.GitCommit),
		BaseStart: formatTime(c.Base.Start), HeadStart: formatTime(c.Head.Start),
		SLOs: sloChangeRows(c, htmlMarks)}
	for _, f := range figureDeltaRows(c, htmlMarks) {
		if f.Flagged {
			v.Flagged = append(v.Flagged, f)
		} else {
			v.Within = append(v.Within, f)
		}
	}
	v.Charts = trustCharts(overlayCharts(c))
	return templates.ExecuteTemplate(w, "compare", v)
}

func overlayCharts(c Comparison) []chartView {
	var out []chartView
	for i, o := range c.Overlays {
		unit, div := o.Unit, 1.0
		switch o.Unit {
		case UnitBytes:
			unit, div = bytesScale(seriesMax(o.Base, o.Head))
		case UnitMillis:
			unit, div = millisScale(seriesMax(o.Base, o.Head))
		}
		y := svgchart.Axis{Label: o.Name, Unit: unit, Min: svgchart.F(0)}
		if o.Unit == UnitPercent {
			y.Max = svgchart.F(100)
		}
		ch := svgchart.Chart{
			ID: fmt.Sprintf("overlay-%d", i), Title: o.Name + ": head over base",
			X: svgchart.Axis{Label: "time since start", Time: true, Min: svgchart.F(0)}, Y: y,
			Series: nonEmpty(
				svgchart.Series{Name: "base " + c.Base.ID, Points: points(o.Base, div), Color: "#888888", Dashed: true},
				svgchart.Series{Name: "head " + c.Head.ID, Points: points(o.Head, div), Color: "#1f77b4"}),
		}
		out = append(out, chartView{ID: ch.ID, Title: ch.Title, SVG: ch.SVG()})
	}
	return out
}
