package stats

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSummarize(t *testing.T) {
	values := []float64{5, 1, 4, 2, 3, 6, 7}
	s := Summarize(values, 0)
	assert.Equal(t, []float64{5, 1, 4, 2, 3, 6, 7}, values, "input left as it was")
	assert.Equal(t, 7, s.N)
	assert.Equal(t, 4.0, s.Median)
	assert.Equal(t, 1.0, s.Min)
	assert.Equal(t, 7.0, s.Max)
	assert.Equal(t, 4.0, s.Mean)
	assert.InDelta(t, math.Sqrt(28.0/6), s.StdDev, 1e-12)
	assert.InDelta(t, math.Sqrt(28.0/6)/4, s.CV, 1e-12)
	// Seven values give a finite 95% interval around the median (benchstat needs >= 6).
	assert.GreaterOrEqual(t, s.Confidence, 0.95)
	assert.False(t, math.IsInf(s.Lo, 0) || math.IsInf(s.Hi, 0), "%v..%v", s.Lo, s.Hi)
	assert.LessOrEqual(t, s.Lo, s.Median)
	assert.GreaterOrEqual(t, s.Hi, s.Median)

	few := Summarize([]float64{1, 2, 3}, 0)
	assert.Equal(t, 2.0, few.Median)
	assert.True(t, math.IsInf(few.Lo, -1) && math.IsInf(few.Hi, 1), "three values have no 95%% interval")

	one := Summarize([]float64{3}, 0)
	assert.Equal(t, 3.0, one.Median)
	assert.True(t, math.IsNaN(one.CV) && math.IsNaN(one.StdDev))

	zero := Summarize([]float64{0, 0, 0}, 0)
	assert.Equal(t, 0.0, zero.StdDev)
	assert.True(t, math.IsNaN(zero.CV), "no relative spread around 0")

	empty := Summarize(nil, 0)
	assert.Equal(t, 0, empty.N)
	assert.True(t, math.IsNaN(empty.Median))
}

func TestUTest(t *testing.T) {
	// Five against five, apart: the smallest p the test can give, 2/C(10,5).
	p := UTest([]float64{1, 2, 3, 4, 5}, []float64{6, 7, 8, 9, 10})
	assert.InDelta(t, 2.0/252, p, 1e-9)
	assert.InDelta(t, p, UTest([]float64{6, 7, 8, 9, 10}, []float64{1, 2, 3, 4, 5}), 1e-12, "two-sided")
	assert.Greater(t, UTest([]float64{1, 3, 5, 7, 9}, []float64{2, 4, 6, 8, 10}), 0.5, "interleaved")
	assert.Equal(t, 1.0, UTest([]float64{0, 0, 0}, []float64{0, 0, 0}), "all equal: no evidence")
	assert.Equal(t, 1.0, UTest(nil, []float64{1}))
	// Two against one that ties: a doubled tail can pass 1.
	for _, head := range []float64{1, 2, 3} {
		p := UTest([]float64{1, 3}, []float64{head})
		assert.LessOrEqual(t, p, 1.0, "head %v", head)
		assert.Greater(t, p, 0.0, "head %v", head)
	}
}

func TestMinRunsAndMinP(t *testing.T) {
	assert.InDelta(t, 2.0/252, MinP(5, 5), 1e-12)
	assert.InDelta(t, 2.0/70, MinP(4, 4), 1e-12)
	assert.InDelta(t, 0.1, MinP(3, 3), 1e-12)
	assert.InDelta(t, 2.0/56, MinP(3, 5), 1e-12)
	assert.Equal(t, 1.0, MinP(0, 5))
	assert.Equal(t, 4, MinRuns(0.05))
	assert.Equal(t, 5, MinRuns(0.01))
	assert.Equal(t, 3, MinRuns(0.1))
	assert.True(t, CanDetect(3, 5, 0.05))
	assert.False(t, CanDetect(3, 3, 0.05))
}

func TestRunsNeeded(t *testing.T) {
	// Spread equal to the tolerance: 2(1.96+0.84)²/(3/π) ≈ 16.4.
	assert.Equal(t, 17, RunsNeeded(0.1, 0.1, 0.05))
	// Four times the spread needs sixteen times the runs.
	assert.InDelta(t, 16*16.44, float64(RunsNeeded(0.4, 0.1, 0.05)), 16)
	assert.Equal(t, MinRuns(0.05), RunsNeeded(0.001, 0.1, 0.05), "never fewer than the test needs")
	assert.Equal(t, 0, RunsNeeded(math.NaN(), 0.1, 0.05))
	assert.Equal(t, 0, RunsNeeded(0.1, 0, 0.05))
}
