package scencli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/internal/testbin"
	"github.com/dsnscale/dsnscale/reports"
)

func runBin(t *testing.T, timeout time.Duration, args ...string) (int, string, string) {
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

// Two smoke beds at once: each a run of its own with its own control plane and report, and one
// summary listing both, whose exit code is the worse of theirs.
func TestParallelBedsThroughTheBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds dsnscale and runs two smoke beds at once (about 40s)")
	}
	group := filepath.Join(t.TempDir(), "group")
	code, stdout, stderr := runBin(t, 4*time.Minute, "run", "--parallel", "2", "smoke", "--set", "dsns=20", "--out", group)
	t.Log(stdout)
	require.NotEqual(t, ExitUsage, code, stderr)

	data, err := os.ReadFile(filepath.Join(group, ParallelJSON))
	require.NoError(t, err)
	var g Parallel
	require.NoError(t, json.Unmarshal(data, &g))
	require.Len(t, g.Beds, 2)
	worst := 0
	for i, b := range g.Beds {
		worst = max(worst, b.ExitCode)
		require.Equal(t, []string{"bed-1-smoke", "bed-2-smoke"}[i], b.Dir)
		run, err := reports.Load(filepath.Join(group, b.Dir))
		require.NoError(t, err, "bed %d has no report (log: %s)", i+1, b.Log)
		assert.Equal(t, run.Result, b.Result)
		assert.Equal(t, 20, b.DSNs)
		assert.Equal(t, len(run.SLOs), b.SLOs)
		assert.FileExists(t, filepath.Join(group, b.Dir, reports.ReportFile))
		assert.DirExists(t, filepath.Join(group, b.Dir, "cp"), "the bed's control plane keeps its data in its own run directory")
		assert.NotEmpty(t, b.ControlPlaneNATS)
		t.Logf("bed %d: %s, exit %d, %d of %d SLOs, %s", i+1, b.Result, b.ExitCode, b.SLOsPass, b.SLOs, b.Error)
	}
	assert.NotEqual(t, g.Beds[0].ControlPlaneNATS, g.Beds[1].ControlPlaneNATS, "the beds share a control plane")
	assert.Equal(t, worst, g.ExitCode)
	assert.Equal(t, worst, code)
	md, err := os.ReadFile(filepath.Join(group, ParallelMD))
	require.NoError(t, err)
	assert.Contains(t, string(md), "| 1 | smoke | bed-1-smoke | 20 |")
	assert.Contains(t, string(md), "| 2 | smoke | bed-2-smoke | 20 |")
}

// Beds far beyond this machine are refused before anything starts, with the numbers.
func TestParallelOversubscribedThroughTheBinary(t *testing.T) {
	group := filepath.Join(t.TempDir(), "group")
	code, stdout, stderr := runBin(t, time.Minute, "run", "--parallel", "2", "smoke", "--set", "dsns=100000", "--out", group)
	require.Equal(t, ExitUsage, code, "%s\n%s", stdout, stderr)
	assert.Contains(t, stderr, "refusing 2 parallel beds: the beds would oversubscribe this machine")
	assert.Contains(t, stderr, "200000 DSNs × 512 KiB")
	assert.Contains(t, stderr, "the largest bed (100000 DSNs) needs about 200512 descriptors")
	assert.Contains(t, stderr, "--oversubscribe runs them anyway")
	assert.NoDirExists(t, group)
}
