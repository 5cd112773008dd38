package reports

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestChartsBreakOverAControlPlaneOutage checks that CPU and RSS lines stop where the control
// plane was down and its process could not be sampled, rather than run straight across.
func TestChartsBreakOverAControlPlaneOutage(t *testing.T) {
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	r := &Run{Start: start, End: start.Add(60 * time.Second)}
	cp := Component{Name: ComponentControlPlane, CPU: Series{Name: "cpu", Unit: UnitSeconds}, RSS: Series{Name: "rss", Unit: UnitBytes}}
	cpu := 0.0
	for s := 0; s <= 60; s++ {
		if s > 20 && s < 35 { // down from 20 to 35: no process to sample
			continue
		}
		cpu += 0.5
		cp.CPU.Add(start, start.Add(time.Duration(s)*time.Second), cpu)
		cp.RSS.Add(start, start.Add(time.Duration(s)*time.Second), 200<<20)
	}
	r.Components = []Component{cp}
	assert.InDelta(t, 3.0, samplingGap(cp.CPU), 1e-9, "three times the usual second")
	for _, p := range rate(cp.CPU) {
		assert.False(t, p.X > 20 && p.X <= 35, "no rate averaged over the outage (point at %v)", p.X)
	}
	charts := map[string]string{}
	for _, c := range runCharts(r) {
		charts[c.ID] = c.SVG
	}
	for _, id := range []string{"chart-cpu", "chart-rss"} {
		require.Contains(t, charts, id)
		assert.Equal(t, 2, strings.Count(charts[id], "<polyline"), "%s: one line before the outage, one after", id)
	}
}

func TestStepFigures(t *testing.T) {
	r := loadFixture(t, "run.json")
	rows := stepFigureRows(r)
	require.Len(t, rows, 1+len(r.Steps))
	assert.Equal(t, "whole run", rows[0].Name)
	byName := map[string]stepFigureRow{}
	for _, row := range rows {
		byName[row.Name] = row
	}
	// The storm is where the run-wide worst figures come from.
	assert.Equal(t, rows[0].P99, byName["storm"].P99)
	assert.Equal(t, rows[0].Acked, byName["storm"].Acked)
	assert.NotEqual(t, rows[0].P99, byName["baseline"].P99)
	assert.Equal(t, "100%", byName["baseline"].Acked)
	assert.Equal(t, "1m", byName["baseline"].Duration)
}
