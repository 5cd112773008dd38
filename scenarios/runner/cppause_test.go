package runner

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/internal/testbin"
	"github.com/dsnscale/dsnscale/reports"
)

const cpPauseScenario = `apiVersion: dsnscale/v1
kind: Scenario
metadata:
  name: cp-pause-test
  description: freeze a control plane in a child process under a small fleet, then thaw it
fleet:
  size: 6
controlPlane:
  mode: process
steps:
  - name: seed
    until: converged
    timeout: 30s
    actions:
      - {kind: seed-intent, params: {tenants: "1", policies: "2", rules: "2"}}
  - name: frozen
    duration: 4s
    faults:
      - {kind: cp-pause, delay: 500ms, duration: 2s}
    measurements: [availability, cp-health]
  - name: thawed
    until: converged
    timeout: 30s
    actions:
      - {kind: change-intent}
    measurements: [convergence]
measurements: [cp-health, lost-dsns]
slos:
  - frozen/static_stability_availability >= 100%
  - cp_crashes == 0
  - lost_dsns == 0
  - thawed/convergence_full_seconds <= 20s
`

func TestEngineControlPlanePause(t *testing.T) {
	if testing.Short() {
		t.Skip("builds dsnscale and runs a control plane for a few seconds")
	}
	bin, err := testbin.Build()
	require.NoError(t, err)
	run := runScenario(t, "cp-pause.yaml", cpPauseScenario, nil, Options{Binary: bin, Fleets: newAgentFleet})
	assert.Equal(t, reports.ResultPass, run.Result, "%s %v %v", run.Error, run.Steps, run.SLOs)
	require.Len(t, run.Faults, 1)
	f := run.Faults[0]
	assert.Equal(t, "cp-pause", f.Kind)
	assert.Empty(t, f.Error)
	assert.InDelta(t, 2.0, f.End.Sub(f.Start).Seconds(), 0.8, "shaded for the time it was frozen")
}
