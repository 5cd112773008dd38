package sweeps

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/dsnscale/dsnscale/reports"
	"github.com/dsnscale/dsnscale/reports/capacity"
)

// The control plane's figures a sweep models by default, and the per-DSN cost curves it
// derives from them.
const (
	FigureCPUSeconds     = reports.ComponentControlPlane + ".cpu_seconds"
	FigurePeakRSS        = reports.ComponentControlPlane + ".peak_rss"
	FigureCPUPerDSNMin   = reports.ComponentControlPlane + ".cpu_seconds_per_dsn_minute"
	FigureRSSBytesPerDSN = reports.ComponentControlPlane + ".rss_bytes_per_dsn"
)

// costFigures are the figures whose knee is sought.
var costFigures = map[string]bool{FigureCPUSeconds: true, FigurePeakRSS: true, FigureCPUPerDSNMin: true, FigureRSSBytesPerDSN: true}

// figureInfo is what the runs say about a figure: its label and unit.
type figureInfo struct{ label, unit, note string }

// extract reads the figures named from a run: its built-in and measured figures, the observed
// values of its SLOs, and the per-DSN costs. A figure the run lacks is missing, with the
// reason the run gives.
func extract(run *reports.Run, names []string, info map[string]figureInfo) (map[string]float64, map[string]string) {
	have := map[string]float64{}
	for _, f := range run.Figures() {
		have[f.Name] = f.Value
		if _, ok := info[f.Name]; !ok {
			info[f.Name] = figureInfo{label: f.Label, unit: f.Unit}
		}
	}
	reasons := map[string]string{}
	for _, m := range run.Measurements {
		for _, v := range m.Values {
			if !v.Present() {
				reasons[m.Name+"."+v.Name] = v.Missing
			}
		}
	}
	for _, v := range run.SLOs {
		if v.Observed != nil {
			have[v.Measurement] = *v.Observed
		} else if v.Reason != "" {
			reasons[v.Measurement] = v.Reason
		}
		info[v.Measurement] = figureInfo{label: v.Name, unit: v.Unit}
	}
	if n := run.Environment.Extra["component."+reports.ComponentControlPlane]; n != "" {
		for _, f := range []string{FigureCPUSeconds, FigurePeakRSS} {
			i := info[f]
			i.note = "control plane: " + n
			info[f] = i
		}
	}
	size, sizeErr := strconv.ParseFloat(run.Environment.Extra["fleet.size"], 64)
	minutes := run.Duration().Minutes()
	if cpu, ok := have[FigureCPUSeconds]; ok && sizeErr == nil && size > 0 && minutes > 0 {
		have[FigureCPUPerDSNMin] = cpu / size / minutes
	}
	if rss, ok := have[FigurePeakRSS]; ok && sizeErr == nil && size > 0 {
		have[FigureRSSBytesPerDSN] = rss / size
	}
	info[FigureCPUPerDSNMin] = figureInfo{label: "control-plane CPU-seconds per DSN per minute", unit: reports.UnitSeconds, note: info[FigureCPUSeconds].note}
	info[FigureRSSBytesPerDSN] = figureInfo{label: "control-plane peak RSS per DSN", unit: reports.UnitBytes, note: info[FigurePeakRSS].note}

	got := map[string]float64{}
	missing := map[string]string{}
	for _, n := range names {
		if v, ok := have[n]; ok {
			got[n] = v
			continue
		}
		switch {
		case reasons[n] != "":
			missing[n] = reasons[n]
		case (n == FigureCPUPerDSNMin || n == FigureRSSBytesPerDSN) && sizeErr != nil:
			missing[n] = "the run does not record its fleet size"
		default:
			missing[n] = "not measured by this run"
		}
	}
	return got, missing
}

// modelNames are the figures a sweep models: the ones it names, or every SLO's value plus
// the control plane's CPU time and peak RSS; the per-DSN cost curves are always added.
func modelNames(sw *Sweep, slos []reports.Verdict) []string {
	var names []string
	seen := map[string]bool{}
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	if len(sw.Model) > 0 {
		for _, n := range sw.Model {
			add(n)
		}
	} else {
		for _, v := range slos {
			add(v.Measurement)
		}
		add(FigureCPUSeconds)
		add(FigurePeakRSS)
	}
	add(FigureCPUPerDSNMin)
	add(FigureRSSBytesPerDSN)
	return names
}

