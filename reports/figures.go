package reports

import (
	"math"
	"sort"
	"strings"
)

// Figure is one number that sums up part of a run: the report's key figures and what Compare
// compares.
type Figure struct {
	// Name identifies the figure across runs, e.g. "convergence.to99.max" or
	// "<measurement>.<value>".
	Name string `json:"name"`
	// Label is the figure's name for people.
	Label  string    `json:"label"`
	Value  float64   `json:"value"`
	Unit   string    `json:"unit,omitempty"`
	Better Direction `json:"better"`
	// Kind says how a comparison judges the figure (see Catalogue).
	Kind FigureKind `json:"kind"`
	// Guessed is true when the figure is not in the Catalogue and its direction was guessed
	// from its name and unit.
	Guessed bool `json:"guessed,omitempty"`
}

// DirectionFor says which way a figure improves when neither the Catalogue nor the figure
// says; it is the fallback for measurement values the Catalogue does not know. Names speaking
// of errors, failures, drops, losses, rejections, retries, timeouts, latency, unacked or
// straggling DSNs or violations are lower-is-better whatever their unit; then times, sizes and CPU are lower-is-better, rates
// ("/s", "per_s", "rps", "qps") and percentages (availability, acked share) higher-is-better;
// anything else is Neutral. An explicit direction wins.
func DirectionFor(name, unit string, explicit Direction) Direction {
	if explicit != "" {
		return explicit
	}
	n := strings.ToLower(name)
	for _, w := range []string{"error", "fail", "drop", "loss", "lost", "reject", "retr", "timeout", "latency", "shed", "unack", "behind", "straggl", "violation"} {
		if strings.Contains(n, w) {
			return LowerIsBetter
		}
	}
	u := strings.ToLower(strings.TrimSpace(unit))
	switch u {
	case "ns", "us", "µs", "ms", "s", "sec", "seconds", "min", "h",
		"b", "bytes", "kb", "kib", "mb", "mib", "gb", "gib",
		"cores", "cpu", "cpu-s", "cpu_s", "cpu-seconds":
		return LowerIsBetter
	case "%", "percent", "rps", "qps", "ops", "req/s", "ops/s":
		return HigherIsBetter
	}
	if strings.HasSuffix(u, "/s") || strings.HasSuffix(u, "per_s") || strings.HasSuffix(u, "per s") {
		return HigherIsBetter
	}
	return Neutral
}

// Figures returns the run's figures: the built-in ones (duration, convergence, acked share,
// API, per-component CPU and memory; each only when the run has the data) and then every
// measurement value as "<measurement>.<value>". Names are unique; a measurement value whose
// name a built-in figure already took is left out. Directions and kinds come from the
// Catalogue (see classify).
func (r *Run) Figures() []Figure {
	out := r.builtinFigures()
	seen := map[string]bool{}
	for _, f := range out {
		seen[f.Name] = true
	}
	for _, m := range r.Measurements {
		for _, v := range m.Values {
			if !v.Present() {
				continue // a missing value is no figure, never 0
			}
			name := m.Name + "." + v.Name
			if seen[name] || math.IsNaN(v.Value) || math.IsInf(v.Value, 0) {
				continue
			}
			seen[name] = true
			// The value's own name decides, not the measurement's: "api-latency.throughput" is a rate.
			out = append(out, classify(Figure{Name: name, Label: name, Value: v.Value, Unit: v.Unit}, v.Name, v.Better))
		}
	}
	return out
}

