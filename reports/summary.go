package reports

import (
	"fmt"
	"io"
	"strings"
)

var resultMark = map[Result]string{ResultPass: "✅", ResultFail: "❌", ResultAborted: "⛔"}

// RenderSummary writes summary.md: a short Markdown summary for a CI comment with the result,
// the anomalies first (whatever the verdict), the SLO table with pass/fail marks, the key
// figures of the run and of each step and the DSNs that stood out; measurement values and
// notes are folded away.
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
	writeAnomalies(&b, r)

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
	if rows := stepFigureRows(r); len(rows) > 1 {
		b.WriteString("\n**By step**\n\n| Window | Duration | Acked (lowest) | API p99 (worst) | API requests | API errors | To 99% acked (worst) | CP cores | CP peak RSS |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, s := range rows {
			name := mdText(s.Name)
			if s.Phase != "" {
				name += " (" + mdText(s.Phase) + ")"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", name, mdText(s.Duration), mdText(s.Acked), mdText(s.P99),
				mdText(s.Requests), mdText(s.Errors), mdText(s.To99), mdText(s.CPCores), mdText(s.CPRSS))
		}
	}
	writeStandouts(&b, r)
	if ms := measurementRows(r); len(ms) > 0 {
		fmt.Fprintf(&b, "\n<details><summary>Measurements (%d values)</summary>\n\n| Measurement | Step | Value | |\n|---|---|---|---:|\n", len(ms))
		for _, m := range ms {
			fig := m.Figure
			if m.Missing != "" {
				fig = "missing: " + m.Missing
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", mdText(m.Measurement), mdText(m.Step), mdText(m.Value), mdText(fig))
		}
		if notes := noteRows(r); len(notes) > 0 {
			b.WriteString("\nNotes:\n\n")
			for _, n := range notes {
				fmt.Fprintf(&b, "- %s: %s\n", mdText(n.Measurement), mdText(n.Note))
			}
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

// maxSummaryAnomalies bounds the anomalies summary.md lists; report.html has them all.
const maxSummaryAnomalies = 20

// writeAnomalies lists what went wrong, first, whatever the verdict.
func writeAnomalies(b *strings.Builder, r *Run) {
	rows := anomalyRows(r)
	if len(rows) == 0 {
		b.WriteString("\n**Anomalies:** none (nothing lost, dropped, refused, duplicated or generator-limited).\n")
		return
	}
	fmt.Fprintf(b, "\n**⚠ Anomalies: %d**\n\n", len(rows))
	for i, a := range rows {
		if i == maxSummaryAnomalies {
			fmt.Fprintf(b, "- and %d more in report.html\n", len(rows)-i)
			break
		}
		fmt.Fprintf(b, "- **%s** (%s): %s", mdText(a.Kind), mdText(a.Where), mdText(a.Summary))
		if a.DSNs != "" {
			fmt.Fprintf(b, "; DSNs %s", mdText(firstWords(a.DSNs, 5)))
		}
		b.WriteString("\n")
	}
}

// firstWords keeps the first n items of a comma-separated list.
func firstWords(list string, n int) string {
	parts := strings.Split(list, ", ")
	if len(parts) <= n {
		return list
	}
	return strings.Join(parts[:n], ", ") + ", …"
}

// writeStandouts names the DSNs and groups of DSNs that stood out.
func writeStandouts(b *strings.Builder, r *Run) {
	views := dsnFigureViews(r)
	var lines []string
	for _, v := range views {
		for _, s := range v.StoodOut {
			lines = append(lines, v.Label+": "+s)
		}
	}
	if len(views) == 0 {
		return
	}
	if len(lines) == 0 {
		b.WriteString("\n**DSNs that stood out:** none.\n")
		return
	}
	b.WriteString("\n**DSNs that stood out**\n\n")
	for _, l := range lines {
		fmt.Fprintf(b, "- %s\n", mdText(l))
	}
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
