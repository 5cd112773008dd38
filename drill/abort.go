package drill

import (
	"fmt"
	"time"

	"github.com/dsnscale/dsnscale/internal/strictyaml"
	"github.com/dsnscale/dsnscale/scenarios"
	"github.com/dsnscale/dsnscale/scenarios/runner"
)

// The figures an abort condition may watch.
const (
	// FigureAPIErrorRate is the share of the calls to the control plane's API that failed over
	// a sampling interval: the load's requests and the harness's revision probes.
	FigureAPIErrorRate = "apiErrorRate"
	// FigureServing is the share of the fleet's DSNs forwarding traffic.
	FigureServing = "serving"
)

var figures = []string{FigureAPIErrorRate, FigureServing}

// Condition ends a drill while it runs when a figure stays beyond a threshold for a time.
type Condition struct {
	// Figure is what is watched: FigureAPIErrorRate or FigureServing.
	Figure string `yaml:"figure" json:"figure"`
	// Above or Below is the threshold (exactly one is set).
	Above *scenarios.Share `yaml:"above" json:"above,omitempty"`
	Below *scenarios.Share `yaml:"below" json:"below,omitempty"`
	// For is how long the figure must stay beyond the threshold, sample after sample; 0 trips
	// at the first sample beyond it.
	For time.Duration `yaml:"for" json:"forNs"`
}

// String says the condition as a person would.
func (c Condition) String() string {
	s := c.Figure
	if c.Above != nil {
		s += " > " + formatShare(float64(*c.Above))
	} else if c.Below != nil {
		s += " < " + formatShare(float64(*c.Below))
	}
	if c.For > 0 {
		s += " for " + c.For.String()
	}
	return s
}

func formatShare(v float64) string { return fmt.Sprintf("%g%%", 100*v) }

func (c Condition) validate(d *strictyaml.Decoder, path string) {
	known := false
	for _, f := range figures {
		known = known || c.Figure == f
	}
	if !known {
		d.ErrorAt(path+".figure", "must be one of %s or %s, got %q", FigureAPIErrorRate, FigureServing, c.Figure)
	}
	if (c.Above == nil) == (c.Below == nil) {
		d.ErrorAt(path, "needs exactly one of above or below")
	}
	for _, t := range []*scenarios.Share{c.Above, c.Below} {
		if t != nil && (*t < 0 || *t > 1) {
			d.ErrorAt(path, "threshold must be in [0%%, 100%%], got %s", formatShare(float64(*t)))
		}
	}
	if c.For < 0 {
		d.ErrorAt(path+".for", "must not be negative, got %s", c.For)
	}
}

// Trip is an abort condition that held long enough.
type Trip struct {
	// Index is the condition's place in the drill's abortWhen.
	Index     int
	Condition Condition
	// Since is the first sample of the breach, At the one that tripped it; Value the figure then.
	Since, At time.Time
	Value     float64
}

// Error says which condition tripped, with what value and since when: the reason the run's
// report gives for its end.
func (t *Trip) Error() string {
	return fmt.Sprintf("drill aborted: abortWhen[%d] %s: %s was %s at %s, beyond the threshold since %s",
		t.Index, t.Condition, t.Condition.Figure, formatShare(t.Value), t.At.UTC().Format(time.RFC3339), t.Since.UTC().Format(time.RFC3339))
}

// Watcher evaluates abort conditions on the samples of a running drill. A serving condition is
// armed only once the fleet has first reached its threshold, so that a fleet still booting does
// not trip it; a sample without API calls leaves an API condition as it was.
type Watcher struct {
	conds []Condition
	since []time.Time
	armed []bool
	trip  *Trip
	// Breach is told when a condition is first seen beyond its threshold (nil for none).
	Breach func(i int, c Condition, at time.Time, value float64)
}

// NewWatcher watches conds.
func NewWatcher(conds []Condition) *Watcher {
	return &Watcher{conds: conds, since: make([]time.Time, len(conds)), armed: make([]bool, len(conds))}
}

// Observe takes one sample and returns the trip when a condition has held for its time (once;
// later samples return nil).
func (w *Watcher) Observe(s runner.Sample) *Trip {
	if w.trip != nil {
		return nil
	}
	for i, c := range w.conds {
		v, ok := value(c.Figure, s)
		if !ok {
			continue
		}
		beyond := false
		switch {
		case c.Above != nil:
			beyond = v > float64(*c.Above)
		case c.Below != nil:
			beyond = v < float64(*c.Below)
		}
		if c.Figure == FigureServing && !w.armed[i] {
			if beyond {
				continue
			}
			w.armed[i] = true
		}
		if !beyond {
			w.since[i] = time.Time{}
			continue
		}
		if w.since[i].IsZero() {
			w.since[i] = s.At
			if w.Breach != nil {
				w.Breach(i, c, s.At, v)
			}
		}
		if s.At.Sub(w.since[i]) >= c.For {
			w.trip = &Trip{Index: i, Condition: c, Since: w.since[i], At: s.At, Value: v}
			return w.trip
		}
	}
	return nil
}

// value is a figure of a sample, or false when the sample has nothing to measure it by.
func value(figure string, s runner.Sample) (float64, bool) {
	switch figure {
	case FigureAPIErrorRate:
		if s.APICalls == 0 {
			return 0, false
		}
		return float64(s.APIFailed) / float64(s.APICalls), true
	case FigureServing:
		if s.Size == 0 {
			return 0, false
		}
		return float64(s.Census.DataPlane) / float64(s.Size), true
	}
	return 0, false
}
