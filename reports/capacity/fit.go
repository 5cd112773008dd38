// Package capacity models how a figure grows with the size of the fleet and answers the
// capacity question from a sweep: which form fits each figure best (linear, power law, or the
// Universal Scalability Law for throughput), where the cost per DSN starts to grow faster than
// linearly (the knee), and the largest fleet at which every SLO is predicted to hold, with an
// interval from the repeats.
//
// Fits are least squares in the figure's own units (so R² and residuals read in those units);
// the power law starts from a straight line in log-log space and is refined from there. Forms
// are chosen by AICc, which weighs the fit against the number of parameters and so does not
// prefer the USL's third parameter unless the data ask for it.
package capacity

import (
	"errors"
	"fmt"
	"math"
	"sort"

	"gonum.org/v1/gonum/optimize"
	"gonum.org/v1/gonum/stat"

	"github.com/dsnscale/dsnscale/internal/registry"
)

// Form is a model of a figure y against a fleet size N.
type Form string

// The forms.
const (
	// Linear is y = a + b·N.
	Linear Form = "linear"
	// Power is y = a·N^b.
	Power Form = "power"
	// USL is the Universal Scalability Law for throughput, y = λN / (1 + σ(N−1) + κN(N−1)):
	// λ the throughput of one, σ contention, κ coherence cost.
	USL Form = "usl"
)

// ErrTooFew is returned when there are not enough usable observations for a form.
var ErrTooFew = errors.New("capacity: too few observations")

// Observation is one measured value at one fleet size.
type Observation struct {
	N float64 `json:"n"`
	Y float64 `json:"y"`
}

// Fit is one form fitted to a set of observations.
type Fit struct {
	Form Form `json:"form"`
	// Params are a, b for Linear and Power; λ, σ, κ for USL.
	Params []float64 `json:"params"`
	// R2 is 1 − SSE/SST in the figure's units; 1 when the data are flat and fitted exactly.
	R2 float64 `json:"r2"`
	// AICc is Akaike's criterion corrected for small samples; lower is better. Only fits to
	// the same observations compare.
	AICc float64 `json:"aicc"`
	// Residuals are observed minus predicted, in the order of the observations.
	Residuals []float64 `json:"residuals"`
	// Observations is how many points the fit used.
	Observations int `json:"observations"`
}

// Predict returns the fitted value at n.
func (f Fit) Predict(n float64) float64 {
	m, ok := Forms.Lookup(string(f.Form))
	if !ok {
		return math.NaN()
	}
	return m.Predict(f.Params, n)
}

// String writes the fitted formula, e.g. "0.12 + 0.0031·N".
func (f Fit) String() string {
	m, ok := Forms.Lookup(string(f.Form))
	if !ok {
		return string(f.Form)
	}
	return m.Format(f.Params)
}

// Model is a form a figure can be fitted with. The forms are an extension point: Best tries
// every one registered in Forms.
type Model interface {
	// Params is the number of free parameters.
	Params() int
	// ThroughputOnly says the form applies to throughput-like figures only.
	ThroughputOnly() bool
	// Fit returns the parameters that fit obs best (least squares in the figure's units); obs
	// hold more values than parameters, over at least as many sizes.
	Fit(obs []Observation) ([]float64, error)
	Predict(params []float64, n float64) float64
	Format(params []float64) string
}

// Forms holds the forms by name.
var Forms = registry.New[Model]("fit form")

func init() {
	Forms.MustRegister(string(Linear), linear{})
	Forms.MustRegister(string(Power), power{})
	Forms.MustRegister(string(USL), usl{})
}

type linear struct{}

func (linear) Params() int                              { return 2 }
func (linear) ThroughputOnly() bool                     { return false }
func (linear) Fit(obs []Observation) ([]float64, error) { return fitLinear(obs), nil }
func (linear) Predict(p []float64, n float64) float64   { return p[0] + p[1]*n }
func (linear) Format(p []float64) string                { return fmt.Sprintf("%.4g + %.4g·N", p[0], p[1]) }

