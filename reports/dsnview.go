package reports

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/dsnscale/dsnscale/reports/svgchart"
)

// maxStoodOutNamed bounds the DSNs a summary line names.
const maxStoodOutNamed = 5

// dsnFigureView is one per-DSN figure as the renderers print it.
type dsnFigureView struct {
	ID, Name, Label, Note, Missing, Summary string
	SVG                                     string
	Top                                     []dsnScoreRow
	Groups                                  []groupRow
	// StoodOut sums up the DSNs and groups that stood out, one line each.
	StoodOut []string
}

type dsnScoreRow struct {
	DSN, Value, Z, Labels string
	Outlier               bool
}

type groupRow struct {
	Group, DSNs, Median, Z, Outliers string
	Outlier                          bool
}

// dsnValue formats a per-DSN value in its unit.
func dsnValue(v float64, unit string) string {
	if unit == UnitSeconds {
		return FormatMillis(v * 1000)
	}
	return FormatValue(v, unit)
}

func formatZ(z float64) string { return FormatNumber(math.Round(z*10) / 10) }

func labelList(ls map[string]string) string {
	keys := make([]string, 0, len(ls))
	for k := range ls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + ls[k]
	}
	return strings.Join(parts, " ")
}

func dsnFigureViews(r *Run) []dsnFigureView {
	out := make([]dsnFigureView, 0, len(r.DSNs))
	for i, f := range r.DSNs {
		v := dsnFigureView{ID: fmt.Sprintf("dsn-%d", i), Name: f.Name, Label: f.Label, Note: f.Note, Missing: f.Missing}
		if f.Missing != "" {
			out = append(out, v)
			continue
		}
		v.Summary = fmt.Sprintf("%s DSNs: median %s, MAD %s, p90 %s, max %s; %s stood out",
			FormatNumber(float64(f.DSNs)), dsnValue(f.Median, f.Unit), dsnValue(f.MAD, f.Unit), dsnValue(f.P90, f.Unit), dsnValue(f.Max, f.Unit),
			FormatNumber(float64(f.Outliers)))
		if f.Censored > 0 {
			v.Summary += fmt.Sprintf("; %s had not got there by the end (counted until then)", FormatNumber(float64(f.Censored)))
		}
		v.SVG = dsnHistogram(v.ID, f)
		// Groups first: a rack or a version that stands out as a whole is the finding.
		for _, g := range f.Groups {
			row := groupRow{Group: g.Label + "=" + g.Value, DSNs: FormatNumber(float64(g.DSNs)), Median: dsnValue(g.Median, f.Unit),
				Z: formatZ(g.Z), Outliers: FormatNumber(float64(g.Outliers)), Outlier: StandsOut(g.Z)}
			v.Groups = append(v.Groups, row)
			if row.Outlier {
				v.StoodOut = append(v.StoodOut, fmt.Sprintf("%s %s stood out: median %s over %s DSNs (z %s); %s of them stood out",
					g.Label, g.Value, row.Median, row.DSNs, row.Z, row.Outliers))
			}
		}
		var highest []string
		for _, s := range f.Top {
			val := dsnValue(s.Value, f.Unit)
			if s.Censored {
				val = "≥ " + val
			}
			row := dsnScoreRow{DSN: s.DSN, Value: val, Z: formatZ(s.Z), Labels: labelList(s.Labels), Outlier: StandsOut(s.Z)}
			v.Top = append(v.Top, row)
			if row.Outlier && len(highest) < maxStoodOutNamed {
				highest = append(highest, fmt.Sprintf("%s %s (z %s)", s.DSN, val, row.Z))
			}
		}
		if f.Outliers > 0 {
			v.StoodOut = append(v.StoodOut, fmt.Sprintf("%s of %s DSNs stood out; the highest: %s",
				FormatNumber(float64(f.Outliers)), FormatNumber(float64(f.DSNs)), strings.Join(highest, ", ")))
		}
		out = append(out, v)
	}
	return out
}

// dsnHistogram draws a figure's distribution, the bins of the values that stood out in red and
// the median marked.
func dsnHistogram(id string, f DSNFigure) string {
	cut := f.Max + 1
	for _, s := range f.Top {
		if StandsOut(s.Z) && s.Value < cut {
			cut = s.Value
		}
	}
	bins := make([]svgchart.Bin, len(f.Histogram))
	for i, b := range f.Histogram {
		bins[i] = svgchart.Bin{From: b.From, To: b.To, Count: b.Count, Highlight: b.Count > 0 && b.To > cut}
	}
	h := svgchart.Histogram{ID: id, Title: f.Label + ": DSNs by value",
		X: svgchart.Axis{Label: f.Label, Unit: axisUnit(f.Unit), Time: f.Unit == UnitSeconds}, Bins: bins,
		Marks: []svgchart.Mark{{At: f.Median, Label: "median"}}}
	return h.SVG()
}
