package reports

import (
	"fmt"
	"strings"
)

// Kinds of anomaly the record itself shows, beside those the run found (Run.Anomalies).
const (
	AnomalyStepFailed  = "step-failed"
	AnomalyFaultFailed = "fault-failed"
)

// anomalyRow is one anomaly as the renderers print it.
type anomalyRow struct {
	Kind, Where, Summary, Count string
	DSNs                        string
	Examples                    []string
}

// AllAnomalies returns what went wrong in a run: the anomalies it recorded, then the steps that
// failed and the faults that could not be injected or recovered.
func (r *Run) AllAnomalies() []Anomaly {
	out := append([]Anomaly(nil), r.Anomalies...)
	for _, s := range r.Steps {
		if s.Error != "" {
			out = append(out, Anomaly{Kind: AnomalyStepFailed, Source: "run", Step: s.Name, Summary: "step " + s.Name + ": " + s.Error, Count: 1})
		}
	}
	for _, f := range r.Faults {
		if f.Error != "" {
			out = append(out, Anomaly{Kind: AnomalyFaultFailed, Source: "run", Step: f.Step, Summary: f.Kind + " on " + f.Target + ": " + f.Error, Count: 1})
		}
	}
	return out
}

func anomalyRows(r *Run) []anomalyRow {
	as := r.AllAnomalies()
	out := make([]anomalyRow, len(as))
	for i, a := range as {
		where := a.Source
		if a.Step != "" && a.Source != "run" {
			where += " (step " + a.Step + ")"
		}
		row := anomalyRow{Kind: a.Kind, Where: where, Summary: a.Summary, Count: FormatNumber(a.Count), Examples: a.Examples}
		if a.Of > 0 {
			row.Count += " of " + FormatNumber(a.Of)
		}
		row.DSNs = strings.Join(a.DSNs, ", ")
		out[i] = row
	}
	return out
}

// AnomalyLines are the run's anomalies, one line each, for a terminal.
func AnomalyLines(r *Run) []string {
	var out []string
	for _, a := range r.AllAnomalies() {
		line := fmt.Sprintf("%s: %s", a.Kind, a.Summary)
		if len(a.DSNs) > 0 {
			line += " (DSNs " + strings.Join(a.DSNs[:min(len(a.DSNs), 5)], ", ")
			if len(a.DSNs) > 5 {
				line += ", …"
			}
			line += ")"
		}
		out = append(out, line)
	}
	return out
}
