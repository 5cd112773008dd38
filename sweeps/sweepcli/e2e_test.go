package sweepcli

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/internal/testbin"
	"github.com/dsnscale/dsnscale/reports"
	"github.com/dsnscale/dsnscale/reports/capacity"
	"github.com/dsnscale/dsnscale/sweeps"
)

func dsnscale(t *testing.T, timeout time.Duration, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, testbin.Path(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		require.NoError(t, err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// The smoke scenario at 20, 40 and 80 DSNs, twice each, through the binary: six ordinary runs
// and the sweep's files.
func TestSmokeSweepThroughTheBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the smoke scenario six times (about 2 minutes)")
	}
	dir := filepath.Join(t.TempDir(), "sweep")
	code, stdout, stderr := dsnscale(t, 8*time.Minute, "sweep", "smoke", "--axis", "dsns=20,40,80", "--repeat", "2", "--out", dir)
	t.Log(stdout, stderr)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stderr, "point 1 of 6: dsns=20, run 1 of 2")
	assert.Contains(t, stderr, "point 6 of 6: dsns=80, run 2 of 2")
	assert.Contains(t, stdout, "capacity: ")
	assert.Contains(t, stdout, "report: "+filepath.Join(dir, sweeps.ReportFile))

	r, err := sweeps.LoadResult(dir)
	require.NoError(t, err)
	assert.Equal(t, sweeps.StatusComplete, r.Status)
	assert.Equal(t, "smoke", r.Scenario)
	require.Len(t, r.Points, 6)
	assert.Equal(t, -1, r.FirstFailing)
	for _, p := range r.Points {
		assert.Equal(t, sweeps.PointPass, p.Status, "%s: %s", p.Dir, p.Error)
		run, err := reports.Load(filepath.Join(dir, p.Dir))
		require.NoError(t, err, "each point is an ordinary run")
		assert.Equal(t, p.Values[0], run.Params["dsns"])
		assert.Equal(t, p.Values[0], run.Environment.Extra["fleet.size"])
		assert.NotEmpty(t, p.SLOs)
		assert.Contains(t, p.Figures, sweeps.FigureCPUSeconds)
		assert.Contains(t, p.Figures, sweeps.FigureRSSBytesPerDSN)
	}
	require.Len(t, r.Analysis, 1)
	a := r.Analysis[0]
	require.NotNil(t, a.Capacity, a.CapacityError)
	// Smoke passes at 80 DSNs with a wide margin: the answer is the cap, twice the largest.
	assert.Equal(t, capacity.AtCap, a.Capacity.Bound)
	assert.Equal(t, 160.0, a.Capacity.N)
	assert.Equal(t, 200, a.Capacity.Resamples)
	models := map[string]sweeps.Model{}
	for _, m := range a.Models {
		models[m.Name] = m
	}
	cpu := models[sweeps.FigureCPUSeconds]
	assert.Len(t, cpu.Observations, 6)
	assert.NotEmpty(t, cpu.Fits, cpu.FitError)
	assert.NotNil(t, cpu.Knee)
	assert.Contains(t, models, "seed/convergence.convergence_full_seconds")

	html, err := os.ReadFile(filepath.Join(dir, sweeps.ReportFile))
	require.NoError(t, err)
	assert.Contains(t, string(html), "<b>Capacity:</b> at least 160 DSNs")
	assert.Greater(t, strings.Count(string(html), "<svg"), 6)
	assert.NotContains(t, string(html), "<script")
	var junit struct {
		Tests int `xml:"tests,attr"`
		Cases []struct {
			Name string `xml:"name,attr"`
		} `xml:"testsuite>testcase"`
	}
	data, err := os.ReadFile(filepath.Join(dir, sweeps.JUnitFile))
	require.NoError(t, err)
	require.NoError(t, xml.Unmarshal(data, &junit))
	assert.Equal(t, 6*len(r.Points[0].SLOs), junit.Tests, "one test case per run and SLO")
	summary, err := os.ReadFile(filepath.Join(dir, sweeps.SummaryFile))
	require.NoError(t, err)
	assert.Contains(t, string(summary), "**Capacity: at least 160 DSNs")
}

