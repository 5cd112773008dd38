package reports

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMissingValueShowsWhy(t *testing.T) {
	r := &Run{SLOs: []Verdict{
		{Name: "a", Measurement: "m.a", Op: OpLE, Threshold: 1, Reason: "the control plane serves no event search"},
		{Name: "b", Measurement: "m.b", Op: OpLE, Threshold: 1},
	}}
	rows := sloRows(r)
	require.Equal(t, "missing: the control plane serves no event search", rows[0].Observed)
	require.Equal(t, "missing", rows[1].Observed)
	var b strings.Builder
	require.NoError(t, RenderSummary(&b, r))
	require.Contains(t, b.String(), "missing: the control plane serves no event search")
}

func TestUnitRowsByHostAndMissing(t *testing.T) {
	r := &Run{Units: []Unit{
		{Name: "r2", Host: "b", DSNs: 4, CPUSeconds: 2, PeakRSSBytes: 4 << 20},
		{Name: "r1", Host: "b", DSNs: 2, CPUSeconds: 1, PeakRSSBytes: 2 << 20},
		{Name: "r0", Host: "a", DSNs: 0, CPUSeconds: 1, PeakRSSBytes: 1 << 20},
		{Name: "r9", DSNs: 3, Missing: "the unit never reported its usage"},
	}}
	rows := unitRows(r)
	require.Len(t, rows, 4)
	assert.Equal(t, []string{"r9", "r0", "r1", "r2"}, []string{rows[0].Name, rows[1].Name, rows[2].Name, rows[3].Name})
	assert.Equal(t, "missing", rows[0].CPUSeconds)
	assert.Contains(t, rows[0].Host, "never reported")
	assert.Equal(t, "n/a", rows[1].PerDSN, "no DSNs: no per-DSN figure")
	assert.Equal(t, formatBytes(float64(1<<20)), rows[2].PerDSN)
	var html strings.Builder
	require.NoError(t, RenderHTML(&html, r))
	assert.Contains(t, html.String(), `<h3 id="units">Units</h3>`)
}