// Analyze fits the models and the capacity from the points of a result, for each value of the
// second axis. Broken and aborted runs are left out: their figures describe a run that did
// not finish.
func Analyze(r *Result, names []string, info map[string]figureInfo, seed uint64) []Analysis {
	var order []string
	bySeries := map[string][]PointRecord{}
	for _, p := range r.Points {
		s := p.Series()
		if _, ok := bySeries[s]; !ok {
			order = append(order, s)
		}
		bySeries[s] = append(bySeries[s], p)
	}
	var out []Analysis
	for _, s := range order {
		out = append(out, analyzeSeries(s, bySeries[s], names, info, seed))
	}
	return out
}

func analyzeSeries(series string, points []PointRecord, names []string, info map[string]figureInfo, seed uint64) Analysis {
	a := Analysis{Series: series}
	slos := map[string]*capacity.SLO{}
	var sloOrder []capacity.SLO
	var runs []capacity.Run
	for _, p := range points {
		if p.Status != PointPass && p.Status != PointFail {
			continue
		}
		cr := capacity.Run{N: p.Size(), Values: map[string]float64{}, Failed: map[string]bool{}}
		for _, v := range p.SLOs {
			if _, ok := slos[v.Measurement]; !ok {
				slo := capacity.SLO{Name: v.Measurement, Op: v.Op, Threshold: v.Threshold, Throughput: v.Op == reports.OpGT || v.Op == reports.OpGE}
				slos[v.Measurement] = &slo
				sloOrder = append(sloOrder, slo)
			}
			if v.Observed != nil {
				cr.Values[v.Measurement] = *v.Observed
			}
			if !v.Pass {
				cr.Failed[v.Measurement] = true
			}
		}
		runs = append(runs, cr)
	}
	for _, n := range names {
		m := Model{Name: n, Label: info[n].label, Unit: info[n].unit, Note: info[n].note, Cost: costFigures[n], PerDSN: n == FigureCPUPerDSNMin || n == FigureRSSBytesPerDSN, SLO: slos[n]}
		if m.Label == "" {
			m.Label = n
		}
		for _, p := range points {
			if p.Status != PointPass && p.Status != PointFail {
				continue
			}
			if v, ok := p.Figures[n]; ok {
				m.Observations = append(m.Observations, capacity.Observation{N: p.Size(), Y: v})
			}
		}
		m.Medians = capacity.Medians(m.Observations)
		throughput := m.SLO != nil && m.SLO.Throughput
		if m.SLO != nil && (m.SLO.Op == reports.OpEQ || m.SLO.Op == reports.OpNE) {
			m.FitError = "an equality SLO is judged by its verdicts, not by a curve"
		} else if fits, err := capacity.Best(m.Observations, throughput); errors.Is(err, capacity.ErrTooFew) {
			m.FitError = fmt.Sprintf("too few values for a curve: %d over %d sizes", len(m.Observations), len(m.Medians))
		} else if err != nil {
			m.FitError = err.Error()
		} else {
			m.Fits = fits
		}
		if m.Cost && !m.PerDSN {
			k := capacity.FindKnee(m.Observations)
			m.Knee = &k
		}
		a.Models = append(a.Models, m)
	}
	switch {
	case len(runs) == 0:
		a.CapacityError = "no run finished: nothing to model"
	case len(sloOrder) == 0:
		a.CapacityError = "the scenario has no SLOs: capacity is measured against them"
	default:
		ans, err := capacity.Estimate(sloOrder, runs, capacity.Options{Seed: seed})
		if err != nil {
			a.CapacityError = err.Error()
		} else {
			a.Capacity = &ans
		}
	}
	return a
}

// sizeLabel formats a size on the first axis.
func sizeLabel(n float64) string {
	if n == float64(int64(n)) {
		return strconv.FormatInt(int64(n), 10)
	}
	return fmt.Sprintf("%.4g", n)
}
