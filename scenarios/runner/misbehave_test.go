package runner

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/reports"
)

const misbehaveScenario = `apiVersion: dsnscale/v1
kind: Scenario
metadata:
  name: misbehave
  description: every DSN misbehaviour kind injected into the simulated fleet and recovered
seed: 11
fleet:
  size: 12
steps:
` + bootAndSeedSteps + `  - name: misbehave
    duration: 4s
    actions:
      - {kind: change-intent, params: {count: "2", interval: 1s}}
    faults:
      - {kind: dsn-clock-skew, target: {count: 2}, params: {skew: "-1h"}}
      - {kind: dsn-slow-apply, target: {count: 2}, params: {delay: 2s}}
      - {kind: dsn-drop-acks, target: {count: 2}}
      - {kind: dsn-disk-degraded, target: {count: 2}}
      - {kind: dsn-temperature, target: {count: 2}}
      - {kind: dsn-flap, target: {count: 2}, params: {period: 1s, down: 1s}}
  - name: settle
    until: converged
    timeout: 60s
measurements: [lost-dsns]
slos:
  - lost_dsns == 0
`

func TestEngineDSNMisbehaviourFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a control plane and a simulated fleet for about 15s")
	}
	run := runScenario(t, "misbehave.yaml", misbehaveScenario, nil, Options{})
	assert.Equal(t, reports.ResultPass, run.Result, "%s %v", run.Error, run.Steps)
	require.Len(t, run.Faults, 6)
	for _, f := range run.Faults {
		assert.Empty(t, f.Error, f.Kind)
		assert.Contains(t, f.Target, "(2 DSNs)", f.Kind)
		assert.False(t, f.End.IsZero(), "%s recovered", f.Kind)
	}
}
