package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/dsnscale/dsnscale/cptarget"
	"github.com/dsnscale/dsnscale/faults"
	"github.com/dsnscale/dsnscale/reports"
	"github.com/dsnscale/dsnscale/scenarios"
	"github.com/dsnscale/dsnscale/scenarios/measure"
)

// DetailsFile holds what measurements found beyond their figures (stragglers, per-DSN
// recoveries, violations, notes and why a value is missing), next to run.json.
const DetailsFile = "measurements.json"

// measured is one measurement taken over one window.
type measured struct {
	Name    string          `json:"name"`
	Kind    string          `json:"kind"`
	Step    string          `json:"step,omitempty"`
	Start   time.Time       `json:"start"`
	End     time.Time       `json:"end"`
	Values  []measure.Value `json:"values"`
	Notes   []string        `json:"notes,omitempty"`
	Error   string          `json:"error,omitempty"`
	Details any             `json:"details,omitempty"`

	anomalies []measure.Anomaly
}

// buildRecord takes the measurements, judges the SLOs and assembles the run record. The control
// plane is still up, so measurements may query its API.
func (e *engine) buildRecord(ctx context.Context, runErr error) *reports.Run {
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if s, ok := e.cp.(cptarget.Settler); ok && runErr != nil {
		s.Settle(mctx)
	}
	end := e.clock.Now()
	e.mu.Lock()
	horizon := e.horizon
	steps := append([]stepRun(nil), e.steps...)
	e.mu.Unlock()
	if horizon.IsZero() {
		horizon = end
	}
	if e.series != nil {
		e.series.flush(mctx)
	}

	dsns := e.fleetIDs()
	timeline := measure.NewTimeline(dsns)
	if e.fleet != nil {
		timeline = e.fleet.Timeline()
	}
	e.scrapeCounters(mctx)
	base := measure.Input{
		DSNs: dsns, Labels: e.fleetLabelsByID(), Timeline: timeline, Revisions: e.revisions, Injections: e.recorder.Injections(),
		Requests: e.requests, Resources: e.resources, CP: e.cpEvents, Counters: e.counters, API: e.apiOrNil(), Acked: e.acked,
		Wait: func(ctx context.Context, d time.Duration) error { return sleepCtx(ctx, e.clock, d) },
	}
	if e.fleet != nil {
		base.Telemetry = e.telemetryAtHorizon(horizon)
	}
	measureOne := func(m measure.Measurement, w measure.Window) measured {
		in := base
		in.Window = w
		res, err := m.Measure(mctx, &in)
		rec := measured{Name: m.Name(), Kind: m.Name(), Step: w.Step, Start: w.Start, End: w.End, Values: res.Values, Notes: res.Notes,
			Details: res.Details, anomalies: res.Anomalies}
		if w.Step != "" {
			rec.Name = w.Step + "/" + m.Name()
		}
		if err != nil {
			rec.Error = err.Error()
			for _, f := range m.Figures() {
				rec.Values = append(rec.Values, measure.Value{Name: f.Name, Unit: f.Unit, Missing: "measurement failed: " + err.Error()})
			}
		}
		return rec
	}
	var all []measured
	take := func(names []string, w measure.Window) {
		for _, n := range names {
			m, _ := measure.Default.Lookup(n)
			all = append(all, measureOne(m, w))
		}
	}
	for _, sr := range steps {
		st := e.stepSpec(sr.name)
		if st != nil && len(st.Measurements) > 0 {
			take(st.Measurements, measure.Window{Step: sr.name, Start: sr.start, End: sr.end, Horizon: horizon})
		}
	}
	runWide := measure.Window{Start: e.start, End: horizon, Horizon: horizon}
	take(e.s.Measurements, runWide)
	anomalies := e.findAnomalies(all, func(m measure.Measurement) measured { return measureOne(m, runWide) }, timeline)

	run := &reports.Run{
		SchemaVersion: reports.SchemaVersion,
		ID:            e.id,
		Scenario:      e.scenarioRecord(),
		Params:        e.s.Values,
		Environment:   e.environment(),
		Start:         e.start,
		End:           end,
	}
	for _, sr := range steps {
		s := reports.Step{Name: sr.name, Phase: sr.phase, Start: sr.start, End: sr.end}
		if sr.err != nil {
			s.Error = sr.err.Error()
		}
		run.Steps = append(run.Steps, s)
	}
	run.Faults = faultRecords(e.recorder.Injections())
	for _, m := range all {
		rm := reports.Measurement{Name: m.Name, Kind: m.Kind, Step: m.Step, Notes: m.Notes}
		if m.Error != "" {
			rm.Notes = append(rm.Notes, "measurement failed: "+m.Error)
		}
		for _, v := range m.Values {
			rv := reports.Value{Name: v.Name, Unit: v.Unit, Missing: v.Missing}
			if v.Missing == "" {
				rv.Value = v.Value
			}
			rm.Values = append(rm.Values, rv)
		}
		run.Measurements = append(run.Measurements, rm)
	}
	run.Anomalies = anomalies
	run.DSNs = e.dsnFigures(mctx, base, runWide)
	run.SLOs = e.verdicts(all, steps)
	run.Convergence = e.convergenceRecord(timeline, dsns, steps, horizon)
	if e.series != nil {
		e.seriesRecord(mctx, run, horizon)
		e.componentsRecord(mctx, run, horizon)
	}

	failed := false
	for _, v := range run.SLOs {
		failed = failed || !v.Pass
	}
	stepFailed := false
	for _, s := range run.Steps {
		stepFailed = stepFailed || s.Error != ""
	}
	switch {
	case runErr != nil:
		run.Result = reports.ResultAborted
		run.Error = runErr.Error()
	case failed || stepFailed:
		run.Result = reports.ResultFail
	default:
		run.Result = reports.ResultPass
	}
	if err := writeDetails(filepath.Join(e.dir, DetailsFile), all); err != nil {
		e.log.Warn("writing measurement details", "err", err)
	}
	return run
}

