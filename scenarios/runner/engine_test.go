package runner

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/internal/testbin"
	"github.com/dsnscale/dsnscale/reports"
	"github.com/dsnscale/dsnscale/scenarios"
)

const engineScenario = `apiVersion: dsnscale/v1
kind: Scenario
metadata:
  name: engine-test
  description: seed, change under load, restart half the fleet
params:
  dsns: {default: "12"}
fleet:
  size: ${dsns}
steps:
  - name: seed
    until: converged
    timeout: 30s
    actions:
      - {kind: seed-intent, params: {tenants: "1", policies: "4", rules: "4"}}
    measurements: [convergence]
  - name: changes
    duration: 3s
    actions:
      - {kind: change-intent, params: {count: "2", interval: 500ms}}
    load: {rate: 20/s, mix: get-only}
    measurements: [api-latency, convergence]
  - name: storm
    until: converged
    timeout: 30s
    faults:
      - {kind: dsn-restart, target: {fraction: 50%}}
    measurements: [storm-recovery]
measurements: [lost-dsns, watch-correctness, availability, resources, cp-health, no-config, telemetry]
slos:
  - seed/convergence_full_seconds <= 20s
  - changes/api_error_percent <= 5%
  - storm/storm_recovery_seconds <= 20s
  - lost_dsns == 0
  - cp_crashes == 0
`

func testLogger(t *testing.T) *slog.Logger {
	var buf bytes.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// runScenario parses a test scenario with params and runs it with opts, into a fresh directory
// and logging to the test unless opts say otherwise; the run must complete.
func runScenario(t *testing.T, name, src string, params map[string]string, opts Options) *reports.Run {
	t.Helper()
	s, err := scenarios.Parse(name, []byte(src), params, "")
	require.NoError(t, err)
	if opts.Dir == "" {
		opts.Dir = filepath.Join(t.TempDir(), "run")
	}
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	out, err := Run(context.Background(), s, opts)
	require.NoError(t, err)
	return out.Run
}

func TestEngineWithReferenceAgents(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a control plane and a fleet for about 10s")
	}
	s, err := scenarios.Parse("engine-test.yaml", []byte(engineScenario), nil, "")
	require.NoError(t, err)
	dir := filepath.Join(t.TempDir(), "run")
	var progress bytes.Buffer
	out, err := Run(context.Background(), s, Options{Dir: dir, Fleets: newAgentFleet, Logger: testLogger(t), Progress: &progress})
	require.NoError(t, err)
	t.Log(progress.String())
	run, err := reports.Load(dir)
	require.NoError(t, err)
	for _, v := range run.SLOs {
		obs := "none"
		if v.Observed != nil {
			obs = fmt.Sprint(*v.Observed)
		}
		t.Logf("SLO %s: observed %s pass %v", v.Name, obs, v.Pass)
	}
	for _, st := range run.Steps {
		t.Logf("step %s %s..%s %s", st.Name, st.Start.Format(time.TimeOnly), st.End.Format(time.TimeOnly), st.Error)
	}
	assert.Equal(t, reports.ResultPass, run.Result, run.Error)
	assert.Equal(t, ExitPass, out.ExitCode())
	assert.NotEmpty(t, run.Convergence)
	require.Len(t, run.Faults, 1)
	assert.Equal(t, "dsn-restart", run.Faults[0].Kind)
	assert.NotEmpty(t, run.Acked.Points, "acked series read back from the time-series store")
	// The load's setup is a phase of its own, just before its step.
	var names []string
	for _, st := range run.Steps {
		names = append(names, st.Name+"/"+st.Phase)
	}
	assert.Equal(t, []string{"seed/", "changes:setup/setup", "changes/", "storm/"}, names)
	assert.False(t, run.Steps[1].End.After(run.Steps[2].Start), "the setup ends before its step starts")
	// Every per-DSN figure is there, measured or saying why not; recovery is the restarted half's.
	require.Len(t, run.DSNs, 5)
	for _, f := range run.DSNs {
		want := 12
		if f.Name == "recovery_seconds" {
			want = 6
		}
		assert.True(t, f.Missing != "" || f.DSNs == want, "%s: %d DSNs, missing %q", f.Name, f.DSNs, f.Missing)
	}
	for _, f := range []string{"run.json", "report.html", "summary.md", "junit.xml", DetailsFile, "cp.log"} {
		_, err := os.Stat(filepath.Join(dir, f))
		assert.NoError(t, err, f)
	}
}