// Bad input: a precise error, exit 2, and nothing started.
func TestBadInputThroughTheBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds dsnscale")
	}
	tmp := t.TempDir()
	file := filepath.Join(tmp, "bad.yaml")
	require.NoError(t, os.WriteFile(file, []byte("apiVersion: dsnscale/v1\nkind: Sweep\nmetadata: {name: bad}\nscenario: smoke\naxes:\n  dsns: [20, 10]\n"), 0o644))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"sweep", "no-such-scenario", "--axis", "dsns=10"}, `scenario not found: "no-such-scenario"`},
		{[]string{"sweep", "smoke", "--axis", "dnss=10,20"}, `(--axis) the scenario smoke declares no parameter "dnss"; did you mean "dsns"?`},
		{[]string{"sweep", "smoke", "--axis", "dsns=10,ten"}, `axes.dsns[1]: (--axis) "ten" is not an integer`},
		{[]string{"sweep", "smoke", "--axis", "dsns=20,10"}, `axes.dsns[1]: (--axis) values must be ascending with no repeats: 10 after 20`},
		{[]string{"sweep", "smoke", "--axis", "dsns="}, `axes.dsns: (--axis) no values`},
		{[]string{"sweep", "smoke", "--axis", "dsns=10", "--repeat", "0"}, `--repeat "0": want a number of runs from 1 to 100`},
		{[]string{"sweep", "smoke", "--axis", "dsns=10", "--budget", "3s"}, `budget: (--budget) 3s is less than one point takes by its steps (8s for dsns=10)`},
		{[]string{"sweep", "smoke"}, `axes: at least one axis is required`},
		{[]string{"sweep", "smoke", "--axis", "dsns=10", "--max", "100"}, `--max and --resolution bound the limit search: add --until-fail`},
		{[]string{"sweep", file}, file + `:6: axes.dsns[1]: values must be ascending with no repeats: 10 after 20`},
		{[]string{"validate", file}, file + `:6: axes.dsns[1]: values must be ascending`},
	} {
		out := filepath.Join(tmp, "out")
		args := append(append([]string(nil), tc.args...), "--out", out)
		if tc.args[0] == "validate" {
			args = tc.args
		}
		code, _, stderr := dsnscale(t, time.Minute, args...)
		assert.Equal(t, 2, code, "%v: %s", tc.args, stderr)
		assert.Contains(t, stderr, tc.want, "%v", tc.args)
		assert.NoDirExists(t, out, "%v: nothing may start", tc.args)
	}

	good := filepath.Join(tmp, "good.yaml")
	require.NoError(t, os.WriteFile(good, []byte("apiVersion: dsnscale/v1\nkind: Sweep\nmetadata: {name: good}\nscenario: smoke\naxes:\n  dsns: [10, 20]\nrepeat: 2\n"), 0o644))
	code, stdout, stderr := dsnscale(t, time.Minute, "validate", good)
	assert.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "ok (sweep good of scenario smoke: 4 runs)")

	code, stdout, stderr = dsnscale(t, time.Minute, "validate", "capacity")
	assert.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "capacity: ok (sweep capacity of scenario storm-restart: 8 runs)")

	code, stdout, stderr = dsnscale(t, time.Minute, "sweep", "capacity", "--plan")
	assert.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "sweep capacity (library:capacity) of scenario storm-restart")
	assert.Contains(t, stdout, "8 runs:")
	code, stdout, stderr = dsnscale(t, time.Minute, "sweep", "storm-restart", "--axis", "dsns=500", "--until-fail", "--max", "10000", "--plan")
	assert.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, "doubling from 500 while every SLO holds, at most up to 10000:\n  500, 1000, 2000, 4000, 8000, 10000")
}

// An interrupt (SIGTERM, which dsnscale handles as Ctrl-C) during the first point aborts it,
// starts no other and still writes the sweep's files.
func TestInterruptedSweepThroughTheBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("runs part of the smoke scenario")
	}
	dir := filepath.Join(t.TempDir(), "sweep")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testbin.Path(t), "sweep", "smoke", "--axis", "dsns=20,40", "--out", dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Start())
	log := filepath.Join(dir, "points", "20-1.log")
	require.Eventually(t, func() bool {
		data, _ := os.ReadFile(log)
		return strings.Contains(string(data), "step 1/4 boot")
	}, 2*time.Minute, 100*time.Millisecond, "the first point never started")
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	err := cmd.Wait()
	t.Log(stdout.String(), stderr.String())
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	assert.Equal(t, 3, exit.ExitCode())

	r, err := sweeps.LoadResult(dir)
	require.NoError(t, err)
	assert.Equal(t, sweeps.StatusInterrupted, r.Status)
	require.Len(t, r.Points, 1, "no point starts after the interrupt")
	assert.Equal(t, sweeps.PointAborted, r.Points[0].Status)
	run, err := reports.Load(filepath.Join(dir, r.Points[0].Dir))
	require.NoError(t, err, "the aborted run wrote its record")
	assert.Equal(t, reports.ResultAborted, run.Result)
	for _, f := range sweeps.Files {
		assert.FileExists(t, filepath.Join(dir, f))
	}
	assert.NoDirExists(t, filepath.Join(dir, "points", "40-1"))
}
