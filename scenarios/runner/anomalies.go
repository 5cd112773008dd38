package runner

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/dsnscale/dsnscale/reports"
	"github.com/dsnscale/dsnscale/scenarios/measure"
)

// findAnomalies gathers what went wrong over the whole run: the anomalies of every measurement
// that looks for them (taken run-wide here when the scenario did not take it run-wide itself)
// and the harness's own losses. They come from run-wide windows only, so that none is counted
// twice.
func (e *engine) findAnomalies(all []measured, runWide func(measure.Measurement) measured, timeline *measure.Timeline) []reports.Anomaly {
	var out []reports.Anomaly
	for _, m := range measure.Default.AnomalyFinders() {
		var rec *measured
		for i := range all {
			if all[i].Kind == m.Name() && all[i].Step == "" {
				rec = &all[i]
			}
		}
		if rec == nil {
			r := runWide(m)
			rec = &r
		}
		for _, a := range rec.anomalies {
			out = append(out, reports.Anomaly{Kind: a.Kind, Source: m.Name(), Summary: a.Summary, Count: a.Count, Of: a.Of,
				DSNs: a.DSNs, Examples: a.Examples})
		}
	}
	return append(out, e.harnessAnomalies(timeline)...)
}

// harnessAnomalies are the harness's own losses: DSN histories it kept only the end of, reports
// it could not read, samples its time-series store refused.
func (e *engine) harnessAnomalies(timeline *measure.Timeline) []reports.Anomaly {
	var out []reports.Anomaly
	truncated, rejected := timeline.Losses()
	if len(truncated) > 0 {
		ids := make([]string, 0, len(truncated))
		entries := 0
		for id, n := range truncated {
			ids = append(ids, id)
			entries += n
		}
		sort.Strings(ids)
		out = append(out, reports.Anomaly{Kind: measure.AnomalyDropped, Source: reports.SourceHarness,
			Summary: fmt.Sprintf("the harness kept only the latest history of %d DSNs (%d older entries dropped): measurements of those DSNs see only the end of the run", len(ids), entries),
			Count:   float64(entries), DSNs: ids[:min(len(ids), 20)]})
	}
	if rejected > 0 {
		out = append(out, reports.Anomaly{Kind: measure.AnomalyDropped, Source: reports.SourceHarness,
			Summary: fmt.Sprintf("the harness could not read %d reports of the DSNs: measurements miss what they said", rejected),
			Count:   float64(rejected)})
	}
	if e.series != nil && e.series.failed > 0 {
		out = append(out, reports.Anomaly{Kind: measure.AnomalyDropped, Source: reports.SourceHarness,
			Summary: fmt.Sprintf("the harness's time-series store refused %d writes (last: %v): charts miss those samples", e.series.failed, e.series.lastErr),
			Count:   float64(e.series.failed)})
	}
	return out
}

// dsnFigures measures each DSN over the whole run and finds the DSNs, and the groups of DSNs,
// that stood out.
func (e *engine) dsnFigures(ctx context.Context, base measure.Input, w measure.Window) []reports.DSNFigure {
	if len(base.DSNs) == 0 {
		return nil
	}
	in := base
	in.Window = w
	var out []reports.DSNFigure
	for _, v := range measure.PerDSN(ctx, &in) {
		if v.Missing != "" {
			out = append(out, reports.DSNFigure{Name: v.Name, Label: v.Label, Unit: v.Unit, Note: v.Note, Missing: v.Missing})
			continue
		}
		f := reports.AnalyseDSNs(v.Name, v.Label, v.Unit, v.Values, v.Censored, base.Labels)
		f.Note = v.Note
		out = append(out, f)
	}
	return out
}

// fleetLabelsByID returns each DSN's labels.
func (e *engine) fleetLabelsByID() map[string]map[string]string {
	if e.fleet == nil {
		return nil
	}
	out := map[string]map[string]string{}
	for _, d := range e.fleet.DSNs() {
		out[d.ID] = d.Labels
	}
	return out
}

// telemetryAtHorizon is what the fleet said it sent when the last step ended (what it sends
// after that is outside every window), or now when the run never got there.
func (e *engine) telemetryAtHorizon(horizon time.Time) measure.TelemetryCounts {
	e.mu.Lock()
	sent, ok := e.sentAtHorizon, e.sentKnown
	e.mu.Unlock()
	if ok {
		return sent
	}
	return e.fleet.Telemetry()
}

// scrapeCounters reads the control plane's loss counters from its metrics endpoint once.
func (e *engine) scrapeCounters(ctx context.Context) {
	if e.cp == nil {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	status, body, err := e.cp.API().Get(cctx, measure.MetricsPath)
	now := e.clock.Now()
	switch {
	case err != nil:
		e.counters.Fail(fmt.Sprintf("reading %s failed: %v", measure.MetricsPath, err))
		return
	case status != 200:
		e.counters.Fail(fmt.Sprintf("GET %s answered %d", measure.MetricsPath, status))
		return
	}
	values, err := measure.ParseLossCounters(strings.NewReader(string(body)))
	if err != nil {
		e.counters.Fail(fmt.Sprintf("%s could not be read: %v", measure.MetricsPath, err))
		return
	}
	e.counters.Add(now, values)
}

// watchCounters reads the control plane's loss counters every SampleInterval, so that what it
// counted before a restart of its own is not lost with it.
func (e *engine) watchCounters(ctx context.Context) {
	for {
		e.scrapeCounters(ctx)
		if sleepCtx(ctx, e.clock, e.opts.SampleInterval) != nil {
			return
		}
	}
}