// builtinFigures are the figures every run has, whatever its scenario measures.
func (r *Run) builtinFigures() []Figure {
	var out []Figure
	seen := map[string]bool{}
	add := func(name, label string, v float64, unit string, better Direction) {
		if seen[name] || math.IsNaN(v) || math.IsInf(v, 0) {
			return
		}
		seen[name] = true
		out = append(out, classify(Figure{Name: name, Label: label, Value: v, Unit: unit}, name, better))
	}
	if !r.Start.IsZero() && !r.End.IsZero() {
		add("run.duration", "run duration", r.Duration().Seconds(), UnitSeconds, LowerIsBetter)
	}
	if n := len(r.Convergence); n > 0 {
		add("convergence.changes", "intent changes", float64(n), "", Neutral)
		for _, q := range convergenceQuantiles {
			if vals := q.values(r.Convergence); len(vals) > 0 {
				add("convergence."+q.key+".max", "time to "+q.label+" acked (worst change)", maxOf(vals), UnitMillis, LowerIsBetter)
			}
		}
		add("convergence.unconverged", "changes never fully acked", float64(n-len(convergenceQuantiles[3].values(r.Convergence))), "", LowerIsBetter)
	}
	if vals := values(r.Acked); len(vals) > 0 {
		add("acked.min", "acked share (lowest)", minOf(vals), UnitPercent, HigherIsBetter)
		add("acked.final", "acked share (at the end)", vals[len(vals)-1], UnitPercent, HigherIsBetter)
	}
	if vals := values(r.API.P50); len(vals) > 0 {
		add("api.p50.median", "API latency p50 (median over time)", median(vals), UnitMillis, LowerIsBetter)
	}
	if vals := values(r.API.P99); len(vals) > 0 {
		add("api.p99.median", "API latency p99 (median over time)", median(vals), UnitMillis, LowerIsBetter)
		add("api.p99.max", "API latency p99 (worst)", maxOf(vals), UnitMillis, LowerIsBetter)
	}
	if vals := values(r.API.Requests); len(vals) > 0 {
		add("api.requests.mean", "API throughput (mean)", mean(vals), UnitPerSecond, HigherIsBetter)
	}
	if len(r.API.Errors.Points) > 0 {
		// A count, summed from a per-second series whose samples are not exactly a second
		// apart: whole requests, not 1.001 of them.
		add("api.errors.total", "API errors (total)", math.Round(integrate(r.API.Errors.Points)), "", LowerIsBetter)
	}
	comps := append([]Component(nil), r.Components...)
	sort.SliceStable(comps, func(i, j int) bool { return componentRank(comps[i].Name) < componentRank(comps[j].Name) })
	for _, c := range comps {
		add(c.Name+".cpu_seconds", c.Name+" CPU time", c.CPUSeconds, UnitSeconds, LowerIsBetter)
		add(c.Name+".peak_rss", c.Name+" peak RSS", float64(c.PeakRSSBytes), UnitBytes, LowerIsBetter)
	}
	return out
}

// componentRank orders the usual components first, the others by name after them.
func componentRank(name string) string {
	switch name {
	case ComponentControlPlane:
		return "0"
	case ComponentFleet:
		return "1"
	case ComponentHarness:
		return "2"
	}
	return "3" + name
}

type convergenceQuantile struct {
	key, label string
	get        func(IntentChange) *float64
}

var convergenceQuantiles = []convergenceQuantile{
	{"to50", "50%", func(c IntentChange) *float64 { return c.To50Ms }},
	{"to90", "90%", func(c IntentChange) *float64 { return c.To90Ms }},
	{"to99", "99%", func(c IntentChange) *float64 { return c.To99Ms }},
	{"to100", "100%", func(c IntentChange) *float64 { return c.To100Ms }},
}

// values returns the times of the changes that reached the quantile.
func (q convergenceQuantile) values(cs []IntentChange) []float64 {
	var out []float64
	for _, c := range cs {
		if v := q.get(c); v != nil {
			out = append(out, *v)
		}
	}
	return out
}

func values(s Series) []float64 {
	out := make([]float64, len(s.Points))
	for i, p := range s.Points {
		out[i] = p.V
	}
	return out
}

func maxOf(xs []float64) float64 {
	m := math.Inf(-1)
	for _, x := range xs {
		m = math.Max(m, x)
	}
	return m
}

func minOf(xs []float64) float64 {
	m := math.Inf(1)
	for _, x := range xs {
		m = math.Min(m, x)
	}
	return m
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// integrate sums a per-second rate over time: each sample covers the interval since the one
// before it.
func integrate(pts []Point) float64 {
	var total float64
	for i := 1; i < len(pts); i++ {
		total += pts[i].V * float64(pts[i].T-pts[i-1].T) / 1000
	}
	return total
}
