package reports

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
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

func TestCLICompare(t *testing.T) {
	base, head := runDir(t, generateRun(false)), runDir(t, generateRun(true))

	code, out, errOut := cli(compare, base, head)
	assert.Equal(t, ExitRegression, code, errOut)
	assert.True(t, strings.HasPrefix(out, "### ❌ Comparison of storm-restart: regression"), out)

	code, out, errOut = cli(compare, head, base)
	assert.Equal(t, ExitOK, code, errOut)
	assert.Contains(t, out, "no regression")

	// Flags after the positional arguments, and run.json paths instead of directories.
	outDir := filepath.Join(t.TempDir(), "cmp")
	code, out, errOut = cli(compare, filepath.Join(base, RunFile), head, "--out", outDir, "--tolerance", "0.5")
	assert.Equal(t, ExitRegression, code, errOut) // SLOs still broke
	assert.Contains(t, out, "wrote "+filepath.Join(outDir, CompareHTMLFile))
	assert.FileExists(t, filepath.Join(outDir, CompareHTMLFile))
	md, err := os.ReadFile(filepath.Join(outDir, CompareMarkdownFile))
	require.NoError(t, err)
	assert.Contains(t, string(md), "tolerance ±50%")

	code, _, _ = cli(compare, base, head, "--figure-tolerance", "control-plane.peak_rss=0.4", "--tolerance=0.35")
	assert.Equal(t, ExitRegression, code)

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{base}, "want BASE and HEAD, got 1 arguments"},
		{[]string{base, head, head}, "want BASE and HEAD, got 3 arguments"},
		{[]string{base, head, "--tolerance", "0"}, "--tolerance: must be greater than 0"},
		{[]string{base, head, "--tolerance", "-1"}, "default: -1 is not a fraction"},
		{[]string{base, head, "--tolerance", "x"}, "invalid value"},
		{[]string{base, head, "--figure-tolerance", "nonsense"}, "want NAME=FRACTION"},
		{[]string{base, filepath.Join(t.TempDir(), "missing")}, "HEAD: stat"},
	} {
		code, _, errOut := cli(compare, tc.args...)
		assert.Equal(t, ExitBadInput, code, "%v", tc.args)
		assert.Contains(t, errOut, tc.want, "%v", tc.args)
	}
}

func TestCLICompareUnwritableOutput(t *testing.T) {
	base := runDir(t, generateRun(false))
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	code, _, errOut := cli(compare, base, base, "--out", filepath.Join(file, "sub"))
	assert.Equal(t, ExitFailure, code)
	assert.Contains(t, errOut, "create comparison directory")
}
