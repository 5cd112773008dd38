// Package stats holds the statistics a comparison of repeated runs rests on, as benchstat
// computes them (golang.org/x/perf/benchmath): the median of a sample with its confidence
// interval, the Mann-Whitney U test between two samples, and the spread of a sample with an
// estimate of how many runs a given spread needs.
//
// No distribution is assumed: run figures are seldom normal (a restart storm has slow tails and
// a few bimodal figures), so the median and a rank test are what holds.
package stats

import (
	"math"

	"golang.org/x/perf/benchmath"
)

// DefaultConfidence is the level of the confidence interval around a median.
const DefaultConfidence = 0.95

// Power is the chance of catching a shift of the tolerance's size that RunsNeeded aims for.
const Power = 0.8

// Summary describes one sample of a figure: one value per run.
type Summary struct {
	N int `json:"n"`
	// Median and its confidence interval [Lo, Hi] at Confidence. With too few values for an
	// interval at that level, Lo and Hi are infinite.
	Median     float64 `json:"median"`
	Lo         float64 `json:"lo"`
	Hi         float64 `json:"hi"`
	Confidence float64 `json:"confidence"`
	Min        float64 `json:"min"`
	Max        float64 `json:"max"`
	Mean       float64 `json:"mean"`
	// StdDev is the sample standard deviation; CV is StdDev/|Mean|, the spread relative to the
	// figure's size. Both are NaN with fewer than two values, CV also when the mean is 0.
	StdDev float64 `json:"stddev"`
	CV     float64 `json:"cv"`
}

// Summarize describes values at the given confidence level (DefaultConfidence when 0). It
// does not modify values. An empty sample gives N 0 and NaN everywhere else.
func Summarize(values []float64, confidence float64) Summary {
	if confidence == 0 {
		confidence = DefaultConfidence
	}
	nan := math.NaN()
	s := Summary{N: len(values), Median: nan, Lo: nan, Hi: nan, Min: nan, Max: nan, Mean: nan, StdDev: nan, CV: nan, Confidence: confidence}
	if len(values) == 0 {
		return s
	}
	sorted := append([]float64(nil), values...)
	sample := benchmath.NewSample(sorted, &benchmath.DefaultThresholds)
	sum := benchmath.AssumeNothing.Summary(sample, confidence)
	s.Median, s.Lo, s.Hi, s.Confidence = sum.Center, sum.Lo, sum.Hi, sum.Confidence
	s.Min, s.Max = sorted[0], sorted[len(sorted)-1]
	var total float64
	for _, v := range sorted {
		total += v
	}
	s.Mean = total / float64(len(sorted))
	if len(sorted) >= 2 {
		var ss float64
		for _, v := range sorted {
			ss += (v - s.Mean) * (v - s.Mean)
		}
		s.StdDev = math.Sqrt(ss / float64(len(sorted)-1))
		if s.Mean != 0 {
			s.CV = s.StdDev / math.Abs(s.Mean)
		}
	}
	return s
}

// UTest is the two-sided Mann-Whitney U test of whether base and head come from the same
// distribution; it returns the p-value. Samples in which every value is equal give 1 (no
// evidence of a difference), as do empty ones. The two-sided p doubles a tail, which for tiny
// samples can pass 1; it is capped there.
func UTest(base, head []float64) float64 {
	if len(base) == 0 || len(head) == 0 {
		return 1
	}
	b := benchmath.NewSample(append([]float64(nil), base...), &benchmath.DefaultThresholds)
	h := benchmath.NewSample(append([]float64(nil), head...), &benchmath.DefaultThresholds)
	return math.Min(1, benchmath.AssumeNothing.Compare(b, h).P)
}

// MinP is the smallest p-value the two-sided U test can give for samples of n1 and n2
// values: when they do not overlap at all, 2/C(n1+n2, n1).
func MinP(n1, n2 int) float64 {
	if n1 <= 0 || n2 <= 0 {
		return 1
	}
	// log C(n1+n2, n1) through Lgamma keeps large samples finite.
	lc := lgamma(float64(n1+n2+1)) - lgamma(float64(n1+1)) - lgamma(float64(n2+1))
	return math.Min(1, 2*math.Exp(-lc))
}

func lgamma(x float64) float64 {
	v, _ := math.Lgamma(x)
	return v
}

// CanDetect reports whether samples of n1 and n2 values can ever be significant at alpha.
func CanDetect(n1, n2 int, alpha float64) bool { return MinP(n1, n2) <= alpha }

// MinRuns is the fewest values per side with which the U test can be significant at alpha
// (4 at 0.05, 5 at 0.01).
func MinRuns(alpha float64) int {
	n := 1
	for !CanDetect(n, n, alpha) {
		n++
	}
	return n
}

// RunsNeeded estimates how many runs per side catch a relative shift of tol in a figure whose
// runs spread by cv (coefficient of variation), at alpha, with Power: the two-sample size for
// a normal figure, 2(z₁₋α/₂ + z_power)²(cv/tol)², divided by the U test's efficiency relative
// to the t test (3/π), and never fewer than MinRuns(alpha). It returns 0 when cv or tol is not
// a positive number.
func RunsNeeded(cv, tol, alpha float64) int {
	if !(cv > 0) || !(tol > 0) || math.IsInf(cv, 0) {
		return 0
	}
	z := normalQuantile(1-alpha/2) + normalQuantile(Power)
	n := 2 * z * z * (cv / tol) * (cv / tol) / (3 / math.Pi)
	return max(int(math.Ceil(n-1e-9)), MinRuns(alpha))
}

// normalQuantile is the standard normal distribution's quantile function.
func normalQuantile(p float64) float64 { return math.Sqrt2 * math.Erfinv(2*p-1) }