const abortScenario = `apiVersion: dsnscale/v1
kind: Scenario
metadata:
  name: abort-test
  description: kill the control plane and wait; the test aborts the run meanwhile
fleet:
  size: 4
steps:
  - name: seed
    until: converged
    timeout: 30s
    actions:
      - {kind: seed-intent, params: {tenants: "1", policies: "1", rules: "1"}}
  - name: outage
    duration: 2m
    faults:
      - {kind: cp-kill, delay: 1s}
    measurements: [availability, cp-health]
measurements: [lost-dsns]
slos:
  - outage/static_stability_availability >= 100%
`

func TestEngineAbortRecoversFaultsAndWritesReport(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a control plane and a fleet for a few seconds")
	}
	s, err := scenarios.Parse("abort-test.yaml", []byte(abortScenario), nil, "")
	require.NoError(t, err)
	dir := filepath.Join(t.TempDir(), "run")
	ctx, cancel := context.WithCancel(context.Background())
	var progress syncBuffer
	go func() {
		// Abort once the fault has been injected.
		for !strings.Contains(progress.String(), "injecting cp-kill") {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(time.Second)
		cancel()
	}()
	start := time.Now()
	out, err := Run(ctx, s, Options{Dir: dir, Fleets: newAgentFleet, Logger: testLogger(t), Progress: &progress})
	require.NoError(t, err)
	assert.Less(t, time.Since(start), time.Minute, "the run stopped when aborted")
	assert.Equal(t, ExitBroken, out.ExitCode())

	run, err := reports.Load(dir)
	require.NoError(t, err)
	assert.Equal(t, reports.ResultAborted, run.Result)
	assert.Contains(t, run.Error, "aborted")
	require.Len(t, run.Faults, 1)
	assert.Equal(t, "cp-kill", run.Faults[0].Kind)
	assert.False(t, run.Faults[0].End.IsZero(), "the fault was recovered")
	assert.Empty(t, run.Faults[0].Error)
	require.Len(t, run.Steps, 2)
	assert.Contains(t, run.Steps[1].Error, "aborted")
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

const cpRestartScenario = `apiVersion: dsnscale/v1
kind: Scenario
metadata:
  name: cp-process-test
  description: restart a control plane in a child process under a small fleet
params:
  mode: {default: process}
fleet:
  size: 6
controlPlane:
  mode: ${mode}
steps:
  - name: seed
    until: converged
    timeout: 30s
    actions:
      - {kind: seed-intent, params: {tenants: "1", policies: "2", rules: "2"}}
  - name: outage
    duration: 4s
    faults:
      - {kind: cp-restart, delay: 500ms, params: {down: 1s}}
    measurements: [availability, cp-health]
  - name: rejoin
    until: converged
    timeout: 30s
    actions:
      - {kind: change-intent}
    measurements: [convergence]
measurements: [cp-health, lost-dsns]
slos:
  - outage/static_stability_availability >= 100%
  - outage/cp_kills == 1
  - cp_crashes == 0
  - lost_dsns == 0
  - rejoin/convergence_full_seconds <= 20s
`

func TestEngineControlPlaneRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds dsnscale and runs a control plane for a few seconds")
	}
	for _, mode := range []string{scenarios.CPProcess, scenarios.CPInProcess} {
		t.Run(mode, func(t *testing.T) {
			var bin string
			if mode == scenarios.CPProcess {
				var err error
				bin, err = testbin.Build()
				require.NoError(t, err)
			}
			s, err := scenarios.Parse("cp-test.yaml", []byte(cpRestartScenario), map[string]string{"mode": mode}, "")
			require.NoError(t, err)
			dir := filepath.Join(t.TempDir(), "run")
			out, err := Run(context.Background(), s, Options{Dir: dir, Binary: bin, Fleets: newAgentFleet, Logger: testLogger(t)})
			require.NoError(t, err)
			run := out.Run
			for _, v := range run.SLOs {
				obs := "none"
				if v.Observed != nil {
					obs = fmt.Sprint(*v.Observed)
				}
				t.Logf("SLO %s: observed %s pass %v", v.Name, obs, v.Pass)
			}
			assert.Equal(t, reports.ResultPass, run.Result, "%s %v", run.Error, run.Steps)
			require.Len(t, run.Faults, 1)
			assert.Empty(t, run.Faults[0].Error)
		})
	}
}