func writeDetails(path string, all []measured) error {
	b, err := json.MarshalIndent(all, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func (e *engine) apiOrNil() measure.API {
	if e.cp == nil {
		return nil
	}
	return e.cp.API()
}

func (e *engine) stepSpec(name string) *scenarios.Step {
	for i := range e.s.Steps {
		if e.s.Steps[i].Name == name {
			return &e.s.Steps[i]
		}
	}
	return nil
}

// fleetIDs lists the fleet's DSNs (none when it never came to be).
func (e *engine) fleetIDs() []string {
	if e.fleet == nil {
		return nil
	}
	ds := e.fleet.DSNs()
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
	}
	sort.Strings(ids)
	return ids
}

// fleetLabels lists the distinct label sets of the fleet's DSNs.
func (e *engine) fleetLabels() []map[string]string {
	if e.fleet == nil {
		return nil
	}
	seen := map[string]bool{}
	var out []map[string]string
	for _, d := range e.fleet.DSNs() {
		k := fmt.Sprint(slices.Sorted(maps.Keys(d.Labels)), d.Labels)
		if len(d.Labels) == 0 || seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, d.Labels)
	}
	sort.Slice(out, func(i, j int) bool { return fmt.Sprint(out[i]) < fmt.Sprint(out[j]) })
	return out
}

func (e *engine) scenarioRecord() reports.Scenario {
	sc := reports.Scenario{Name: e.s.Metadata.Name, Path: e.s.Source, Content: string(e.s.Content)}
	if t := e.trafficPath(); t != "" && isFile(t) {
		if b, err := os.ReadFile(t); err == nil {
			sc.Includes = append(sc.Includes, reports.SourceFile{Path: t, Content: string(b)})
		}
	}
	return sc
}

func (e *engine) environment() reports.Environment {
	env := reports.CurrentEnvironment()
	env.Extra = map[string]string{
		"fleet.driver":      e.s.Fleet.Driver,
		"fleet.size":        fmt.Sprint(e.s.Fleet.Size),
		"controlPlane.mode": e.s.ControlPlane.Mode,
	}
	if e.cp != nil {
		env.Extra["controlPlane.api"] = e.cp.APIURL()
		env.Extra["controlPlane.nats"] = e.cp.NATSURL()
	}
	for _, c := range []string{measure.ComponentControlPlane, measure.ComponentFleet, measure.ComponentHarness} {
		if n := e.resources.Note(c); n != "" {
			env.Extra["component."+c] = n
		}
	}
	if e.series != nil && e.series.failed > 0 {
		env.Extra["tsdb.writeErrors"] = fmt.Sprintf("%d, last: %v", e.series.failed, e.series.lastErr)
	}
	e.mu.Lock()
	for i, n := range e.notes {
		env.Extra[fmt.Sprintf("note.%02d", i+1)] = n
	}
	e.mu.Unlock()
	return env
}

func faultRecords(ins []faults.Injection) []reports.Fault {
	out := make([]reports.Fault, 0, len(ins))
	for _, in := range ins {
		step, _, _ := strings.Cut(in.Label, "/")
		target := in.Target
		if len(in.DSNs) > 0 {
			target = fmt.Sprintf("%s (%d DSNs)", in.Target, len(in.DSNs))
		} else if in.Kind == "cp-kill" || in.Kind == "cp-restart" {
			target = "control plane"
		}
		f := reports.Fault{Kind: in.Kind, Target: target, Step: step, Start: in.Start, End: in.EffectEnd(), Optional: in.Optional}
		var errs []string
		if in.Failure != "" {
			errs = append(errs, in.Failure)
		}
		if in.Err != "" {
			errs = append(errs, "inject: "+in.Err)
		}
		if in.RecoverErr != "" {
			errs = append(errs, "recover: "+in.RecoverErr)
		}
		f.Error = strings.Join(errs, "; ")
		out = append(out, f)
	}
	return out
}

