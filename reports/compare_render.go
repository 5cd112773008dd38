package reports

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// File names a comparison writes. The Markdown summary and the JUnit file take the same names
// as a run's (SummaryFile, JUnitFile).
const (
	CompareHTMLFile = "compare.html"
	CompareJSONFile = "compare.json"
)

// CompareFiles are the files WriteComparison writes.
var CompareFiles = []string{SummaryFile, JUnitFile, CompareHTMLFile, CompareJSONFile}

// WriteComparison writes summary.md, junit.xml, compare.html and compare.json into dir
// (created if needed), each atomically. The error joins every failure.
func WriteComparison(dir string, c Comparison) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("reports: create comparison directory: %w", err)
	}
	var errs []error
	for _, f := range []struct {
		name   string
		render func(io.Writer, Comparison) error
	}{{SummaryFile, RenderCompareMarkdown}, {JUnitFile, RenderCompareJUnit}, {CompareHTMLFile, RenderCompareHTML}, {CompareJSONFile, RenderCompareJSON}} {
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

// RenderCompareJSON writes compare.json: the whole comparison, every run's value of every
// figure included, for tools.
func RenderCompareJSON(w io.Writer, c Comparison) error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(data, '\n'))
	return err
}

// markSet is the wording of verdicts: emoji for Markdown (rendered by the CI's web page),
// plain symbols for HTML, which must read without an emoji font.
type markSet struct {
	verdict          map[FigureVerdict]string
	noisy            string
	pass, fail, warn string
}

var (
	markdownMarks = markSet{
		verdict: map[FigureVerdict]string{Regressed: "❌ regressed", Improved: "✅ improved", Unchanged: "= no change",
			Inconclusive: "❔ inconclusive", Missing: "⚠️ missing", Info: "· info"},
		noisy: "〰️ too noisy to gate",
		pass:  "✅", fail: "❌", warn: "⚠️",
	}
	htmlMarks = markSet{
		verdict: map[FigureVerdict]string{Regressed: "▲ regressed", Improved: "▼ improved", Unchanged: "= no change",
			Inconclusive: "? inconclusive", Missing: "⚠ missing", Info: "· info"},
		noisy: "≈ too noisy to gate",
		pass:  "✔", fail: "✘", warn: "⚠",
	}
)

// Row groups, in the order the renderers show them.
const (
	groupFlagged      = iota // gated and regressed, improved or missing
	groupInconclusive        // gated, too few runs to judge
	groupNoisy               // gated, no significant move, too noisy to gate
	groupSteady              // gated, no change
	groupUngated             // judged but not gated
	groupInfo                // not judged
)

type compareRow struct {
	Name, Label, Base, Head, Change, P, Verdict, Why, Class string
	BaseCI, HeadCI                                          string
	Group                                                   int
	Gated                                                   bool
	rank                                                    int
}

var verdictRank = map[FigureVerdict]int{Regressed: 0, Missing: 1, Improved: 2, Inconclusive: 3, Unchanged: 4, Info: 5}

// displayName is how tables name a figure: built-in figures and SLOs by their label,
// measurement values by the name SLOs and gate files use.
func displayName(f FigureComparison) string {
	if _, builtin := Catalogue.Lookup(f.Name); builtin || IsSLOFigure(f.Name) {
		return f.Label
	}
	return SLOName(f.Name)
}

func formatSide(f FigureComparison, s Side) string {
	if len(s.Values) == 0 {
		return "—"
	}
	n := len(s.Values)
	count := 0
	for _, v := range s.Values {
		if v > 0 {
			count++
		}
	}
	var out string
	switch {
	case IsSLOFigure(f.Name) && count == 0:
		out = fmt.Sprintf("pass ×%d", n)
	case IsSLOFigure(f.Name):
		out = fmt.Sprintf("fail %d/%d", count, n)
	case f.Name == FigureBroken:
		out = fmt.Sprintf("%d/%d", count, n)
	case f.Kind == KindCorrectness && f.P == nil:
		out = figureValue(Figure{Value: s.Summary.Max, Unit: f.Unit})
		if count > 0 && n > 1 {
			out += fmt.Sprintf(" (in %d/%d)", count, n)
		}
	default:
		out = figureValue(Figure{Value: s.Summary.Median, Unit: f.Unit})
		if cv := s.Summary.CV; n > 1 && cv > 0 {
			out += " ±" + formatPercent(cv*100)
		}
	}
	if m := s.Missing(); m > 0 && f.Name != FigureBroken {
		out += fmt.Sprintf(" [%d/%d runs]", n, s.Runs)
	}
	return out
}

