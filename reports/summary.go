package reports

import (
	"fmt"
	"io"
	"strings"
)

var resultMark = map[Result]string{ResultPass: "✅", ResultFail: "❌", ResultAborted: "⛔"}

// RenderSummary writes summary.md: a short Markdown summary for a CI comment with the result,
// the SLO table with pass/fail marks and the key figures; measurement values are folded away.
func RenderSummary(w io.Writer, r *Run) error {
	var b strings.Builder
	mark := resultMark[r.Result]
	if mark == "" {
		mark = "❔"
	}
	fmt.Fprintf(&b, "### %s %s: %s\n\n", mark, mdText(r.Scenario.Name), mdText(string(r.Result)))
	fmt.Fprintf(&b, "Run %s · %s · took %s · commit %s · %d CPUs\n",
		mdCode(r.ID), formatTime(r.Start), formatDuration(r.Duration()), mdCode(shortCommit(r.Environment.GitCommit)), r.Environment.NumCPU)
	if len(r.Params) > 0 {
		var ps []string
		for _, kv := range sortedPairs(r.Params) {
			ps = append(ps, mdCode(kv.Key+"="+kv.Value))
		}
		fmt.Fprintf(&b, "\nParameters: %s\n", strings.Join(ps, ", "))
	}
	if r.Error != "" {
		fmt.Fprintf(&b, "\n> **Error:** %s\n", mdText(r.Error))
	}

	rows := sloRows(r)
	if len(rows) == 0 {
		b.WriteString("\nNo SLO verdicts.\n")
	} else {
		failed := 0
		for _, s := range rows {
			if !s.Pass {
				failed++
			}
		}
		fmt.Fprintf(&b, "\n**SLOs:** %d of %d passed\n\n", len(rows)-failed, len(rows))
		b.WriteString("| | SLO | Measurement | Threshold | Observed |\n|---|---|---|---:|---:|\n")
		for _, s := range rows {
			m := "✅"
			if !s.Pass {
				m = "❌"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", m, mdText(s.Name), mdText(s.Measurement), mdText(s.Condition), mdText(s.Observed))
		}
	}

	if figs := keyFigures(r); len(figs) > 0 {
		b.WriteString("\n**Key figures**\n\n| Figure | Value |\n|---|---:|\n")
		for _, f := range figs {
			fmt.Fprintf(&b, "| %s | %s |\n", mdText(f.Label), mdText(f.Value))
		}
	}
	if ms := measurementRows(r); len(ms) > 0 {
		fmt.Fprintf(&b, "\n<details><summary>Measurements (%d values)</summary>\n\n| Measurement | Step | Value | |\n|---|---|---|---:|\n", len(ms))
		for _, m := range ms {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", mdText(m.Measurement), mdText(m.Step), mdText(m.Value), mdText(m.Figure))
		}
		b.WriteString("\n</details>\n")
	}
	if n := len(r.Faults); n > 0 {
		failed := 0
		for _, f := range r.Faults {
			if f.Error != "" {
				failed++
			}
		}
		fmt.Fprintf(&b, "\nFaults injected: %d", n)
		if failed > 0 {
			fmt.Fprintf(&b, " (%d with errors)", failed)
		}
		b.WriteString(". The full report is in report.html.\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// mdText makes s safe inside Markdown text and table cells: no line breaks, no table or
// emphasis syntax, no HTML.
func mdText(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\n', '\r', '\t':
			b.WriteByte(' ')
		case '|', '\\', '*', '_', '`', '[', ']', '#', '~':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		default:
			if r < 0x20 || r == 0x7f {
				continue
			}
			b.WriteRune(r)
		}
	}
	return b.String()
}

// mdCode formats s as inline code, or as escaped text when it holds a backquote or a
// character a code span cannot carry.
func mdCode(s string) string {
	if s == "" || strings.ContainsAny(s, "`|\n\r") {
		return mdText(s)
	}
	return "`" + s + "`"
}
