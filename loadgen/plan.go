package loadgen

import (
	"fmt"
	"strings"
	"time"
)

// Model says how an executor paces iterations.
type Model string

// Models.
const (
	// OpenModel starts iterations on a schedule, whatever the target's latency.
	OpenModel Model = "open"
	// ClosedModel keeps a number of virtual users each looping one iteration after another.
	ClosedModel Model = "closed"
)

// Plan is what an executor would do: its schedule and the size of its load.
type Plan struct {
	Type  string `json:"type"`
	Model Model  `json:"model"`
	Mix   string `json:"mix"`
	// Duration is how long new iterations start; in-flight ones may run GracefulStop longer.
	Duration     time.Duration `json:"duration"`
	GracefulStop time.Duration `json:"gracefulStop"`
	// Points are the corners of the schedule: the rate (open model) or the number of active VUs
	// (closed model) at each time; the rate ramps linearly between points, the VUs step.
	Points []PlanPoint `json:"points"`
	// ExpectedIterations is exactly how many iterations the open-model schedule starts (0 for
	// the closed model, where it depends on the target's latency).
	ExpectedIterations int64 `json:"expectedIterations"`
	// PeakRate is the highest scheduled rate (open model).
	PeakRate Rate `json:"peakRate,omitempty"`
	// PreAllocatedVUs and MaxVUs size the VU pool; for the closed model MaxVUs is the peak.
	PreAllocatedVUs int `json:"preAllocatedVUs,omitempty"`
	MaxVUs          int `json:"maxVUs"`
	// VUSeconds is the integral of active VUs over time (closed model).
	VUSeconds float64 `json:"vuSeconds,omitempty"`
}

// PlanPoint is one corner of a schedule.
type PlanPoint struct {
	At   time.Duration `json:"at"`
	Rate Rate          `json:"rate,omitempty"`
	VUs  int           `json:"vus,omitempty"`
}

// String renders the plan for people.
func (p Plan) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "executor %s (%s model), mix %s, %s + graceful stop %s\n", p.Type, p.Model, p.Mix, p.Duration, p.GracefulStop)
	switch p.Model {
	case OpenModel:
		fmt.Fprintf(&b, "  %d iterations, peak %s, VUs %d pre-allocated, at most %d\n", p.ExpectedIterations, p.PeakRate, p.PreAllocatedVUs, p.MaxVUs)
		for _, pt := range p.Points {
			fmt.Fprintf(&b, "  at %-10s rate %s\n", pt.At, pt.Rate)
		}
	default:
		fmt.Fprintf(&b, "  at most %d VUs, %.0f VU-seconds\n", p.MaxVUs, p.VUSeconds)
		for _, pt := range p.Points {
			fmt.Fprintf(&b, "  at %-10s %d VUs\n", pt.At, pt.VUs)
		}
	}
	return b.String()
}