// bootAndSeedSteps are the first steps of most test scenarios: the whole fleet connects,
// then intent is seeded and converges.
const bootAndSeedSteps = `  - name: boot
    until: {connected: 100%}
    timeout: 60s
  - name: seed
    until: converged
    timeout: 60s
    actions:
      - {kind: seed-intent, params: {tenants: "1", policies: "2", rules: "2"}}
`

const simFaultsScenario = `apiVersion: dsnscale/v1
kind: Scenario
metadata:
  name: sim-faults
  description: crash and hang simulated DSNs, then check they all come back
seed: 7
fleet:
  size: 30
steps:
` + bootAndSeedSteps + `  - name: faults
    duration: 6s
    faults:
      - {kind: dsn-crash, target: {count: 5}, delay: 500ms, duration: 3s}
      - {kind: dsn-hang, target: {count: 5}, delay: 1s, duration: 3s}
    measurements: [availability]
  - name: settle
    until: converged
    timeout: 60s
measurements: [lost-dsns, watch-correctness]
slos:
  - faults/dataplane_availability < 100%
  - lost_dsns == 0
`

func TestEngineSimulatedFleetFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a control plane and a simulated fleet for about 15s")
	}
	run := runScenario(t, "sim-faults.yaml", simFaultsScenario, nil, Options{})
	assert.Equal(t, reports.ResultPass, run.Result, "%s %v %v", run.Error, run.Steps, run.SLOs)
	require.Len(t, run.Faults, 2)
	for _, f := range run.Faults {
		assert.Empty(t, f.Error, f.Kind)
		assert.Contains(t, f.Target, "(5 DSNs)")
		assert.False(t, f.End.IsZero(), "%s recovered", f.Kind)
	}
}

func TestEngineBrokenRunStillWritesReport(t *testing.T) {
	s, err := scenarios.Parse("broken.yaml", []byte(cpRestartScenario), map[string]string{"mode": scenarios.CPProcess}, "")
	require.NoError(t, err)
	dir := filepath.Join(t.TempDir(), "run")
	out, err := Run(context.Background(), s, Options{Dir: dir, Binary: filepath.Join(t.TempDir(), "no-such-dsnscale"), Fleets: newAgentFleet, Logger: testLogger(t)})
	require.NoError(t, err)
	assert.Equal(t, ExitBroken, out.ExitCode())
	run, err := reports.Load(dir)
	require.NoError(t, err)
	assert.Equal(t, reports.ResultAborted, run.Result)
	assert.Contains(t, run.Error, "control plane: start")
	assert.Empty(t, run.Steps)
	// No fleet ever registered: nothing was lost, and nothing says 0 DSNs were.
	for _, v := range run.SLOs {
		if v.Name == "lost_dsns == 0" {
			assert.Nil(t, v.Observed)
			assert.False(t, v.Pass)
			assert.Contains(t, v.Reason, "no DSNs")
		}
	}

	// A run directory that already holds a run is refused before anything starts.
	_, err = Run(context.Background(), s, Options{Dir: dir, Fleets: newAgentFleet, Logger: testLogger(t)})
	require.ErrorIs(t, err, scenarios.ErrInvalid)
}
