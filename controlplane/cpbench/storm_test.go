package cpbench

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/reports"
)

func stormRun(to99 ...*float64) *reports.Run {
	r := &reports.Run{ID: "r1", Result: reports.ResultPass, Measurements: []reports.Measurement{
		// A step's values are not the run's: they must not be taken.
		{Name: "telemetry", Step: "storm", Values: []reports.Value{{Name: "telemetry_events_lost", Value: 99}}},
		{Name: "telemetry", Values: []reports.Value{{Name: "telemetry_events_lost", Value: 3}, {Name: "telemetry_events_rolled_up", Value: 1200}}},
		{Name: "watch-correctness", Values: []reports.Value{{Name: "watch_duplicates", Value: 2}}},
		{Name: "resources", Values: []reports.Value{{Name: "cp_peak_rss_bytes", Value: 500e6}}},
	}}
	r.Convergence = append(r.Convergence, reports.IntentChange{Step: "seed", To99Ms: reports.Float(90000)})
	for _, v := range to99 {
		r.Convergence = append(r.Convergence, reports.IntentChange{Step: burstStep, To99Ms: v})
	}
	return r
}

func TestStormFiguresFromTheRun(t *testing.T) {
	var to99 []*float64
	for i := 1; i <= 200; i++ {
		to99 = append(to99, reports.Float(float64(i)))
	}
	figs, err := stormFigures(stormRun(to99...), 10_000)
	require.NoError(t, err)
	require.Equal(t, map[string]float64{
		figEventsLost: 3, figEventsRolled: 1200, figWatchDups: 2,
		figSeedConv99:    198, // nearest rank: the 198th of 200; the seed step's change is not the burst's
		figRSSPerDSNScen: 50_000,
	}, figs)
}

func TestStormFiguresMissingAreErrors(t *testing.T) {
	// A burst change that never reached 99% of the fleet has no time: an error, not a figure.
	_, err := stormFigures(stormRun(reports.Float(5), nil), 10_000)
	require.ErrorContains(t, err, "1 of the 2 changes of step burst never reached 99% of the fleet")

	_, err = stormFigures(stormRun(), 10_000)
	require.ErrorContains(t, err, "no intent change in step burst")

	r := stormRun(reports.Float(5))
	r.Measurements[1].Values[1] = reports.Value{Name: "telemetry_events_rolled_up", Missing: "the control plane publishes no counter"}
	r.Measurements = r.Measurements[:3] // no resources
	_, err = stormFigures(r, 10_000)
	require.ErrorContains(t, err, "cp_events_rolled_up_storm_10k: telemetry.telemetry_events_rolled_up is missing: the control plane publishes no counter")
	require.ErrorContains(t, err, "cp_rss_bytes_per_dsn_scenario: the run has no resources measurement")
}
