package runner

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/internal/testbin"
	"github.com/dsnscale/dsnscale/reports"
	"github.com/dsnscale/dsnscale/scenarios"
	"github.com/dsnscale/dsnscale/scripts/testservers"
	"github.com/dsnscale/dsnscale/simdsn/docker"
)

const containerMap = `apiVersion: dsnscale/v1
kind: TrafficMap
name: three-racks
heartbeat: 2s
sites:
  - name: s1
    racks:
      - {name: r1, dsns: 4}
      - {name: r2, dsns: 4}
      - {name: r3, dsns: 4}
      - {name: r4, dsns: 4}
groups:
  - name: g
    count: 16
    labels: {role: web}
`

const containerScenario = `apiVersion: dsnscale/v1
kind: Scenario
metadata:
  name: container-faults
  description: pause one unit's container and kill another's, then check every DSN comes back
seed: 2
fleet:
  size: 16
  driver: docker
  traffic: ./three-racks.yaml
steps:
  - name: boot
    until: {connected: 100%}
    timeout: 2m
  - name: seed
    until: converged
    timeout: 2m
    actions:
      - {kind: seed-intent, params: {tenants: "1", policies: "2", rules: "2"}}
  - name: faults
    duration: 14s
    faults:
      - {kind: container-pause, target: {units: [r2]}, delay: 1s, duration: 4s}
      - {kind: container-kill, target: {units: [r3]}, delay: 1s, duration: 4s}
      - {kind: container-stop, target: {units: [r4]}, delay: 1s, duration: 4s}
  - name: back
    until: converged
    timeout: 2m
    actions:
      - {kind: change-intent}
measurements: [lost-dsns]
slos:
  - lost_dsns == 0
`

func TestEngineContainerFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("starts containers")
	}
	testservers.RequireTool(t, "the Docker engine does not answer `docker info`, so container faults", docker.Available())
	bin, err := testbin.Build()
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "three-racks.yaml"), []byte(containerMap), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "scenario.yaml"), []byte(containerScenario), 0o644))
	s, err := scenarios.Load(filepath.Join(dir, "scenario.yaml"), nil)
	require.NoError(t, err)
	out, err := Run(context.Background(), s, Options{Dir: filepath.Join(dir, "run"), Binary: bin, Logger: testLogger(t)})
	require.NoError(t, err)
	run := out.Run
	assert.Equal(t, reports.ResultPass, run.Result, "%s %v", run.Error, run.Steps)
	require.Len(t, run.Faults, 3)
	for _, f := range run.Faults {
		assert.Empty(t, f.Error, f.Kind)
		assert.Contains(t, f.Target, "(4 DSNs)", f.Kind)
		// In effect from the start of its injection (a graceful stop takes up to its 5s grace)
		// until recovered 4s after the injection ended.
		d := f.End.Sub(f.Start).Seconds()
		assert.True(t, d >= 4 && d < 11, "%s in effect %.1fs", f.Kind, d)
	}
	// Each unit said where it ran and what it used, the restarted one too.
	require.Len(t, run.Units, 4)
	for _, u := range run.Units {
		assert.Empty(t, u.Missing, u.Name)
		assert.NotEmpty(t, u.Host, u.Name)
		assert.Equal(t, 4, u.DSNs, u.Name)
		assert.Positive(t, u.CPUSeconds, u.Name)
		assert.Positive(t, u.PeakRSSBytes, u.Name)
	}
	html, err := os.ReadFile(filepath.Join(dir, "run", "report.html"))
	require.NoError(t, err)
	assert.Contains(t, string(html), `<h3 id="units">Units</h3>`)
	// Nothing is left behind: no container of the run, paused or not.
	ps, err := exec.Command("docker", "ps", "-a", "--filter", "label=dsnscale.sim.unit", "--format", "{{.Names}} {{.Status}}").Output()
	require.NoError(t, err)
	for _, line := range strings.Split(strings.TrimSpace(string(ps)), "\n") {
		assert.NotContains(t, line, "Paused", "a container left paused")
	}
}
