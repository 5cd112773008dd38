package scencli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/reports"
	"github.com/dsnscale/dsnscale/scenarios"
	"github.com/dsnscale/dsnscale/scenarios/runner"
)

// fakeRuns stands in for the engine: run i (from 1) does what outcomes[i-1] says, writing a
// record as the engine would.
type fakeRuns struct {
	t        *testing.T
	outcomes []string // "pass", "fail", "broken", "norecord", "interrupt"
	cancel   context.CancelFunc
	calls    int
}

func (f *fakeRuns) run(ctx context.Context, s *scenarios.Scenario, opts runner.Options) (*runner.Outcome, error) {
	f.calls++
	what := f.outcomes[f.calls-1]
	if what == "norecord" {
		return nil, errors.New("scenarios: create run directory: permission denied")
	}
	start := time.Date(2026, 3, 1, 12, f.calls, 0, 0, time.UTC)
	run := &reports.Run{
		SchemaVersion: reports.SchemaVersion, ID: runner.RunID(start, s.Metadata.Name), Scenario: reports.Scenario{Name: s.Metadata.Name},
		Params: s.Values, Environment: reports.CurrentEnvironment(), Start: start, End: start.Add(time.Second), Result: reports.ResultPass,
		Measurements: []reports.Measurement{{Name: "cp-health", Values: []reports.Value{{Name: "cp_crashes", Value: 0}}}},
	}
	out := &runner.Outcome{Dir: opts.Dir, Run: run}
	switch what {
	case "fail":
		run.Result, run.Error = reports.ResultFail, "step restart: timed out"
	case "broken":
		run.Result, run.Error = reports.ResultAborted, "control plane: exited with status 2"
		out.Err = errors.New(run.Error)
	case "interrupt":
		f.cancel()
		run.Result, run.Error = reports.ResultAborted, "aborted: context canceled"
		out.Err = errors.New(run.Error)
	}
	require.NoError(f.t, reports.Write(opts.Dir, run))
	return out, nil
}

func repeatRun(t *testing.T, outcomes ...string) (dir string, code int, stdout string, f *fakeRuns) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f = &fakeRuns{t: t, outcomes: outcomes, cancel: cancel}
	s, err := scenarios.Load("smoke", map[string]string{"dsns": "20"})
	require.NoError(t, err)
	dir = filepath.Join(t.TempDir(), "group")
	clock := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r := repeater{run: f.run, now: func() time.Time { clock = clock.Add(time.Minute); return clock }}
	var out, errOut bytes.Buffer
	code = r.do(ctx, s, runArgs{target: "smoke", out: dir, repeat: len(outcomes)}, &out, &errOut)
	require.Empty(t, errOut.String())
	return dir, code, out.String(), f
}

func TestRepeatKeepsEveryRun(t *testing.T) {
	dir, code, out, _ := repeatRun(t, "pass", "broken", "norecord", "fail")
	assert.Equal(t, ExitBroken, code, "a run broke")
	for _, l := range []string{"== run 1 of 4 (group " + dir + ")", "run 2 of 4: BROKEN: control plane: exited with status 2",
		"run 3 of 4: BROKEN: scenarios: create run directory: permission denied", "run 4 of 4: FAIL",
		"4 of 4 runs made: 1 passed, 1 failed their SLOs, 2 broke", "compare with: dsnscale compare BASE " + dir} {
		assert.Contains(t, out, l)
	}
	g, err := reports.LoadGroup(dir)
	require.NoError(t, err)
	assert.Equal(t, reports.GroupComplete, g.Status)
	assert.Equal(t, "smoke", g.Scenario)
	assert.Equal(t, "20", g.Params["dsns"])
	require.Len(t, g.Runs, 4)
	assert.Equal(t, reports.GroupRun{Dir: "run-1", ID: "20260301T120100Z-smoke", Result: reports.ResultPass}, g.Runs[0])
	assert.True(t, g.Runs[1].Broken)
	assert.Equal(t, reports.ResultAborted, g.Runs[1].Result)
	assert.Equal(t, reports.GroupRun{Dir: "run-3", Broken: true, Error: "scenarios: create run directory: permission denied"}, g.Runs[2])
	assert.Equal(t, reports.ResultFail, g.Runs[3].Result)

	set, err := reports.LoadSet(dir)
	require.NoError(t, err)
	assert.Len(t, set.Runs, 2, "the passed and the failed run")
	assert.Len(t, set.Broken, 2)
}

func TestRepeatInterrupted(t *testing.T) {
	dir, code, out, f := repeatRun(t, "pass", "interrupt", "pass", "pass")
	assert.Equal(t, ExitBroken, code)
	assert.Equal(t, 2, f.calls, "no run starts after Ctrl-C")
	assert.Contains(t, out, "2 of 4 runs made: 1 passed, 0 failed their SLOs, 1 broke")
	assert.Contains(t, out, "interrupted: the runs made so far are kept")
	g, err := reports.LoadGroup(dir)
	require.NoError(t, err)
	assert.Equal(t, reports.GroupInterrupted, g.Status)
	require.Len(t, g.Runs, 2)
	assert.False(t, g.Runs[0].Broken)
	assert.True(t, g.Runs[1].Broken)
	assert.Contains(t, g.Runs[1].Error, "aborted")
}

func TestRepeatExitCodes(t *testing.T) {
	_, code, _, _ := repeatRun(t, "pass", "pass")
	assert.Equal(t, ExitOK, code)
	_, code, _, _ = repeatRun(t, "pass", "fail")
	assert.Equal(t, ExitFailed, code)
	// Ten runs and more are numbered so that they sort.
	dir, _, _, _ := repeatRun(t, "pass", "pass", "pass", "pass", "pass", "pass", "pass", "pass", "pass", "pass")
	g, err := reports.LoadGroup(dir)
	require.NoError(t, err)
	assert.Equal(t, "run-01", g.Runs[0].Dir)
	assert.Equal(t, "run-10", g.Runs[9].Dir)
}

func TestRepeatRefusesAFullDirectory(t *testing.T) {
	s, err := scenarios.Load("smoke", nil)
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "x"), nil, 0o644))
	f := &fakeRuns{t: t, outcomes: []string{"pass"}}
	var out, errOut bytes.Buffer
	code := repeater{run: f.run, now: time.Now}.do(context.Background(), s, runArgs{out: dir, repeat: 1}, &out, &errOut)
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, errOut.String(), "is not empty")
	assert.Zero(t, f.calls)
}

func TestRepeatArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"smoke", "--repeat", "0"}, `--repeat "0": want a number of runs from 1 to 1000`},
		{[]string{"smoke", "--repeat=many"}, `--repeat "many": want a number of runs from 1 to 1000`},
		{[]string{"smoke", "--repeat", "1001"}, "from 1 to 1000"},
		{[]string{"smoke", "--repeat"}, "--repeat needs a value"},
	} {
		code, _, errOut := run(t, tc.args...)
		assert.Equal(t, ExitUsage, code, "%v", tc.args)
		assert.Contains(t, errOut, tc.err, "%v", tc.args)
	}
	ra, err := parseRunArgs([]string{"smoke", "--repeat", "5", "--out", "g"})
	require.NoError(t, err)
	assert.Equal(t, 5, ra.repeat)

	dir := t.TempDir()
	t.Chdir(dir)
	code, out, errOut := run(t, "smoke", "--plan", "--repeat", "3")
	require.Equal(t, ExitOK, code, errOut)
	assert.Contains(t, out, "repeated 3 times into one group directory")
	entries, _ := os.ReadDir(dir)
	assert.Empty(t, entries, "--plan has no side effects")
}
