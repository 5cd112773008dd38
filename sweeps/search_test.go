package sweeps

import (
	"math"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func roundInt(x float64) (float64, string) {
	n := math.Round(x)
	return n, strconv.Itoa(int(n))
}

// threshold is a fake point runner: every size up to limit passes.
func threshold(limit float64, probed *[]float64) func(n float64, _, _ string) Verdict {
	return func(n float64, _, _ string) Verdict {
		*probed = append(*probed, n)
		return Verdict{Pass: n <= limit}
	}
}

func TestSearchLandsWithinTheResolutionWithTheFewestPoints(t *testing.T) {
	for _, tc := range []struct {
		limit      float64
		resolution float64
	}{{3000, 0.1}, {1234, 0.1}, {999, 0.05}, {700, 0.2}, {40000, 0.1}} {
		var probed []float64
		spec := SearchSpec{Start: 500, Max: 64000, Resolution: tc.resolution}
		res := Search(spec, roundInt, threshold(tc.limit, &probed))
		require.True(t, res.Resolved, "%v: %s", tc, res.Reason)
		assert.LessOrEqual(t, res.LastPass, tc.limit, "%v", tc)
		assert.Greater(t, res.FirstFail, tc.limit, "%v", tc)
		assert.LessOrEqual(t, res.FirstFail, res.LastPass*(1+tc.resolution), "%v", tc)

		// Doubling up to the first fail, then halving an interval as wide as the last pass
		// until it is within the resolution of it: no search on this axis needs fewer.
		grow := int(math.Floor(math.Log2(tc.limit/spec.Start))) + 2
		bisect := int(math.Ceil(math.Log2(1 / tc.resolution)))
		assert.LessOrEqual(t, len(probed), grow+bisect, "%v: probed %v", tc, probed)
		assert.Len(t, res.Path, len(probed))
		seen := map[float64]bool{}
		for _, n := range probed {
			assert.False(t, seen[n], "%v: size %v probed twice", tc, n)
			seen[n] = true
		}
		assert.Equal(t, "grow", res.Path[0].Phase)
		assert.Equal(t, "bisect", res.Path[len(res.Path)-1].Phase)
	}
}

func TestSearchBounds(t *testing.T) {
	var probed []float64
	res := Search(SearchSpec{Start: 500, Max: 3000, Resolution: 0.1}, roundInt, threshold(1e9, &probed))
	assert.False(t, res.Resolved)
	assert.Equal(t, []float64{500, 1000, 2000, 3000}, probed, "doubling stops at max, which is tried")
	assert.Equal(t, 3000.0, res.LastPass)
	assert.Zero(t, res.FirstFail)
	assert.Contains(t, res.Reason, "max")

	probed = nil
	res = Search(SearchSpec{Start: 500, Max: 3000, Resolution: 0.1}, roundInt, threshold(100, &probed))
	assert.False(t, res.Resolved)
	assert.Equal(t, []float64{500}, probed)
	assert.Contains(t, res.Reason, "below it")

	// Integer sizes: the search stops when no size is left between pass and fail.
	probed = nil
	res = Search(SearchSpec{Start: 2, Max: 64, Resolution: 0.01}, roundInt, threshold(5, &probed))
	assert.True(t, res.Resolved)
	assert.Equal(t, 5.0, res.LastPass)
	assert.Equal(t, 6.0, res.FirstFail)

	// A stop (interrupt, budget) ends the search where it is, with no verdict for that size.
	calls := 0
	res = Search(SearchSpec{Start: 500, Max: 64000, Resolution: 0.1}, roundInt, func(n float64, _, _ string) Verdict {
		calls++
		if calls == 3 {
			return Verdict{Stopped: true}
		}
		return Verdict{Pass: true}
	})
	assert.False(t, res.Resolved)
	assert.Len(t, res.Path, 2)
	assert.Contains(t, res.Reason, "stopped")
}
