package scencli

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/internal/testbin"
	"github.com/dsnscale/dsnscale/reports"
)

// checkSmokeRun checks the record of a smoke run: it passed, convergence was measured and no
// DSN was lost.
func checkSmokeRun(t *testing.T, dir string) {
	t.Helper()
	run, err := reports.Load(dir)
	require.NoError(t, err)
	for _, v := range run.SLOs {
		obs := "none"
		if v.Observed != nil {
			obs = reports.FormatValue(*v.Observed, v.Unit)
		}
		t.Logf("SLO %s: observed %s, pass %v", v.Name, obs, v.Pass)
	}
	assert.Equal(t, reports.ResultPass, run.Result, "error: %s", run.Error)
	assert.Equal(t, "smoke", run.Scenario.Name)
	require.NotEmpty(t, run.Convergence, "no intent change was followed")
	seeded := 0
	for _, c := range run.Convergence {
		if c.Step == "seed" {
			seeded++
			assert.NotNil(t, c.To100Ms, "revision %d never reached every DSN", c.Revision)
		}
	}
	assert.Positive(t, seeded)

	figures := map[string]float64{}
	for _, m := range run.Measurements {
		for _, v := range m.Values {
			figures[m.Name+"."+v.Name] = v.Value
		}
	}
	lost, ok := figures["lost-dsns.lost_dsns"]
	require.True(t, ok, "lost_dsns not measured")
	assert.Zero(t, lost)
	_, ok = figures["seed/convergence.convergence_full_seconds"]
	assert.True(t, ok, "convergence of the seed step not measured")
	assert.Positive(t, figures["restart/storm-recovery.storm_restarted_dsns"])
	for _, f := range []string{reports.ReportFile, reports.SummaryFile, reports.JUnitFile} {
		_, err := os.Stat(filepath.Join(dir, f))
		assert.NoError(t, err, f)
	}
}

func TestSmokeInProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the smoke scenario (about 30s)")
	}
	dir := filepath.Join(t.TempDir(), "smoke")
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), []string{"smoke", "--out", dir}, &stdout, &stderr)
	t.Log(stdout.String())
	require.Equal(t, ExitOK, code, stderr.String())
	assert.Contains(t, stdout.String(), "report: "+filepath.Join(dir, reports.ReportFile))
	checkSmokeRun(t, dir)
}

func TestSmokeThroughTheBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds dsnscale and runs the smoke scenario (about 30s)")
	}
	bin := testbin.Path(t)

	help, _ := exec.Command(bin, "help").CombinedOutput()
	if !strings.Contains(string(help), "\n  run ") {
		t.Skip("the dsnscale binary does not have the run command yet")
	}
	dir := filepath.Join(t.TempDir(), "smoke")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "run", "smoke", "--out", dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	t.Log(stdout.String())
	require.NoError(t, err, stderr.String())
	checkSmokeRun(t, dir)
}
