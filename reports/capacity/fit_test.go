package capacity

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// synth makes repeats observations at each size of y(n), with multiplicative noise of the
// given relative standard deviation.
func synth(sizes []float64, repeats int, noise float64, y func(n float64) float64) []Observation {
	rng := rand.New(rand.NewPCG(1, 2))
	var out []Observation
	for _, n := range sizes {
		for range repeats {
			out = append(out, Observation{N: n, Y: y(n) * (1 + noise*rng.NormFloat64())})
		}
	}
	return out
}

var sizes = []float64{100, 200, 500, 1000, 2000, 5000, 10000}

func TestFitLinearRecoversParameters(t *testing.T) {
	obs := synth(sizes, 3, 0.02, func(n float64) float64 { return 5 + 0.03*n })
	f, err := FitForm(Linear, obs)
	require.NoError(t, err)
	assert.InEpsilon(t, 0.03, f.Params[1], 0.03)
	assert.InDelta(t, 5, f.Params[0], 3)
	assert.Greater(t, f.R2, 0.99)
	assert.Len(t, f.Residuals, len(obs))
}

func TestFitPowerRecoversParameters(t *testing.T) {
	obs := synth(sizes, 3, 0.03, func(n float64) float64 { return 0.002 * math.Pow(n, 1.4) })
	f, err := FitForm(Power, obs)
	require.NoError(t, err)
	assert.InDelta(t, 1.4, f.Params[1], 0.03)
	assert.InEpsilon(t, 0.002, f.Params[0], 0.25)
	assert.Greater(t, f.R2, 0.99)

	fits, err := Best(obs, false)
	require.NoError(t, err)
	assert.Equal(t, Power, fits[0].Form, "a power law with b=1.4 is not a line")
}

func TestFitUSLRecoversParameters(t *testing.T) {
	// Throughput peaks near sqrt((1-σ)/κ) ≈ 99: the sizes straddle it.
	usl := func(n float64) float64 { return 50 * n / (1 + 0.02*(n-1) + 0.0001*n*(n-1)) }
	obs := synth([]float64{1, 2, 5, 10, 20, 50, 100, 200, 400}, 3, 0.01, usl)
	f, err := FitForm(USL, obs)
	require.NoError(t, err)
	assert.InEpsilon(t, 50, f.Params[0], 0.05)
	assert.InDelta(t, 0.02, f.Params[1], 0.005)
	assert.InEpsilon(t, 0.0001, f.Params[2], 0.2)
	assert.Greater(t, f.R2, 0.99)

	fits, err := Best(obs, true)
	require.NoError(t, err)
	assert.Equal(t, USL, fits[0].Form, "retrograde throughput is neither a line nor a power law")
}

func TestBestPrefersTheSimplerFormForALine(t *testing.T) {
	obs := synth(sizes, 3, 0.01, func(n float64) float64 { return 200 + 0.5*n })
	fits, err := Best(obs, false)
	require.NoError(t, err)
	assert.Equal(t, Linear, fits[0].Form)
	assert.Len(t, fits, 2)
}

func TestFitNeedsEnoughPoints(t *testing.T) {
	_, err := FitForm(Linear, []Observation{{N: 10, Y: 1}, {N: 10, Y: 2}, {N: 10, Y: 3}})
	assert.ErrorIs(t, err, ErrTooFew, "one size cannot give a slope")
	_, err = FitForm(USL, []Observation{{N: 10, Y: 1}, {N: 20, Y: 2}, {N: 40, Y: 3}, {N: 80, Y: 3}})
	assert.ErrorIs(t, err, ErrTooFew)
	_, err = FitForm(Power, []Observation{{N: 10, Y: -1}, {N: 20, Y: -2}, {N: 40, Y: -3}, {N: 80, Y: -3}})
	assert.ErrorIs(t, err, ErrTooFew, "no logarithm of a negative value")
	_, err = Best(nil, true)
	assert.Error(t, err)
}

func TestResidualsAreObservedMinusPredicted(t *testing.T) {
	obs := []Observation{{N: 1, Y: 1}, {N: 2, Y: 3}, {N: 3, Y: 2}, {N: 4, Y: 4}}
	f, err := FitForm(Linear, obs)
	require.NoError(t, err)
	for i, o := range obs {
		assert.InDelta(t, o.Y-f.Predict(o.N), f.Residuals[i], 1e-12)
	}
	assert.InDelta(t, 0.64, f.R2, 1e-9)
}

func TestFormsAreRegistered(t *testing.T) {
	assert.Equal(t, []string{"linear", "power", "usl"}, Forms.Names())
	_, err := FitForm("cubic", []Observation{{N: 1, Y: 1}, {N: 2, Y: 2}, {N: 3, Y: 3}, {N: 4, Y: 4}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"cubic"`)
	assert.Panics(t, func() { Forms.MustRegister("linear", linear{}) }, "a name is registered once")
}
