package scencli

import (
	"bytes"
	"context"
	"errors"
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

// Two smoke runs made with --repeat, compared through the binary as a group, as a single run
// and as a directory of runs.
func TestRepeatAndCompareThroughTheBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds dsnscale and runs the smoke scenario twice (about 40s)")
	}
	root, err := filepath.Abs(filepath.Join(pkgDir, "..", ".."))
	require.NoError(t, err)
	bin := filepath.Join(t.TempDir(), "dsnscale")
	build := exec.Command("go", "build", "-o", bin, "./cmd/dsnscale")
	build.Dir = root
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	dsnscale := func(args ...string) (int, string, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			require.NoError(t, err)
		}
		return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
	}

	parent := t.TempDir()
	group := filepath.Join(parent, "base")
	code, stdout, stderr := dsnscale("run", "smoke", "--repeat", "2", "--set", "dsns=20", "--out", group)
	t.Log(stdout)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "== run 2 of 2")
	g, err := reports.LoadGroup(group)
	require.NoError(t, err)
	assert.Equal(t, reports.GroupComplete, g.Status)
	require.Len(t, g.Runs, 2)
	for _, r := range g.Runs {
		assert.Equal(t, reports.ResultPass, r.Result)
		checkSmokeRun(t, filepath.Join(group, r.Dir))
	}

	code, stdout, stderr = dsnscale("compare", group, filepath.Join(group, g.Runs[0].Dir))
	t.Log(stdout)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "smoke: no regression")
	assert.Contains(t, stdout, "inconclusive (need &gt;= 4 runs per side)")
	assert.Contains(t, stdout, "| lost\\_dsns | 0 | 0 | 0 | — | = no change |")

	cmpDir := filepath.Join(t.TempDir(), "cmp")
	code, stdout, stderr = dsnscale("compare", parent, filepath.Join(group, g.Runs[1].Dir, reports.RunFile), "--out", cmpDir)
	require.Equal(t, 0, code, stderr)
	for _, f := range reports.CompareFiles {
		assert.FileExists(t, filepath.Join(cmpDir, f))
	}

	gate := filepath.Join(t.TempDir(), "gate.yaml")
	require.NoError(t, os.WriteFile(gate, []byte("apiVersion: dsnscale/v1\nkind: Gate\nfigures:\n  - name: restart/storm_recovery_secs\n"), 0o644))
	code, _, stderr = dsnscale("compare", group, group, "--gate", gate)
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, gate+`:4: figures[0].name: no figure of the compared runs is called "restart/storm_recovery_secs"; did you mean "restart/storm_recovery_seconds"?`)

	code, _, stderr = dsnscale("validate", gate)
	assert.Equal(t, 0, code, stderr)
}