type power struct{}

func (power) Params() int                              { return 2 }
func (power) ThroughputOnly() bool                     { return false }
func (power) Fit(obs []Observation) ([]float64, error) { return fitPower(obs) }
func (power) Predict(p []float64, n float64) float64   { return p[0] * math.Pow(n, p[1]) }
func (power) Format(p []float64) string                { return fmt.Sprintf("%.4g·N^%.3g", p[0], p[1]) }

type usl struct{}

func (usl) Params() int                              { return 3 }
func (usl) ThroughputOnly() bool                     { return true }
func (usl) Fit(obs []Observation) ([]float64, error) { return fitUSL(obs) }
func (usl) Predict(p []float64, n float64) float64 {
	return p[0] * n / (1 + p[1]*(n-1) + p[2]*n*(n-1))
}
func (usl) Format(p []float64) string {
	return fmt.Sprintf("%.4g·N / (1 + %.3g·(N−1) + %.3g·N·(N−1))", p[0], p[1], p[2])
}

// usable drops observations with a non-finite value or a size below 1.
func usable(obs []Observation) []Observation {
	out := make([]Observation, 0, len(obs))
	for _, o := range obs {
		if o.N >= 1 && !math.IsNaN(o.Y) && !math.IsInf(o.Y, 0) && !math.IsInf(o.N, 0) {
			out = append(out, o)
		}
	}
	return out
}

// distinctSizes counts the different N among obs.
func distinctSizes(obs []Observation) int {
	seen := map[float64]bool{}
	for _, o := range obs {
		seen[o.N] = true
	}
	return len(seen)
}

// FitForm fits one form to obs. A form needs more observations than parameters (AICc needs
// one more still) and at least as many distinct sizes as parameters.
func FitForm(form Form, obs []Observation) (Fit, error) {
	m, err := Forms.Get(string(form))
	if err != nil {
		return Fit{}, fmt.Errorf("capacity: %w", err)
	}
	obs = usable(obs)
	k := m.Params()
	if len(obs) < k+2 || distinctSizes(obs) < k {
		return Fit{}, fmt.Errorf("%w: %s needs at least %d values over %d sizes, have %d over %d", ErrTooFew, form, k+2, k, len(obs), distinctSizes(obs))
	}
	p, err := m.Fit(obs)
	if err != nil {
		return Fit{}, err
	}
	return score(form, m, p, obs), nil
}

func xy(obs []Observation) (x, y []float64) {
	x, y = make([]float64, len(obs)), make([]float64, len(obs))
	for i, o := range obs {
		x[i], y[i] = o.N, o.Y
	}
	return x, y
}

func fitLinear(obs []Observation) []float64 {
	x, y := xy(obs)
	a, b := stat.LinearRegression(x, y, nil, false)
	return []float64{a, b}
}

// fitPower fits a straight line to log y against log N, then refines a and b by least squares
// in the figure's own units, so that large values do not dominate less than they should.
func fitPower(obs []Observation) ([]float64, error) {
	var lx, ly []float64
	for _, o := range obs {
		if o.Y > 0 {
			lx, ly = append(lx, math.Log(o.N)), append(ly, math.Log(o.Y))
		}
	}
	if len(lx) < 2 || len(lx) < len(obs)/2 {
		return nil, fmt.Errorf("%w: a power law needs positive values", ErrTooFew)
	}
	la, b := stat.LinearRegression(lx, ly, nil, false)
	start := []float64{la, b}
	sse := func(q []float64) float64 {
		return sumSquares(obs, func(n float64) float64 { return math.Exp(q[0]) * math.Pow(n, q[1]) })
	}
	q := minimize(sse, start)
	return []float64{math.Exp(q[0]), q[1]}, nil
}

