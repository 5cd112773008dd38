package runner

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/scenarios"
	"github.com/dsnscale/dsnscale/scenarios/measure"
)

const missingSLOScenario = `apiVersion: dsnscale/v1
kind: Scenario
metadata: {name: missing-slo, description: SLOs on values that may be missing}
fleet: {size: 2}
steps:
  - {name: wait, duration: 1s, measurements: [storm-recovery]}
measurements: [lost-dsns]
slos:
  - wait/storm_unrecovered_dsns == 0
  - {value: storm_recovery_seconds, step: wait, op: "<=", threshold: 10s, missing: pass}
  - {value: lost_dsns, op: "==", threshold: "0", missing: fail}
`

func TestVerdictsOnMissingValues(t *testing.T) {
	s, err := scenarios.Parse("missing-slo.yaml", []byte(missingSLOScenario), nil, "")
	require.NoError(t, err)
	e := &engine{s: s}
	noRestart := "no DSN was restarted by a dsn-restart fault in the window"
	all := []measured{
		{Kind: "storm-recovery", Step: "wait", Values: []measure.Value{
			{Name: "storm_unrecovered_dsns", Missing: noRestart}, {Name: "storm_recovery_seconds", Missing: noRestart}}},
		{Kind: "lost-dsns", Values: []measure.Value{{Name: "lost_dsns", Value: 0}}},
	}
	vs := e.verdicts(all, nil)
	require.Len(t, vs, 3)
	assert.False(t, vs[0].Pass, "a missing value fails an SLO by default")
	assert.Nil(t, vs[0].Observed)
	assert.Equal(t, noRestart, vs[0].Reason)
	assert.True(t, vs[1].Pass, "missing: pass")
	assert.True(t, vs[1].MissingOK)
	assert.Equal(t, noRestart, vs[1].Reason)
	assert.True(t, vs[2].Pass)
	assert.Equal(t, 0.0, *vs[2].Observed)

	// A measurement never taken (the run ended first) is missing too.
	vs = e.verdicts(nil, nil)
	assert.False(t, vs[0].Pass)
	assert.True(t, vs[1].Pass)
	assert.Contains(t, vs[2].Reason, "not measured")
}