// formatPercent writes a spread or change readably: whole percents from 10%, one decimal
// below.
func formatPercent(pct float64) string {
	if math.Abs(pct) >= 10 {
		return fmt.Sprintf("%.0f%%", pct)
	}
	return fmt.Sprintf("%.1f%%", pct)
}

func formatCI(f FigureComparison, s Side) string {
	sum := s.Summary
	if f.Kind != KindPerformance || len(s.Values) == 0 {
		return ""
	}
	if math.IsNaN(sum.Lo) || math.IsNaN(sum.Hi) || math.IsInf(sum.Lo, 0) || math.IsInf(sum.Hi, 0) {
		return "" // too few runs for an interval at this confidence
	}
	return fmt.Sprintf("%s–%s (%s%%)", figureValue(Figure{Value: sum.Lo, Unit: f.Unit}), figureValue(Figure{Value: sum.Hi, Unit: f.Unit}), FormatNumber(sum.Confidence*100))
}

func formatChange(f FigureComparison) string {
	if f.Kind == KindInfo || len(f.Base.Values) == 0 || len(f.Head.Values) == 0 {
		return "—"
	}
	if f.Change == nil {
		return "from 0"
	}
	if f.Kind == KindCorrectness && f.P == nil {
		if *f.Change == 0 {
			return "0"
		}
		return fmt.Sprintf("%+g", *f.Change)
	}
	if *f.Change == 0 {
		return "0%"
	}
	return fmt.Sprintf("%+.1f%%", *f.Change*100)
}

func compareRows(c Comparison, marks markSet) []compareRow {
	out := make([]compareRow, 0, len(c.Figures))
	for i, f := range c.Figures {
		r := compareRow{Name: f.Name, Label: displayName(f), Base: formatSide(f, f.Base), Head: formatSide(f, f.Head),
			BaseCI: formatCI(f, f.Base), HeadCI: formatCI(f, f.Head),
			Change: formatChange(f), P: "—", Verdict: marks.verdict[f.Verdict], Why: f.Why, Gated: f.Gated, rank: i}
		if f.P != nil {
			r.P = formatP(*f.P)
		}
		if f.Noisy {
			r.Verdict = marks.noisy
			if f.Verdict == Regressed || f.Verdict == Improved {
				r.Verdict = marks.noisy + " (" + string(f.Verdict) + ")"
			}
		}
		switch {
		case f.Verdict == Regressed && !f.Noisy:
			r.Class = "bad"
		case f.Verdict == Improved && !f.Noisy:
			r.Class = "ok"
		}
		switch {
		case f.Verdict == Info:
			r.Group = groupInfo
		case !f.Gated:
			r.Group = groupUngated
			r.Verdict += " (not gated)"
		case f.Verdict == Inconclusive:
			r.Group = groupInconclusive
		case f.Verdict == Unchanged && f.Noisy:
			r.Group = groupNoisy
		case f.Verdict == Unchanged:
			r.Group = groupSteady
		default:
			r.Group = groupFlagged
		}
		out = append(out, r)
	}
	// Within a group: what fails the build first, then by verdict; a figure too noisy to gate
	// after those that gate.
	key := func(r compareRow) (int, int) {
		f := c.Figures[r.rank]
		noisy := 0
		if f.Noisy {
			noisy = 1
		}
		return noisy, verdictRank[f.Verdict]
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Group != b.Group {
			return a.Group < b.Group
		}
		an, av := key(a)
		bn, bv := key(b)
		if an != bn {
			return an < bn
		}
		return av < bv
	})
	return out
}

