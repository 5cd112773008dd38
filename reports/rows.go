package reports

import (
	"sort"
	"strconv"
	"strings"
)

// The rows below are what the HTML and Markdown renderers print; building them once keeps the
// two in agreement.

type sloRow struct {
	Name, Measurement, Condition, Observed string
	Pass                                   bool
}

func sloRows(r *Run) []sloRow {
	out := make([]sloRow, len(r.SLOs))
	for i, v := range r.SLOs {
		obs := "missing"
		if v.Reason != "" {
			obs += ": " + v.Reason
		}
		if v.Observed == nil && v.MissingOK {
			obs += " (the SLO allows a missing value)"
		}
		if v.Observed != nil {
			obs = FormatObserved(*v.Observed, v.Threshold, v.Unit)
		}
		out[i] = sloRow{Name: v.Name, Measurement: v.Measurement, Condition: string(v.Op) + " " + FormatValue(v.Threshold, v.Unit), Observed: obs, Pass: v.Pass}
	}
	return out
}

type figureRow struct {
	Name, Label, Value string
}

func figureValue(f Figure) string {
	if f.Unit == UnitMillis {
		return FormatMillis(f.Value)
	}
	if f.Unit == UnitSeconds {
		return FormatMillis(f.Value * 1000)
	}
	return FormatValue(f.Value, f.Unit)
}

// keyFigures are the built-in figures, those every run of any scenario has.
func keyFigures(r *Run) []figureRow {
	var out []figureRow
	for _, f := range r.builtinFigures() {
		out = append(out, figureRow{Name: f.Name, Label: f.Label, Value: figureValue(f)})
	}
	return out
}

type measurementRow struct {
	Measurement, Kind, Step, Value, Figure string
	// Missing says why the value has no number.
	Missing string
}

func measurementRows(r *Run) []measurementRow {
	var out []measurementRow
	for _, m := range r.Measurements {
		for _, v := range m.Values {
			row := measurementRow{Measurement: m.Name, Kind: m.Kind, Step: m.Step, Value: v.Name}
			if v.Present() {
				row.Figure = FormatValue(v.Value, v.Unit)
			} else {
				row.Figure, row.Missing = "missing", v.Missing
			}
			out = append(out, row)
		}
	}
	return out
}

// noteRow is one remark of a measurement.
type noteRow struct {
	Measurement, Note string
}

func noteRows(r *Run) []noteRow {
	var out []noteRow
	for _, m := range r.Measurements {
		for _, n := range m.Notes {
			out = append(out, noteRow{Measurement: m.Name, Note: n})
		}
	}
	return out
}

type changeRow struct {
	Revision, Step, Description, At, Targets string
	To                                       [4]string
}

func changeRows(r *Run) []changeRow {
	out := make([]changeRow, len(r.Convergence))
	for i, c := range r.Convergence {
		row := changeRow{Revision: strconv.FormatUint(c.Revision, 10), Step: c.Step, Description: c.Description,
			At: formatOffset(r.Start, c.At), Targets: FormatNumber(float64(c.Targets))}
		for k, q := range convergenceQuantiles {
			row.To[k] = "never"
			if v := q.get(c); v != nil {
				row.To[k] = FormatMillis(*v)
			}
		}
		out[i] = row
	}
	return out
}

type faultRow struct {
	Kind, Target, Step, Start, End, Duration, Error string
}

func faultRows(r *Run) []faultRow {
	out := make([]faultRow, len(r.Faults))
	for i, f := range r.Faults {
		row := faultRow{Kind: f.Kind, Target: f.Target, Step: f.Step, Start: formatOffset(r.Start, f.Start), Error: f.Error}
		if f.End.IsZero() {
			row.End, row.Duration = "not recovered", formatDuration(r.End.Sub(f.Start))+" or more"
		} else {
			row.End, row.Duration = formatOffset(r.Start, f.End), formatDuration(f.End.Sub(f.Start))
		}
		out[i] = row
	}
	return out
}

type stepRow struct {
	Name, Phase, Start, End, Duration, Error string
}

func stepRows(r *Run) []stepRow {
	out := make([]stepRow, len(r.Steps))
	for i, s := range r.Steps {
		out[i] = stepRow{Name: s.Name, Phase: s.Phase, Start: formatOffset(r.Start, s.Start), End: formatOffset(r.Start, s.End), Duration: formatDuration(s.End.Sub(s.Start)), Error: s.Error}
	}
	return out
}

type componentRow struct {
	Name, CPUSeconds, MeanCores, PeakRSS string
}

func componentRows(r *Run) []componentRow {
	comps := append([]Component(nil), r.Components...)
	sort.SliceStable(comps, func(i, j int) bool { return componentRank(comps[i].Name) < componentRank(comps[j].Name) })
	out := make([]componentRow, len(comps))
	dur := r.Duration().Seconds()
	for i, c := range comps {
		cores := "n/a"
		if dur > 0 {
			cores = FormatNumber(c.CPUSeconds / dur)
		}
		out[i] = componentRow{Name: c.Name, CPUSeconds: FormatNumber(c.CPUSeconds) + " s", MeanCores: cores, PeakRSS: formatBytes(float64(c.PeakRSSBytes))}
	}
	return out
}

// unitRow is a unit of the fleet with where it ran and what it used.
type unitRow struct {
	Name, Place, Host, DSNs, CPUSeconds, PeakRSS, PerDSN string
}

// unitRows lists the units by host, then name, so that what ran together reads together.
func unitRows(r *Run) []unitRow {
	units := append([]Unit(nil), r.Units...)
	sort.SliceStable(units, func(i, j int) bool {
		if units[i].Host != units[j].Host {
			return units[i].Host < units[j].Host
		}
		return units[i].Name < units[j].Name
	})
	out := make([]unitRow, len(units))
	for i, u := range units {
		row := unitRow{Name: u.Name, Place: strings.Trim(u.Site+"/"+u.Rack, "/"), Host: u.Host, DSNs: strconv.Itoa(u.DSNs)}
		if u.Missing != "" {
			row.Host, row.CPUSeconds, row.PeakRSS, row.PerDSN = "missing: "+u.Missing, "missing", "missing", "missing"
		} else {
			row.CPUSeconds, row.PeakRSS = FormatNumber(u.CPUSeconds)+" s", formatBytes(float64(u.PeakRSSBytes))
			row.PerDSN = "n/a"
			if u.DSNs > 0 {
				row.PerDSN = formatBytes(float64(u.PeakRSSBytes) / float64(u.DSNs))
			}
		}
		out[i] = row
	}
	return out
}

type keyValue struct{ Key, Value string }

func environmentRows(r *Run) []keyValue {
	e := r.Environment
	out := []keyValue{
		{"git commit", shortCommit(e.GitCommit)},
		{"Go", e.GoVersion},
		{"OS/arch", e.OS + "/" + e.Arch},
		{"CPUs", strconv.Itoa(e.NumCPU)},
		{"host", e.Hostname},
	}
	return append(out, sortedPairs(e.Extra)...)
}

func sortedPairs(m map[string]string) []keyValue {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]keyValue, len(keys))
	for i, k := range keys {
		out[i] = keyValue{k, m[k]}
	}
	return out
}
