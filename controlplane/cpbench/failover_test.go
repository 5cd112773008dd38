package cpbench

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/reports"
)

func TestFailoverFiguresFromTheRun(t *testing.T) {
	run := &reports.Run{ID: "r1", Result: reports.ResultPass, Measurements: []reports.Measurement{
		// Another step's values are not the failover step's.
		{Name: "rejoin/acked-writes", Step: "rejoin", Values: []reports.Value{{Name: "failover_write_seconds", Value: 99}}},
		{Name: "failover/acked-writes", Step: "failover", Values: []reports.Value{{Name: "failover_write_seconds", Value: 1.5}}},
		{Name: "failover/failover-reown", Step: "failover", Values: []reports.Value{{Name: "failover_reown_seconds", Value: 7.25}}},
	}}
	figs, err := failoverFigures(run)
	require.NoError(t, err)
	require.Equal(t, map[string]float64{figFailoverAPI: 1.5, figFailoverReown: 7.25}, figs)

	run.Measurements[2].Values[0] = reports.Value{Name: "failover_reown_seconds", Missing: "1 DSN never back in session at the current revision (d1)"}
	_, err = failoverFigures(run)
	require.ErrorContains(t, err, "cp_failover_reown_s: failover/failover-reown.failover_reown_seconds is missing: 1 DSN never back")

	run.Measurements = run.Measurements[:1]
	_, err = failoverFigures(run)
	require.ErrorContains(t, err, "cp_failover_api_s: the run has no failover/acked-writes measurement")
}
