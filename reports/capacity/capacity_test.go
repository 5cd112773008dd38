package capacity

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/reports"
)

func obsOf(pairs ...float64) []Observation {
	var out []Observation
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, Observation{N: pairs[i], Y: pairs[i+1]})
	}
	return out
}

func TestFindKnee(t *testing.T) {
	// Linear up to 2000 (cost per DSN flat at 0.01), then quadratic.
	k := FindKnee(obsOf(500, 5, 1000, 10, 2000, 20.5, 4000, 82, 8000, 330))
	require.True(t, k.Found, k.Reason)
	assert.Equal(t, 2000.0, k.N)
	assert.Equal(t, 4000.0, k.To)
	assert.InDelta(t, 2, k.Elasticity, 0.02)

	// Medians decide, not the noisiest repeat.
	k = FindKnee(obsOf(100, 1, 100, 1.1, 100, 9, 200, 2, 200, 2.1, 200, 2.2, 400, 4.1, 400, 4, 400, 4.2))
	assert.False(t, k.Found, "%+v", k)
	assert.Contains(t, k.Reason, "does not grow between N=100 and N=400")

	// Sublinear (fixed cost amortised): no knee.
	assert.False(t, FindKnee(obsOf(10, 100, 100, 120, 1000, 400)).Found)
	assert.False(t, FindKnee(obsOf(10, 100)).Found)
	assert.Contains(t, FindKnee(obsOf(10, 0, 20, 1)).Reason, "not positive")
}

// runsOf makes one run per (n, value) pair for an SLO named "p99".
func runsOf(pairs ...float64) []Run {
	var out []Run
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, Run{N: pairs[i], Values: map[string]float64{"p99": pairs[i+1]}})
	}
	return out
}

var p99 = SLO{Name: "p99", Op: reports.OpLE, Threshold: 1}

func TestCapacityWithinTheMeasuredRange(t *testing.T) {
	// p99 = 0.0005·N: crosses 1 at N=2000.
	runs := runsOf(500, 0.25, 1000, 0.5, 1500, 0.75, 3000, 1.5)
	a, err := Estimate([]SLO{p99}, runs, Options{})
	require.NoError(t, err)
	assert.Equal(t, Within, a.Bound)
	assert.InEpsilon(t, 2000, a.N, 0.005)
	assert.False(t, a.Extrapolated)
	assert.Equal(t, "p99", a.Limiting)
	assert.Zero(t, a.Resamples, "one run per size: nothing to resample")
	assert.Equal(t, a.N, a.Low)
	assert.Equal(t, 500.0, a.MinMeasured)
	assert.Equal(t, 3000.0, a.MaxMeasured)
}

func TestCapacityExtrapolatesAtMostTwice(t *testing.T) {
	// Crosses at 4000: beyond the largest measured size (3000), within 2x.
	runs := runsOf(500, 0.125, 1000, 0.25, 2000, 0.5, 3000, 0.75)
	a, err := Estimate([]SLO{p99}, runs, Options{})
	require.NoError(t, err)
	assert.InEpsilon(t, 4000, a.N, 0.005)
	assert.True(t, a.Extrapolated)

	// Crosses at 40000: the answer stops at 2x of 3000.
	runs = runsOf(500, 0.0125, 1000, 0.025, 2000, 0.05, 3000, 0.075)
	a, err = Estimate([]SLO{p99}, runs, Options{})
	require.NoError(t, err)
	assert.Equal(t, AtCap, a.Bound)
	assert.Equal(t, 6000.0, a.N)
	assert.True(t, a.Extrapolated)
}

func TestCapacityBelowTheSmallestSize(t *testing.T) {
	runs := runsOf(500, 2, 1000, 4, 2000, 8, 4000, 16)
	a, err := Estimate([]SLO{p99}, runs, Options{})
	require.NoError(t, err)
	assert.Equal(t, Below, a.Bound)
	assert.Less(t, a.N, 500.0)
}

