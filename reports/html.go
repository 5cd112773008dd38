package reports

import (
	"embed"
	"html/template"
	"io"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

var templates = template.Must(template.New("").ParseFS(templateFS, "templates/*.tmpl"))

// htmlChart is a chart ready for the template. The SVG comes from svgchart, which escapes every
// piece of text it places, so it is trusted markup.
type htmlChart struct {
	ID  string
	SVG template.HTML
}

func trustCharts(cs []chartView) []htmlChart {
	out := make([]htmlChart, len(cs))
	for i, c := range cs {
		out[i] = htmlChart{ID: c.ID, SVG: template.HTML(c.SVG)}
	}
	return out
}

type reportView struct {
	Run                  *Run
	Start, End, Duration string
	Commit               string
	Anomalies            []anomalyRow
	SLOs                 []sloRow
	Figures              []figureRow
	StepFigures          []stepFigureRow
	Charts               []htmlChart
	DSNs                 []htmlDSNFigure
	Changes              []changeRow
	Measurements         []measurementRow
	Notes                []noteRow
	Faults               []faultRow
	Steps                []stepRow
	Components           []componentRow
	Units                []unitRow
	Env, Params          []keyValue
}

// htmlDSNFigure is a per-DSN figure with its histogram as trusted markup (svgchart escapes every
// piece of text it places).
type htmlDSNFigure struct {
	dsnFigureView
	Histogram template.HTML
}

// RenderHTML writes report.html: one self-contained page (inline CSS and SVG, no script, no
// external resource) with, first, the anomalies (whatever the verdict), then the SLO verdicts,
// key figures of the run and of each step, charts with fault windows and step boundaries, the
// DSNs that stood out, the measurements and their notes, the fault timeline, steps, resource
// use, environment and the scenario file.
func RenderHTML(w io.Writer, r *Run) error {
	v := reportView{
		Run:          r,
		Start:        formatTime(r.Start),
		End:          formatTime(r.End),
		Duration:     formatDuration(r.Duration()),
		Commit:       shortCommit(r.Environment.GitCommit),
		Anomalies:    anomalyRows(r),
		SLOs:         sloRows(r),
		Figures:      keyFigures(r),
		StepFigures:  stepFigureRows(r),
		Charts:       trustCharts(runCharts(r)),
		Changes:      changeRows(r),
		Measurements: measurementRows(r),
		Notes:        noteRows(r),
		Faults:       faultRows(r),
		Steps:        stepRows(r),
		Components:   componentRows(r),
		Units:        unitRows(r),
		Env:          environmentRows(r),
		Params:       sortedPairs(r.Params),
	}
	for _, d := range dsnFigureViews(r) {
		v.DSNs = append(v.DSNs, htmlDSNFigure{dsnFigureView: d, Histogram: template.HTML(d.SVG)})
	}
	return templates.ExecuteTemplate(w, "report", v)
}
