package capacity

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/dsnscale/dsnscale/reports"
)

// MaxExtrapolation bounds predictions: never beyond this many times the largest measured size.
const MaxExtrapolation = 2

// KneeTolerance is how much faster than linear a cost must grow between two sizes (as an
// elasticity, 1 being linear) before the knee is placed there; below it, the difference is
// within what repeats of one size scatter by.
const KneeTolerance = 0.15

// Knee is where a cost starts to grow faster than the fleet: the cost per DSN rises from there.
type Knee struct {
	Found bool `json:"found"`
	// N is the size where the first faster-than-linear stretch starts.
	N float64 `json:"n,omitempty"`
	// To is the size where that stretch ends.
	To float64 `json:"to,omitempty"`
	// Elasticity is d ln(cost) / d ln(N) over that stretch: 1 is linear, 2 quadratic.
	Elasticity float64 `json:"elasticity,omitempty"`
	// Reason says why there is none.
	Reason string `json:"reason,omitempty"`
}

// Medians returns the median of the observations at each size, by size.
func Medians(obs []Observation) []Observation {
	by := map[float64][]float64{}
	for _, o := range usable(obs) {
		by[o.N] = append(by[o.N], o.Y)
	}
	out := make([]Observation, 0, len(by))
	for n, ys := range by {
		out = append(out, Observation{N: n, Y: median(ys)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].N < out[j].N })
	return out
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// FindKnee finds the knee of a cost (CPU-seconds, bytes: lower is better, grows with N) from
// the medians at each size: the start of the first stretch between two consecutive sizes over
// which the cost grows with an elasticity above 1+KneeTolerance.
func FindKnee(obs []Observation) Knee {
	med := Medians(obs)
	if len(med) < 2 {
		return Knee{Reason: "needs at least two sizes"}
	}
	for i := 0; i+1 < len(med); i++ {
		a, b := med[i], med[i+1]
		if a.Y <= 0 || b.Y <= 0 {
			return Knee{Reason: fmt.Sprintf("the cost is not positive at N=%g", math.Min(a.N, b.N))}
		}
		e := math.Log(b.Y/a.Y) / math.Log(b.N/a.N)
		if e > 1+KneeTolerance {
			return Knee{Found: true, N: a.N, To: b.N, Elasticity: e}
		}
	}
	return Knee{Reason: fmt.Sprintf("the cost per DSN does not grow between N=%g and N=%g", med[0].N, med[len(med)-1].N)}
}

// SLO is one SLO of the swept scenario.
type SLO struct {
	Name      string     `json:"name"`
	Op        reports.Op `json:"op"`
	Threshold float64    `json:"threshold"`
	// Throughput says higher values are better and the USL applies.
	Throughput bool `json:"throughput,omitempty"`
}

// modelled reports whether an SLO is predicted from a fit: an ordering against a threshold.
// An equality (lost_dsns == 0) holds or not; a curve through counts of zero predicts nothing.
func (s SLO) modelled() bool {
	switch s.Op {
	case reports.OpLT, reports.OpLE, reports.OpGT, reports.OpGE:
		return true
	}
	return false
}

// Run is what one run of a sweep contributes: its size, the observed value of each SLO that
// had one, and the SLOs it failed.
type Run struct {
	N      float64
	Values map[string]float64
	Failed map[string]bool
}

// Bound says where the capacity lies relative to what was measured.
type Bound string

// The bounds.
const (
	// Below: an SLO is predicted (or seen) to fail already at the smallest measured size.
	Below Bound = "below"
	// Within: the capacity is between the smallest size and MaxExtrapolation times the largest.
	Within Bound = "within"
	// AtCap: every SLO is predicted to hold up to MaxExtrapolation times the largest size; the
	// capacity is at least that.
	AtCap Bound = "at-cap"
	// AtLargest: every SLO held at every size measured, and one of them has too few values for
	// a curve to predict beyond the largest; the capacity is at least that.
	AtLargest Bound = "at-largest"
)

// Answer is the capacity: the largest N at which every SLO is predicted to hold.
type Answer struct {
	N float64 `json:"n"`
	// Low and High bound the interval from the bootstrap over the repeats, at Level.
	Low   float64 `json:"low"`
	High  float64 `json:"high"`
	Level float64 `json:"level"`
	Bound Bound   `json:"bound"`
	// Extrapolated says N is beyond the largest measured size.
	Extrapolated bool `json:"extrapolated"`
	// Limiting is the SLO that sets N.
	Limiting    string  `json:"limiting,omitempty"`
	MinMeasured float64 `json:"minMeasured"`
	MaxMeasured float64 `json:"maxMeasured"`
	// Resamples is how many bootstrap resamples the interval rests on; 0 when every size was
	// run once, so that there is no spread to resample.
	Resamples int `json:"resamples"`
	// Notes say how each SLO was treated (a fit, measured verdicts only).
	Notes []string `json:"notes,omitempty"`
}

// Options tune Estimate.
type Options struct {
	// Resamples is the number of bootstrap resamples; default 200.
	Resamples int
	// Level is the interval's coverage; default 0.9.
	Level float64
	// Seed makes the bootstrap repeatable.
	Seed uint64
}

// Estimate answers the capacity question from the runs of a sweep. Each SLO that orders a
// value against a threshold is fitted (best form by AICc) and predicted from the smallest
// measured size up to MaxExtrapolation times the largest; an equality SLO, or one with too
// few values to fit, bounds the capacity below the first size at which any run failed it.
// The interval comes from resampling the runs of each size with replacement.
func Estimate(slos []SLO, runs []Run, opt Options) (Answer, error) {
	if opt.Resamples <= 0 {
		opt.Resamples = 200
	}
	if opt.Level <= 0 || opt.Level >= 1 {
		opt.Level = 0.9
	}
	if len(runs) == 0 {
		return Answer{}, fmt.Errorf("%w: no runs", ErrTooFew)
	}
	if len(slos) == 0 {
		return Answer{}, fmt.Errorf("capacity: the scenario has no SLOs")
	}
	groups := bySize(runs)
	sizes := make([]float64, 0, len(groups))
	for n := range groups {
		sizes = append(sizes, n)
	}
	sort.Float64s(sizes)
	if len(sizes) < 2 {
		return Answer{}, fmt.Errorf("%w: runs at one size only (%g): no curve, and so no capacity, comes from one size", ErrTooFew, sizes[0])
	}
	ans := capacityOf(slos, runs, sizes)
	ans.MinMeasured, ans.MaxMeasured, ans.Level = sizes[0], sizes[len(sizes)-1], opt.Level
	ans.Low, ans.High = ans.N, ans.N

	repeated := false
	for _, g := range groups {
		repeated = repeated || len(g) > 1
	}
	if repeated {
		rng := rand.New(rand.NewPCG(opt.Seed, 0x5eed))
		caps := make([]float64, 0, opt.Resamples)
		for range opt.Resamples {
			var sample []Run
			for _, n := range sizes {
				g := groups[n]
				for range g {
					sample = append(sample, g[rng.IntN(len(g))])
				}
			}
			caps = append(caps, capacityOf(slos, sample, sizes).N)
		}
		sort.Float64s(caps)
		ans.Low = quantile(caps, (1-opt.Level)/2)
		ans.High = quantile(caps, 1-(1-opt.Level)/2)
		ans.Resamples = opt.Resamples
	}
	ans.Extrapolated = ans.N > ans.MaxMeasured
	return ans, nil
}

func bySize(runs []Run) map[float64][]Run {
	g := map[float64][]Run{}
	for _, r := range runs {
		g[r.N] = append(g[r.N], r)
	}
	return g
}

// quantile of sorted values, linearly interpolated.
func quantile(s []float64, q float64) float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	pos := q * float64(len(s)-1)
	i := int(math.Floor(pos))
	if i+1 >= len(s) {
		return s[len(s)-1]
	}
	return s[i] + (pos-float64(i))*(s[i+1]-s[i])
}