func TestCapacityFromAnEqualitySLO(t *testing.T) {
	lost := SLO{Name: "lost", Op: reports.OpEQ, Threshold: 0}
	runs := runsOf(500, 0.1, 1000, 0.2, 2000, 0.4, 4000, 0.8)
	for i := range runs {
		runs[i].Values["lost"] = 0
	}
	runs[3].Values["lost"], runs[3].Failed = 3, map[string]bool{"lost": true}
	a, err := Estimate([]SLO{p99, lost}, runs, Options{})
	require.NoError(t, err)
	assert.Equal(t, 2000.0, a.N, "lost DSNs at 4000: the largest size below it")
	assert.Equal(t, "lost", a.Limiting)
	assert.Len(t, a.Notes, 2)
}

func TestCapacityIntervalFromRepeats(t *testing.T) {
	// Three repeats per size scattered around p99 = 0.0005·N: the interval holds 2000 and has
	// a width.
	var runs []Run
	for _, n := range []float64{500, 1000, 1500, 2500} {
		for _, f := range []float64{0.9, 1, 1.1} {
			runs = append(runs, Run{N: n, Values: map[string]float64{"p99": 0.0005 * n * f}})
		}
	}
	a, err := Estimate([]SLO{p99}, runs, Options{Seed: 7})
	require.NoError(t, err)
	assert.Equal(t, 200, a.Resamples)
	assert.InEpsilon(t, 2000, a.N, 0.01)
	assert.Less(t, a.Low, a.N)
	assert.Greater(t, a.High, a.N)
	assert.Less(t, a.Low, 2000.0)
	assert.Greater(t, a.High, 2000.0)
	assert.Less(t, a.High-a.Low, 800.0)

	b, err := Estimate([]SLO{p99}, runs, Options{Seed: 7})
	require.NoError(t, err)
	assert.Equal(t, a, b, "the same seed gives the same interval")
}

func TestCapacityForThroughput(t *testing.T) {
	// Throughput must stay >= 15/s; it grows sublinearly, peaks near N=70 and falls off, to
	// cross 15/s beyond the largest measured size.
	usl := func(n float64) float64 { return 2 * n / (1 + 0.01*(n-1) + 0.0002*n*(n-1)) }
	var runs []Run
	for _, n := range []float64{10, 20, 40, 80, 160, 320} {
		runs = append(runs, Run{N: n, Values: map[string]float64{"tput": usl(n)}})
	}
	slo := SLO{Name: "tput", Op: reports.OpGE, Threshold: 15, Throughput: true}
	a, err := Estimate([]SLO{slo}, runs, Options{})
	require.NoError(t, err)
	want := 0.0
	for n := 100.0; n < 640; n += 0.01 {
		if usl(n) < 15 {
			want = n
			break
		}
	}
	require.NotZero(t, want)
	assert.InEpsilon(t, want, a.N, 0.02)
	assert.True(t, a.Extrapolated)
	assert.False(t, math.IsNaN(a.N))
}

func TestCapacityWithoutACurveStopsAtTheLargestSize(t *testing.T) {
	// Two values only: too few to fit, so the verdicts decide and nothing is extrapolated.
	runs := []Run{{N: 100, Values: map[string]float64{"p99": 0.1}}, {N: 200, Values: map[string]float64{}}}
	a, err := Estimate([]SLO{p99}, runs, Options{})
	require.NoError(t, err)
	assert.Equal(t, 200.0, a.N)
	assert.Equal(t, AtLargest, a.Bound)
	assert.False(t, a.Extrapolated)
	assert.Contains(t, a.Notes[0], "too few values for a curve")
}

func TestEstimateRejectsEmptyInput(t *testing.T) {
	_, err := Estimate([]SLO{p99}, runsOf(100, 0.1, 100, 0.2), Options{})
	assert.ErrorIs(t, err, ErrTooFew, "one size gives no curve")

	_, err = Estimate([]SLO{p99}, nil, Options{})
	assert.ErrorIs(t, err, ErrTooFew)
	_, err = Estimate(nil, runsOf(1, 1), Options{})
	assert.Error(t, err)
}