// fitUSL fits the Universal Scalability Law. σ and κ are kept non-negative by fitting their
// square roots; λ by fitting its logarithm.
func fitUSL(obs []Observation) ([]float64, error) {
	sorted := append([]Observation(nil), obs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].N < sorted[j].N })
	lambda := 0.0
	for _, o := range sorted {
		if o.N == sorted[0].N && o.Y/o.N > lambda {
			lambda = o.Y / o.N
		}
	}
	if lambda <= 0 {
		return nil, fmt.Errorf("%w: the USL needs a positive throughput at the smallest size", ErrTooFew)
	}
	toParams := func(q []float64) []float64 { return []float64{math.Exp(q[0]), q[1] * q[1], q[2] * q[2]} }
	sse := func(q []float64) float64 {
		p := toParams(q)
		return sumSquares(obs, func(n float64) float64 { return usl{}.Predict(p, n) })
	}
	// A few starts, since the surface is flat in κ when the data stop short of the peak.
	best, bestSSE := []float64(nil), math.Inf(1)
	for _, s := range [][2]float64{{0.01, 1e-4}, {0.1, 1e-6}, {0.001, 1e-3}} {
		q := minimize(sse, []float64{math.Log(lambda), math.Sqrt(s[0]), math.Sqrt(s[1])})
		if v := sse(q); v < bestSSE {
			best, bestSSE = q, v
		}
	}
	return toParams(best), nil
}

func sumSquares(obs []Observation, f func(n float64) float64) float64 {
	var s float64
	for _, o := range obs {
		d := o.Y - f(o.N)
		s += d * d
	}
	if math.IsNaN(s) {
		return math.Inf(1)
	}
	return s
}

// minimize runs Nelder-Mead from start, restarted once from where it stopped (a simplex can
// collapse early on a long valley); it returns the start itself if nothing better was found.
func minimize(f func([]float64) float64, start []float64) []float64 {
	best := append([]float64(nil), start...)
	for range 2 {
		res, err := optimize.Minimize(optimize.Problem{Func: f}, best, &optimize.Settings{MajorIterations: 5000}, &optimize.NelderMead{})
		if res == nil || (err != nil && res.F >= f(best)) {
			break
		}
		if res.F < f(best) {
			best = append(best[:0], res.X...)
		}
	}
	return best
}

// score computes R², AICc and the residuals of the parameters p of form on obs.
func score(form Form, m Model, p []float64, obs []Observation) Fit {
	f := Fit{Form: form, Params: p, Observations: len(obs), Residuals: make([]float64, len(obs))}
	_, y := xy(obs)
	mean := stat.Mean(y, nil)
	var sse, sst float64
	for i, o := range obs {
		r := o.Y - m.Predict(p, o.N)
		f.Residuals[i] = r
		sse += r * r
		sst += (o.Y - mean) * (o.Y - mean)
	}
	switch {
	case sst > 0:
		f.R2 = 1 - sse/sst
	case sse == 0:
		f.R2 = 1
	}
	n, k := float64(len(obs)), float64(m.Params())
	// A perfect fit would give log(0); a floor relative to the data keeps AICc finite and
	// still ranks an exact fit first.
	floor := 1e-12 * math.Max(sst, mean*mean*n+1e-300)
	f.AICc = n*math.Log(math.Max(sse, floor)/n) + 2*k + 2*k*(k+1)/(n-k-1)
	return f
}

// Best fits every registered form that applies and returns the fits, lowest AICc first.
// Throughput-like figures (higher is better) also try the forms made for throughput, the USL.
func Best(obs []Observation, throughput bool) ([]Fit, error) {
	var fits []Fit
	var errs []error
	for _, name := range Forms.Names() {
		m, _ := Forms.Lookup(name)
		if m.ThroughputOnly() && !throughput {
			continue
		}
		f, err := FitForm(Form(name), obs)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fits = append(fits, f)
	}
	if len(fits) == 0 {
		return nil, errors.Join(errs...)
	}
	sort.SliceStable(fits, func(i, j int) bool { return fits[i].AICc < fits[j].AICc })
	return fits, nil
}
