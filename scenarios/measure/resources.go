package measure

import (
	"context"
	"fmt"
)

func init() { mustRegister(resources{}) }

// Component names.
const (
	ComponentControlPlane = "control-plane"
	ComponentFleet        = "fleet"
	ComponentHarness      = "harness"
)

var (
	figCPCPU      = Figure{"cp_cpu_seconds", UnitSeconds, "CPU time of the control plane in the window"}
	figCPRSS      = Figure{"cp_peak_rss_bytes", UnitBytes, "peak resident memory of the control plane in the window"}
	figFleetCPU   = Figure{"fleet_cpu_seconds", UnitSeconds, "CPU time of the simulated fleet in the window"}
	figFleetRSS   = Figure{"fleet_peak_rss_bytes", UnitBytes, "peak resident memory of the simulated fleet in the window"}
	figHarnessCPU = Figure{"harness_cpu_seconds", UnitSeconds, "CPU time of the harness process in the window"}
	figHarnessRSS = Figure{"harness_peak_rss_bytes", UnitBytes, "peak resident memory of the harness process in the window"}
)

// resources reports CPU seconds and peak RSS per component from samples of /proc. Components
// that run inside the harness process share its figures; the note says so.
type resources struct{}

func (resources) Name() string { return "resources" }

func (resources) Description() string {
	return "CPU seconds and peak RSS per component (control plane, fleet, harness), sampled from /proc"
}

func (resources) Figures() []Figure {
	return []Figure{figCPCPU, figCPRSS, figFleetCPU, figFleetRSS, figHarnessCPU, figHarnessRSS}
}

// Usage returns a component's CPU seconds and peak RSS over [in.Start, in.End] from its samples:
// CPU is the difference between the last sample in the window and the last one at or before its
// start (or the first in it).
func Usage(samples []Sample, in *Input) (cpu float64, peak int64, ok bool) {
	var base, last *Sample
	for i := range samples {
		s := &samples[i]
		if !s.At.After(in.Start) {
			base = s
		}
		if s.At.Before(in.Start) {
			continue
		}
		if s.At.After(in.End) {
			break
		}
		if base == nil {
			base = s
		}
		last = s
		peak = max(peak, s.RSSBytes)
	}
	if last == nil {
		return 0, 0, false
	}
	return max(0, last.CPUSeconds-base.CPUSeconds), peak, true
}

func (resources) Measure(_ context.Context, in *Input) (Result, error) {
	var res Result
	for _, c := range []struct {
		name     string
		cpu, rss Figure
	}{
		{ComponentControlPlane, figCPCPU, figCPRSS},
		{ComponentFleet, figFleetCPU, figFleetRSS},
		{ComponentHarness, figHarnessCPU, figHarnessRSS},
	} {
		cpu, peak, ok := Usage(in.Resources.Samples(c.name), in)
		if !ok {
			why := "no sample in the window"
			if n := in.Resources.Note(c.name); n != "" {
				why = n
			}
			res.Values = append(res.Values, missing(c.cpu, "%s", why), missing(c.rss, "%s", why))
			continue
		}
		res.Values = append(res.Values, value(c.cpu, cpu), value(c.rss, float64(peak)))
		if n := in.Resources.Note(c.name); n != "" {
			res.Notes = append(res.Notes, fmt.Sprintf("%s: %s", c.name, n))
		}
	}
	return res, nil
}
