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
	SLOs                 []sloRow
	Figures              []figureRow
	Charts               []htmlChart
	Changes              []changeRow
	Measurements         []measurementRow
	Faults               []faultRow
	Steps                []stepRow
	Components           []componentRow
	Env, Params          []keyValue
}

// RenderHTML writes report.html: one self-contained page (inline CSS and SVG, no script, no
// external resource) with the SLO verdicts, key figures, charts with fault windows and step
// boundaries, the fault timeline, steps, resource use, environment and the scenario file.
func RenderHTML(w io.Writer, r *Run) error {
	v := reportView{
		Run:          r,
		Start:        formatTime(r.Start),
		End:          formatTime(r.End),
		Duration:     formatDuration(r.Duration()),
		Commit:       shortCommit(r.Environment.GitCommit),
		SLOs:         sloRows(r),
		Figures:      keyFigures(r),
		Charts:       trustCharts(runCharts(r)),
		Changes:      changeRows(r),
		Measurements: measurementRows(r),
		Faults:       faultRows(r),
		Steps:        stepRows(r),
		Components:   componentRows(r),
		Env:          environmentRows(r),
		Params:       sortedPairs(r.Params),
	}
	return templates.ExecuteTemplate(w, "report", v)
}