// verdicts judges every SLO against the values measured in its window.
func (e *engine) verdicts(all []measured, steps []stepRun) []reports.Verdict {
	out := make([]reports.Verdict, 0, len(e.s.SLOs))
	for _, slo := range e.s.SLOs {
		m, fig, _ := measure.Default.Producer(slo.Value)
		threshold, _ := scenarios.ParseThreshold(slo.Threshold, fig.Unit)
		v := reports.Verdict{Name: slo.Name, Measurement: m.Name() + "." + slo.Value, Op: reports.Op(slo.Op), Threshold: threshold, Unit: fig.Unit,
			MissingOK: slo.MissingPasses()}
		if slo.Step != "" {
			v.Measurement = slo.Step + "/" + v.Measurement
		}
		for _, rec := range all {
			if rec.Kind != m.Name() || rec.Step != slo.Step {
				continue
			}
			for _, val := range rec.Values {
				switch {
				case val.Name == slo.Value && val.Missing == "":
					v.Observed = reports.Float(val.Value)
					v.Pass = v.Op.Holds(val.Value, threshold)
				case val.Name == slo.Value:
					v.Reason = val.Missing
					v.Pass = v.MissingOK
				}
			}
		}
		if v.Observed == nil && v.Reason == "" {
			v.Reason = "not measured: the run ended before its measurement was taken"
			v.Pass = v.MissingOK
		}
		out = append(out, v)
	}
	return out
}

// convergenceRecord follows every intent change of the run.
func (e *engine) convergenceRecord(timeline *measure.Timeline, dsns []string, steps []stepRun, horizon time.Time) []reports.IntentChange {
	in := &measure.Input{DSNs: dsns, Timeline: timeline, Revisions: e.revisions,
		Window: measure.Window{Start: e.start, End: horizon, Horizon: horizon}}
	changes := measure.Changes(in)
	out := make([]reports.IntentChange, 0, len(changes))
	toMs := func(d *time.Duration) *float64 {
		if d == nil {
			return nil
		}
		return reports.Float(float64(*d) / float64(time.Millisecond))
	}
	for _, c := range changes {
		ic := reports.IntentChange{Revision: c.Revision, Description: c.Description, At: c.At, Targets: c.Targets,
			To50Ms: toMs(c.To50), To90Ms: toMs(c.To90), To99Ms: toMs(c.To99), To100Ms: toMs(c.To100)}
		if ic.Description == "" {
			ic.Description = "seen by polling the API"
		}
		for _, sr := range steps {
			if !c.At.Before(sr.start) && c.At.Before(sr.end) {
				ic.Step = sr.name
			}
		}
		out = append(out, ic)
	}
	return out
}

// seriesRecord reads the acked share and the API series back from the time-series store.
func (e *engine) seriesRecord(ctx context.Context, run *reports.Run, end time.Time) {
	read := func(dst *reports.Series, name, unit, metric string) {
		got, err := e.series.read(ctx, e.start, end, metric)
		if err != nil {
			e.note("reading %s back from the time-series store: %v", metric, err)
			return
		}
		*dst = reports.Series{Name: name, Unit: unit, Points: got[""]}
	}
	read(&run.Acked, "acked", reports.UnitPercent, seriesAcked)
	read(&run.API.P50, "p50", reports.UnitMillis, seriesAPIP50)
	read(&run.API.P99, "p99", reports.UnitMillis, seriesAPIP99)
	read(&run.API.Requests, "requests", reports.UnitPerSecond, seriesAPIRequests)
	read(&run.API.Errors, "errors", reports.UnitPerSecond, seriesAPIErrors)
}

// componentsRecord gives each component's CPU and peak RSS over the run, and its series.
func (e *engine) componentsRecord(ctx context.Context, run *reports.Run, end time.Time) {
	in := &measure.Input{Window: measure.Window{Start: e.start, End: end}}
	for _, name := range e.resources.Components() {
		cpu, peak, ok := measure.Usage(e.resources.Samples(name), in)
		if !ok {
			continue
		}
		c := reports.Component{Name: name, CPUSeconds: cpu, PeakRSSBytes: peak,
			CPU: reports.Series{Name: "cpu", Unit: reports.UnitSeconds}, RSS: reports.Series{Name: "rss", Unit: reports.UnitBytes}}
		if got, err := e.series.read(ctx, e.start, end, seriesCPU, "component", name); err == nil {
			c.CPU.Points = got["component="+name]
		}
		if got, err := e.series.read(ctx, e.start, end, seriesRSS, "component", name); err == nil {
			c.RSS.Points = got["component="+name]
		}
		run.Components = append(run.Components, c)
	}
	if ur, ok := e.fleet.(UnitReporter); ok {
		run.Units = ur.UnitReports()
	}
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}
