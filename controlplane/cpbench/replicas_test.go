package cpbench

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/reports"
)

func TestReplicasFiguresFromTheRuns(t *testing.T) {
	conv := func(p99 float64) []reports.Measurement {
		return []reports.Measurement{
			{Name: "seed/convergence", Step: "seed", Values: []reports.Value{{Name: "convergence_p99_seconds", Value: 9}}},
			{Name: "changes/convergence", Step: "changes", Values: []reports.Value{{Name: "convergence_p99_seconds", Value: p99}}},
		}
	}
	one := &reports.Run{ID: "one", Result: reports.ResultPass, Measurements: conv(0.2)}
	three := &reports.Run{ID: "three", Result: reports.ResultPass, Measurements: conv(0.5)}
	figs, err := replicasFigures(one, three)
	require.NoError(t, err)
	require.InDelta(t, 200, figs[figPropagation1], 1e-9)
	require.InDelta(t, 500, figs[figPropagation3], 1e-9)
	require.InDelta(t, 2.5, figs[figReplicaRatio], 1e-9)

	three.Measurements[1].Values[0] = reports.Value{Name: "convergence_p99_seconds", Missing: "2 changes never reached 99% of the fleet"}
	_, err = replicasFigures(one, three)
	require.ErrorContains(t, err, "cp_replicas_3_propagation_p99_ms (run three, pass): changes/convergence.convergence_p99_seconds is missing: 2 changes never")
}
