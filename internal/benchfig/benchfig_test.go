package benchfig

import (
	"context"
	"errors"
	"testing"

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
	ok := Benchmark{Name: "ok", Area: "x", Runs: 3, Run: func(context.Context, Env) (map[string]float64, error) {
		n++
		return map[string]float64{"x_count": float64(n * 10)}, nil
	}}
	bad := Benchmark{Name: "bad", Area: "x", Runs: 2, Run: func(context.Context, Env) (map[string]float64, error) {
		return nil, errors.New("boom")
	}}
	res := RunAll(context.Background(), []Benchmark{bad, ok}, t.TempDir(), "", t.Logf)
	require.Equal(t, 20.0, res.Figures["x_count"])
	require.Equal(t, 3, res.Runs["x_count"])
	require.Equal(t, "boom", res.Errors["bad"])
	require.NotEmpty(t, res.Commit)
}
