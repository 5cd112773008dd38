package runner

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/reports"
	"github.com/dsnscale/dsnscale/scripts/testservers"
)

const backendScenario = `apiVersion: dsnscale/v1
kind: Scenario
metadata:
  name: backend-unreachable
  description: the control plane loses its time-series backend for a while and keeps serving intent
params:
  tsdb: {default: ""}
seed: 4
fleet:
  size: 20
controlPlane:
  mode: inprocess
  tsdb: ${tsdb}
steps:
` + bootAndSeedSteps + `  - name: outage
    duration: 8s
    actions:
      - {kind: change-intent, params: {count: "3", interval: 1s}}
    load: {rate: 10/s, mix: get-only}
    faults:
      - {kind: backend-unreachable, delay: 1s, duration: 5s, params: {backend: tsdb}}
    measurements: [backend-impact, availability, convergence]
  - name: after
    until: converged
    timeout: 60s
    actions:
      - {kind: change-intent}
measurements: [lost-dsns, cp-health]
slos:
  - outage/static_stability_availability >= 95%
  - outage/convergence_full_seconds <= 10s
  - lost_dsns == 0
  - cp_crashes == 0
`

// The control plane's link to a real VictoriaMetrics goes through a proxy that the fault
// blackholes: intent keeps flowing to the fleet, and what the outage cost is measured.
func TestEngineBackendUnreachable(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a control plane and a simulated fleet for about 20s")
	}
	vm := testservers.Require(t, testservers.VMURL)
	run := runScenario(t, "backend.yaml", backendScenario, map[string]string{"tsdb": vm}, Options{})
	for _, v := range run.SLOs {
		t.Logf("SLO %s: pass %v %v %s", v.Name, v.Pass, *v.Observed, v.Reason)
	}
	assert.Equal(t, reports.ResultPass, run.Result, "%s %v", run.Error, run.Steps)
	require.Len(t, run.Faults, 1)
	f := run.Faults[0]
	assert.Equal(t, "backend-unreachable", f.Kind)
	assert.Empty(t, f.Error)
	assert.InDelta(t, 5.0, f.End.Sub(f.Start).Seconds(), 1.0)
	var impact *reports.Measurement
	for i, m := range run.Measurements {
		if m.Kind == "backend-impact" {
			impact = &run.Measurements[i]
		}
	}
	require.NotNil(t, impact)
	for _, v := range impact.Values {
		t.Logf("%s = %v missing %q", v.Name, v.Value, v.Missing)
		switch v.Name {
		case "backend_dropped_writes":
			assert.Empty(t, v.Missing, "the reference control plane counts its drops")
		case "backend_api_errors":
			assert.Empty(t, v.Missing, "the step's load is counted")
		}
	}
}
