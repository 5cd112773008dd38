package benchfig

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		require.Equal(t, tc.want, Median(tc.in), "%v", tc.in)
	}
}

func TestRunAllTakesMediansAndKeepsGoingAfterAFailure(t *testing.T) {
	n := 0
	ok := Benchmark{Name: "ok", Area: "x", Runs: 3, Figures: []string{"x_count"}, Run: func(context.Context, Env) (map[string]float64, error) {
		n++
		return map[string]float64{"x_count": float64(n * 10)}, nil
	}}
	bad := Benchmark{Name: "bad", Area: "x", Runs: 2, Run: func(context.Context, Env) (map[string]float64, error) {
		return nil, errors.New("boom")
	}}
	res := RunAll(context.Background(), []Benchmark{bad, ok}, t.TempDir(), "", t.Logf)
	require.Equal(t, 20.0, res.Figures["x_count"])
	require.Equal(t, 3, res.Runs["x_count"])
	require.Equal(t, "run 1 of 2: boom", res.Errors["bad"])
	require.NotEmpty(t, res.Commit)
}

// TestRunAllPublishesNothingOfAFailedBenchmark checks each way a benchmark can fall short: its
// figures are all withheld and the error names the run and what went wrong.
func TestRunAllPublishesNothingOfAFailedBenchmark(t *testing.T) {
	for _, tc := range []struct {
		name    string
		figures []string
		run     func(i int) (map[string]float64, error)
		err     string
	}{
		{"a later run fails", nil, func(i int) (map[string]float64, error) {
			if i == 2 {
				return nil, errors.New("boom")
			}
			return map[string]float64{"x_a": 1}, nil
		}, "run 2 of 3: boom"},
		{"a declared figure is missing", []string{"x_a", "x_b"}, func(int) (map[string]float64, error) {
			return map[string]float64{"x_a": 1}, nil
		}, "run 1 of 3: did not measure x_b"},
		{"a later run measures less", nil, func(i int) (map[string]float64, error) {
			if i == 3 {
				return map[string]float64{"x_a": 1}, nil
			}
			return map[string]float64{"x_a": 1, "x_b": 2}, nil
		}, "run 3 of 3: did not measure x_b"},
		{"nothing measured", nil, func(int) (map[string]float64, error) {
			return map[string]float64{}, nil
		}, "run 1 of 3: measured no figure"},
		{"not a number", nil, func(int) (map[string]float64, error) {
			return map[string]float64{"x_a": math.NaN()}, nil
		}, "run 1 of 3: x_a is NaN, not a measurement"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			i := 0
			b := Benchmark{Name: "b", Area: "x", Runs: 3, Figures: tc.figures, Run: func(context.Context, Env) (map[string]float64, error) {
				i++
				return tc.run(i)
			}}
			res := RunAll(context.Background(), []Benchmark{b}, t.TempDir(), "", t.Logf)
			assert.Empty(t, res.Figures, "no figure of a failed benchmark is published")
			assert.Equal(t, tc.err, res.Errors["b"])
		})
	}
}

func TestServerURL(t *testing.T) {
	t.Setenv("DSNSCALE_TEST_SOMETHING_URL", "")
	_, err := ServerURL("DSNSCALE_TEST_SOMETHING_URL", "start one")
	require.ErrorIs(t, err, ErrMissingServer)
	assert.Contains(t, err.Error(), "DSNSCALE_TEST_SOMETHING_URL is not set (start one)")
	t.Setenv("DSNSCALE_TEST_SOMETHING_URL", "http://127.0.0.1:1")
	u, err := ServerURL("DSNSCALE_TEST_SOMETHING_URL", "start one")
	require.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:1", u)
}
