package runner

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/reports"
	"github.com/dsnscale/dsnscale/scenarios"
)

// faultTimingScenario has a step whose change-intent action outlasts its fault's offset, and a
// step whose fault (a restart storm spread over 5s) cannot finish within the step's 2s.
const faultTimingScenario = `apiVersion: dsnscale/v1
kind: Scenario
metadata:
  name: fault-timing
  description: faults fire at their offsets whatever the actions do; a fault cut short fails the run
params:
  optional: {default: "false"}
seed: 3
fleet:
  size: 8
steps:
` + bootAndSeedSteps + `  - name: changes
    duration: 6s
    actions:
      - {kind: change-intent, params: {count: "8", interval: 500ms}}
    faults:
      - {kind: dsn-hang, target: {count: 2}, delay: 1s, duration: 1s}
  - name: short
    duration: 2s
    faults:
      - kind: dsn-restart
        target: {count: 2}
        delay: 200ms
        params: {window: 5s}
        optional: ${optional}
`

func TestFaultsKeepTheirTiming(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a control plane and a simulated fleet for about 20s")
	}
	for _, optional := range []bool{false, true} {
		name := "required"
		if optional {
			name = "optional"
		}
		t.Run(name, func(t *testing.T) {
			s, err := scenarios.Parse("fault-timing.yaml", []byte(faultTimingScenario),
				map[string]string{"optional": map[bool]string{true: "true", false: "false"}[optional]}, "")
			require.NoError(t, err)
			dir := filepath.Join(t.TempDir(), "run")
			var progress syncBuffer
			out, err := Run(context.Background(), s, Options{Dir: dir, Logger: testLogger(t), Progress: &progress})
			require.NoError(t, err)
			run := out.Run
			t.Log(progress.String())

			steps := map[string]reports.Step{}
			for _, st := range run.Steps {
				steps[st.Name] = st
			}
			require.Len(t, run.Faults, 2, "%v", run.Faults)
			hang, storm := run.Faults[0], run.Faults[1]

			// The hang fired at its offset although the action took about 3.5s, and its shaded
			// window is the time it was in effect: about its 1s duration.
			require.Equal(t, "dsn-hang", hang.Kind)
			offset := hang.Start.Sub(steps["changes"].Start)
			assert.GreaterOrEqual(t, offset, time.Second)
			assert.Less(t, offset, 2*time.Second, "the fault waited for the step's actions")
			assert.Empty(t, hang.Error)
			require.False(t, hang.End.IsZero())
			assert.InDelta(t, 1.0, hang.End.Sub(hang.Start).Seconds(), 0.8)

			// The storm was cut short by the step's end.
			require.Equal(t, "dsn-restart", storm.Kind)
			assert.Contains(t, storm.Error, "cut short by the end of the step")
			assert.Equal(t, optional, storm.Optional)
			summary, err := os.ReadFile(filepath.Join(dir, reports.SummaryFile))
			require.NoError(t, err)
			assert.Contains(t, string(summary), "cut short")
			junit, err := os.ReadFile(filepath.Join(dir, reports.JUnitFile))
			require.NoError(t, err)
			if optional {
				assert.Equal(t, reports.ResultPass, run.Result, run.Error)
				assert.Equal(t, ExitPass, out.ExitCode())
				assert.Contains(t, progress.String(), "warning: optional fault short/faults[0]")
				assert.Contains(t, string(junit), "optional fault failed")
			} else {
				assert.Equal(t, reports.ResultAborted, run.Result)
				assert.Equal(t, ExitBroken, out.ExitCode())
				assert.Contains(t, run.Error, "cut short by the end of the step")
				assert.Contains(t, progress.String(), "error: fault short/faults[0]")
				assert.Contains(t, string(junit), `type="FaultFailed"`)
			}
		})
	}
}

const repeatScenario = `apiVersion: dsnscale/v1
kind: Scenario
metadata:
  name: repeat
  description: a fault repeated every second, each time on DSNs drawn with a probability
seed: 5
fleet:
  size: 20
steps:
  - name: boot
    until: {connected: 100%}
    timeout: 60s
  - name: repeat
    duration: 5s
    faults:
      - {kind: dsn-hang, delay: 200ms, duration: 400ms, every: 1s, probability: 30%}
  - name: settle
    until: {connected: 100%}
    timeout: 60s
`

func TestFaultsRepeatEvery(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a control plane and a simulated fleet for about 10s")
	}
	picks := func() [][]string {
		run := runScenario(t, "repeat.yaml", repeatScenario, nil, Options{})
		require.Equal(t, reports.ResultPass, run.Result, "%s %v", run.Error, run.Steps)
		var start time.Time
		for _, st := range run.Steps {
			if st.Name == "repeat" {
				start = st.Start
			}
		}
		// At +0.2s, 1.2s, 2.2s, 3.2s and 4.2s: each fits in the 5s step.
		require.Len(t, run.Faults, 5)
		var got [][]string
		for k, f := range run.Faults {
			assert.Empty(t, f.Error)
			assert.InDelta(t, 0.2+float64(k), f.Start.Sub(start).Seconds(), 0.5, "occurrence %d", k+1)
			assert.InDelta(t, 0.4, f.End.Sub(f.Start).Seconds(), 0.4, "occurrence %d lasted its duration", k+1)
			got = append(got, []string{f.Target})
		}
		return got
	}
	first := picks()
	// The draws differ from one occurrence to the next but not from one run to the next.
	assert.Equal(t, first, picks(), "the same seed draws the same DSNs")
}