// capacityOf is the point estimate for one set of runs; sizes are the measured sizes, sorted.
func capacityOf(slos []SLO, runs []Run, sizes []float64) Answer {
	lo, hi := sizes[0], MaxExtrapolation*sizes[len(sizes)-1]
	ans := Answer{N: hi, Bound: AtCap}
	largest := sizes[len(sizes)-1]
	for _, s := range slos {
		n, note, curve := sloLimit(s, runs, sizes, lo, hi)
		ans.Notes = append(ans.Notes, note)
		if n < ans.N {
			ans.N, ans.Limiting, ans.Bound = n, s.Name, Within
			switch {
			case n < lo:
				ans.Bound = Below
			case !curve && n == largest && !failedAny(s, runs):
				ans.Bound = AtLargest
			}
		}
	}
	return ans
}

// sloLimit is the largest N in [lo, hi] at which s holds (hi when it holds throughout, a value
// below lo when it fails at lo), with a note on how it was found.
func sloLimit(s SLO, runs []Run, sizes []float64, lo, hi float64) (limit float64, note string, curve bool) {
	if s.modelled() {
		var obs []Observation
		for _, r := range runs {
			if v, ok := r.Values[s.Name]; ok {
				obs = append(obs, Observation{N: r.N, Y: v})
			}
		}
		fits, err := Best(obs, s.Throughput)
		if err == nil {
			f := fits[0]
			holds := func(n float64) bool { return s.Op.Holds(f.Predict(n), s.Threshold) }
			return crossing(holds, lo, hi), fmt.Sprintf("%s: predicted by a %s fit, %s (R² %.3f)", s.Name, f.Form, f, f.R2), true
		}
		// No curve: no prediction either, so no further than the largest size measured.
		hi = sizes[len(sizes)-1]
	}
	// Measured verdicts only: below the first size at which any run failed.
	failedAt := math.Inf(1)
	for _, r := range runs {
		if r.Failed[s.Name] && r.N < failedAt {
			failedAt = r.N
		}
	}
	note = fmt.Sprintf("%s: measured verdicts (no curve predicts an equality)", s.Name)
	if s.modelled() {
		note = fmt.Sprintf("%s: measured verdicts up to the largest size measured (too few values for a curve)", s.Name)
	}
	if math.IsInf(failedAt, 1) {
		return hi, note, false
	}
	limit = lo / 2 // failed at the smallest size: below what was measured
	for _, n := range sizes {
		if n < failedAt {
			limit = n
		}
	}
	return limit, note, false
}

func failedAny(s SLO, runs []Run) bool {
	for _, r := range runs {
		if r.Failed[s.Name] {
			return true
		}
	}
	return false
}

// crossing returns the largest n in [lo, hi] such that holds is true on all of [lo, n]: a scan
// over a geometric grid, then bisection to 0.1% of n. It returns a value below lo (lo/2) when
// holds(lo) is false.
func crossing(holds func(float64) bool, lo, hi float64) float64 {
	if !holds(lo) {
		return lo / 2
	}
	const steps = 400
	ratio := math.Pow(hi/lo, 1.0/steps)
	prev := lo
	for i := 1; i <= steps; i++ {
		n := lo * math.Pow(ratio, float64(i))
		if i == steps {
			n = hi
		}
		if !holds(n) {
			a, b := prev, n
			for b-a > 0.001*a {
				m := (a + b) / 2
				if holds(m) {
					a = m
				} else {
					b = m
				}
			}
			return a
		}
		prev = n
	}
	return hi
}