// compareHeadline sums the comparison up in one line.
func compareHeadline(c Comparison) string {
	var worse, noisyWorse []string
	var better, noisy, inconclusive, missing int
	for _, f := range c.Figures {
		if !f.Gated {
			continue
		}
		switch {
		case f.Noisy:
		case f.Verdict == Regressed:
			worse = append(worse, displayName(f))
		case f.Verdict == Improved:
			better++
		case f.Verdict == Inconclusive:
			inconclusive++
		case f.Verdict == Missing:
			missing++
		}
		if f.Noisy {
			noisy++
			if f.Verdict == Regressed {
				noisyWorse = append(noisyWorse, displayName(f))
			}
		}
	}
	var parts []string
	if better > 0 {
		parts = append(parts, fmt.Sprintf("%d %s better", better, plural(better, "figure", "figures")))
	}
	if missing > 0 {
		parts = append(parts, fmt.Sprintf("%d %s missing on a side", missing, plural(missing, "figure", "figures")))
	}
	if inconclusive > 0 {
		parts = append(parts, fmt.Sprintf("%d inconclusive (need >= %d runs per side)", inconclusive, c.NeedRuns))
	}
	if noisy > 0 {
		parts = append(parts, fmt.Sprintf("%d too noisy to gate", noisy))
	}
	if len(noisyWorse) > 0 {
		parts = append(parts, fmt.Sprintf("worse but too noisy to gate: %s", joinList(noisyWorse, 5)))
	}
	tail := ""
	if len(parts) > 0 {
		tail = "; " + strings.Join(parts, ", ")
	}
	if len(worse) > 0 {
		return fmt.Sprintf("regression: %d %s worse (%s)%s", len(worse), plural(len(worse), "figure", "figures"), joinList(worse, 5), tail)
	}
	return "no regression" + tail
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// sideLine describes one side: how many runs, of what, from where.
func sideLine(s SideInfo, code func(string) string) string {
	commits := make([]string, len(s.Commits))
	for i, c := range s.Commits {
		commits[i] = code(shortCommit(c))
	}
	if len(commits) == 0 {
		commits = []string{"no commit"}
	}
	line := fmt.Sprintf("%d %s of %s (%s %s)", len(s.Runs), plural(len(s.Runs), "run", "runs"), strings.Join(commits, ", "), s.Kind, code(s.Source))
	if n := len(s.Broken); n > 0 {
		line += fmt.Sprintf(", %d broken", n)
	}
	return line
}

func optionsLine(c Comparison) string {
	s := fmt.Sprintf("alpha %v · tolerance ±%s%%", c.Options.Alpha, FormatNumber(c.Options.Tolerance.For("")*100))
	for _, k := range sortedKeys(c.Options.Tolerance.Figures) {
		s += fmt.Sprintf(", %s ±%s%%", k, FormatNumber(c.Options.Tolerance.Figures[k]*100))
	}
	if len(c.Options.Gate) > 0 {
		s += fmt.Sprintf(" · %d performance %s gated", len(c.Options.Gate), plural(len(c.Options.Gate), "figure", "figures"))
	}
	return s
}

// RenderCompareMarkdown writes summary.md, made to be posted as a pull-request comment: the
// verdict, warnings, the gated figures that need a look (figure, base, head, change, p,
// verdict), then the rest folded away.
func RenderCompareMarkdown(w io.Writer, c Comparison) error {
	var b strings.Builder
	mark := markdownMarks.pass
	if c.Regressed() {
		mark = markdownMarks.fail
	}
	fmt.Fprintf(&b, "### %s %s: %s\n\n", mark, mdText(c.Scenario), mdText(compareHeadline(c)))
	fmt.Fprintf(&b, "Base: %s  \nHead: %s  \n%s\n", sideLine(c.Base, mdCode), sideLine(c.Head, mdCode), mdText(optionsLine(c)))
	for _, warn := range c.Warnings {
		fmt.Fprintf(&b, "\n> %s %s\n", markdownMarks.warn, mdText(warn))
	}
	groups := map[int][]compareRow{}
	for _, r := range compareRows(c, markdownMarks) {
		groups[r.Group] = append(groups[r.Group], r)
	}
	table := func(rs []compareRow, why bool) {
		b.WriteString("| Figure | Base | Head | Change | p | Verdict |")
		if why {
			b.WriteString(" Why |\n|---|---:|---:|---:|---:|---|---|\n")
		} else {
			b.WriteString("\n|---|---:|---:|---:|---:|---|\n")
		}
		for _, r := range rs {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |", mdText(r.Label), mdText(r.Base), mdText(r.Head), mdText(r.Change), r.P, r.Verdict)
			if why {
				fmt.Fprintf(&b, " %s |", mdText(r.Why))
			}
			b.WriteString("\n")
		}
	}
	if rs := groups[groupFlagged]; len(rs) > 0 {
		b.WriteString("\n")
		table(rs, true)
	} else {
		b.WriteString("\nNo gated figure moved significantly beyond its tolerance, and none is missing.\n")
	}
	fold := func(title string, rs []compareRow) {
		if len(rs) == 0 {
			return
		}
		fmt.Fprintf(&b, "\n<details><summary>%s (%d)</summary>\n\n", title, len(rs))
		table(rs, false)
		b.WriteString("\n</details>\n")
	}
	fold(fmt.Sprintf("Inconclusive: need >= %d runs per side", c.NeedRuns), groups[groupInconclusive])
	fold("Too noisy to gate with these runs", groups[groupNoisy])
	fold("Gated figures with no significant change", groups[groupSteady])
	fold("Figures not gated", groups[groupUngated])
	fold("Counts of what the runs did, not judged", groups[groupInfo])
	b.WriteString("\nMedians ± spread (coefficient of variation) over the runs; p from the Mann-Whitney U test. " +
		"Correctness figures show the highest value of each side: from a clean base, any increase is a regression.\n")
	_, err := io.WriteString(w, b.String())
	return err
}
