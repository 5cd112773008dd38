package reports

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runDir writes run (with Write) into a fresh directory and returns it.
func runDir(t *testing.T, run *Run) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), run.ID)
	require.NoError(t, Write(dir, run))
	return dir
}

func cli(f func(args []string, stdout, stderr *bytes.Buffer) int, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := f(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func report(args []string, o, e *bytes.Buffer) int  { return CLIReport(args, o, e) }
func compare(args []string, o, e *bytes.Buffer) int { return CLICompare(args, o, e) }

func TestCLIReport(t *testing.T) {
	dir := runDir(t, generateRun(true))
	for _, f := range []string{ReportFile, SummaryFile, JUnitFile} {
		require.NoError(t, os.Remove(filepath.Join(dir, f)))
	}
	code, out, errOut := cli(report, dir)
	require.Equal(t, ExitOK, code, errOut)
	assert.Contains(t, out, "storm-restart: fail (run 20250315-110000-storm-restart-head)")
	for _, f := range []string{ReportFile, SummaryFile, JUnitFile} {
		assert.FileExists(t, filepath.Join(dir, f))
	}

	code, _, errOut = cli(report)
	assert.Equal(t, ExitBadInput, code)
	assert.Contains(t, errOut, "want one run directory, got 0 arguments")

	code, _, errOut = cli(report, filepath.Join(t.TempDir(), "nope"))
	assert.Equal(t, ExitBadInput, code)
	assert.Contains(t, errOut, "no such file or directory")

	broken := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(broken, RunFile), []byte("{\n  \"schemaVersion\": 1,\n  \"id\": 7\n}\n"), 0o644))
	code, _, errOut = cli(report, broken)
	assert.Equal(t, ExitBadInput, code)
	assert.Contains(t, errOut, "run.json:3:")
	assert.Contains(t, errOut, "id: cannot use JSON number as string")

	code, _, _ = cli(report, "-h")
	assert.Equal(t, ExitOK, code)
	code, _, _ = cli(report, "--bogus", dir)
	assert.Equal(t, ExitBadInput, code)
}
