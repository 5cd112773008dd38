package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/internal/benchfig"
)

// TestBenchFailsWithoutTheServerItNeeds runs `dsnscale bench` on a benchmark against
// VictoriaMetrics with no server given: the benchmark is an error in the JSON, its figure is
// absent, and the command exits as a broken run.
func TestBenchFailsWithoutTheServerItNeeds(t *testing.T) {
	out := filepath.Join(t.TempDir(), "latest.json")
	cmd := exec.Command(binary, "bench", "--run", "^tsdb_append_victoriametrics$", "--runs", "1", "--out", out)
	cmd.Env = append(os.Environ(), "DSNSCALE_TEST_VM_URL=")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "stderr: %s", stderr.String())
	assert.Equal(t, exitBroken, ee.ExitCode())

	var res benchfig.Result
	require.NoError(t, json.Unmarshal([]byte(stdout.String()), &res), stdout.String())
	assert.Contains(t, res.Errors["tsdb_append_victoriametrics"], "DSNSCALE_TEST_VM_URL is not set")
	assert.NotContains(t, res.Figures, "tsdb_vm_append_samples_per_s")
	saved, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.JSONEq(t, stdout.String(), string(saved), "the file holds the same object, errors included")
}

// TestBenchSucceedsWhenEveryFigureIsMeasured is the other side: a benchmark that needs nothing
// outside exits 0 with its figure and no errors.
func TestBenchSucceedsWhenEveryFigureIsMeasured(t *testing.T) {
	cmd := exec.Command(binary, "bench", "--run", "^cp_ratelimit$", "--runs", "1", "--out", "")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "stderr: %s", stderr.String())
	var res benchfig.Result
	require.NoError(t, json.Unmarshal([]byte(stdout.String()), &res), stdout.String())
	assert.Empty(t, res.Errors)
	assert.Positive(t, res.Figures["cp_ratelimit_decisions_per_s"])
}
