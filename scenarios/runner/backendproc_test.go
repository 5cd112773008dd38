package runner

import (
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/reports"
	"github.com/dsnscale/dsnscale/scripts/testservers"
)

const backendProcScenario = `apiVersion: dsnscale/v1
kind: Scenario
metadata:
  name: backend-process
  description: the harness runs VictoriaMetrics for the control plane, freezes it, then kills it
params:
  vm: {default: victoria-metrics}
  port: {default: "8428"}
  data: {default: /tmp/vm}
seed: 6
fleet:
  size: 10
controlPlane:
  mode: inprocess
  backendProcesses:
    tsdb:
      command: ["${vm}", "-storageDataPath=${data}", "-httpListenAddr=127.0.0.1:${port}"]
      url: http://127.0.0.1:${port}
steps:
` + bootAndSeedSteps + `  - name: outage
    duration: 9s
    actions:
      - {kind: change-intent, params: {count: "3", interval: 2s}}
    load: {rate: 10/s, mix: get-only}
    faults:
      - {kind: backend-pause, delay: 1s, duration: 2s, params: {backend: tsdb}}
      - {kind: backend-kill, delay: 4s, duration: 3s, params: {backend: tsdb}}
    measurements: [backend-impact, convergence]
  - name: after
    until: converged
    timeout: 60s
    actions:
      - {kind: change-intent}
measurements: [lost-dsns, cp-health]
slos:
  - outage/convergence_full_seconds <= 10s
  - lost_dsns == 0
  - cp_crashes == 0
`

func TestEngineBackendProcessFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("runs VictoriaMetrics, a control plane and a simulated fleet for about 20s")
	}
	vm, err := exec.LookPath("victoria-metrics")
	testservers.RequireTool(t, "victoria-metrics is not installed (scripts/testservers/start.sh installs it), so backend process faults", err)
	if err != nil {
		return
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	require.NoError(t, ln.Close())
	dir := t.TempDir()
	run := runScenario(t, "backend-process.yaml", backendProcScenario,
		map[string]string{"vm": vm, "port": port, "data": filepath.Join(dir, "vm")}, Options{Dir: filepath.Join(dir, "run")})
	assert.Equal(t, reports.ResultPass, run.Result, "%s %v %v", run.Error, run.Steps, run.SLOs)
	require.Len(t, run.Faults, 2)
	for _, f := range run.Faults {
		assert.Empty(t, f.Error, f.Kind)
	}
	assert.Equal(t, "backend-pause", run.Faults[0].Kind)
	assert.InDelta(t, 2.0, run.Faults[0].End.Sub(run.Faults[0].Start).Seconds(), 1.0)
	assert.Equal(t, "backend-kill", run.Faults[1].Kind)
	for _, m := range run.Measurements {
		if m.Kind == "backend-impact" {
			for _, v := range m.Values {
				t.Logf("%s = %v missing %q", v.Name, v.Value, v.Missing)
			}
		}
	}
	// Nothing is left behind: the backend process is gone with the run.
	_, err = net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second)
	assert.Error(t, err, "VictoriaMetrics still listens after the run")
}
