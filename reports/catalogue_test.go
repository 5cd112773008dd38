package reports_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/reports"
	"github.com/dsnscale/dsnscale/scenarios/measure"
)

// Every figure a measurement produces is in the catalogue, so that no product figure has its
// direction guessed.
func TestCatalogueCoversEveryMeasurement(t *testing.T) {
	names := measure.Default.Names()
	require.NotEmpty(t, names)
	for _, n := range names {
		m, _ := measure.Default.Lookup(n)
		for _, f := range m.Figures() {
			spec, ok := reports.LookupFigure("step/" + n + "." + f.Name)
			if assert.True(t, ok, "measurement %s: figure %s is not in reports.Catalogue", n, f.Name) {
				assert.Contains(t, []reports.FigureKind{reports.KindPerformance, reports.KindCorrectness, reports.KindInfo}, spec.Kind)
				if spec.Kind == reports.KindInfo {
					assert.Equal(t, reports.Neutral, spec.Better, f.Name)
				} else {
					assert.Contains(t, []reports.Direction{reports.LowerIsBetter, reports.HigherIsBetter}, spec.Better, f.Name)
				}
			}
		}
	}
}

func TestCatalogueCorrectnessFigures(t *testing.T) {
	for _, name := range []string{
		"cp-health.cp_crashes", "lost-dsns.lost_dsns", "watch-correctness.watch_gaps", "watch-correctness.watch_duplicates",
		"watch-correctness.watch_regressions", "storm/storm-recovery.storm_unrecovered_dsns",
		"convergence.convergence_incomplete_changes", "slo:lost_dsns == 0", reports.FigureBroken, "convergence.unconverged",
	} {
		spec, ok := reports.LookupFigure(name)
		require.True(t, ok, name)
		assert.Equal(t, reports.KindCorrectness, spec.Kind, name)
		assert.Equal(t, reports.LowerIsBetter, spec.Better, name)
	}
	spec, ok := reports.LookupFigure("storm/storm-recovery.storm_recovery_seconds")
	require.True(t, ok)
	assert.Equal(t, reports.KindPerformance, spec.Kind)
	_, ok = reports.LookupFigure("custom.resyncs")
	assert.False(t, ok)
}

func TestSLOName(t *testing.T) {
	assert.Equal(t, "storm/storm_recovery_seconds", reports.SLOName("storm/storm-recovery.storm_recovery_seconds"))
	assert.Equal(t, "lost_dsns", reports.SLOName("lost-dsns.lost_dsns"))
	assert.Equal(t, "api.p99.max", reports.SLOName("api.p99.max"))
	assert.Equal(t, "slo:API p99 <= 0.25s", reports.SLOName("slo:API p99 <= 0.25s"))
}

func TestRunFiguresAreClassified(t *testing.T) {
	r := &reports.Run{Measurements: []reports.Measurement{
		{Name: "cp-health", Values: []reports.Value{{Name: "cp_crashes", Value: 0}}},
		{Name: "custom", Values: []reports.Value{{Name: "errors", Value: 1}, {Name: "resyncs", Value: 2}, {Name: "mine", Value: 3, Better: reports.HigherIsBetter}}},
	}}
	got := map[string]reports.Figure{}
	for _, f := range r.Figures() {
		got[f.Name] = f
	}
	assert.Equal(t, reports.KindCorrectness, got["cp-health.cp_crashes"].Kind)
	assert.False(t, got["cp-health.cp_crashes"].Guessed)
	assert.Equal(t, reports.LowerIsBetter, got["custom.errors"].Better)
	assert.True(t, got["custom.errors"].Guessed, "not in the catalogue: guessed from the name")
	assert.Equal(t, reports.KindPerformance, got["custom.errors"].Kind)
	assert.Equal(t, reports.KindInfo, got["custom.resyncs"].Kind, "no direction, nothing to judge")
	assert.False(t, got["custom.mine"].Guessed, "the record states the direction")
	assert.Equal(t, reports.HigherIsBetter, got["custom.mine"].Better)
}
