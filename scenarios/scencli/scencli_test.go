package scencli

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite golden files")

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestPlanGolden(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	code, out, errOut := run(t, "smoke", "--plan", "--set", "dsns=50")
	require.Equal(t, ExitOK, code, errOut)
	golden := filepath.Join(testdataDir(t), "smoke.plan")
	if *update {
		require.NoError(t, os.WriteFile(golden, []byte(out), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	assert.Equal(t, string(want), out)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries, "--plan has no side effects")
}

func testdataDir(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	require.NoError(t, err)
	// Tests that chdir elsewhere resolve testdata from the package directory.
	if _, err := os.Stat(filepath.Join(wd, "testdata")); err == nil {
		return filepath.Join(wd, "testdata")
	}
	return filepath.Join(pkgDir, "testdata")
}

var pkgDir, _ = os.Getwd()

func TestRunBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte(`apiVersion: dsnscale/v1
kind: Scenario
metadata: {name: bad, description: broken}
fleet: {size: 10}
steps:
  - name: one
    duration: 10 s
`), 0o644))
	for _, tt := range []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"no scenario", nil, ExitUsage, "which scenario?"},
		{"unknown flag", []string{"smoke", "--fast"}, ExitUsage, "unknown flag --fast"},
		{"missing value", []string{"smoke", "--out"}, ExitUsage, "--out needs a value"},
		{"bad set", []string{"smoke", "--set", "dsns"}, ExitUsage, `--set: "dsns": want name=value`},
		{"unknown param", []string{"smoke", "--set", "fleet=3"}, ExitUsage, "--set fleet: not a parameter of this scenario (declared: dsns, rate)"},
		{"bad param value", []string{"smoke", "--set", "dsns=many", "--plan"}, ExitUsage, `library:smoke:15: fleet.size: "many" is not an integer`},
		{"unknown scenario", []string{"no-such"}, ExitUsage, `"no-such" is neither a library scenario`},
		{"bad file", []string{bad}, ExitUsage, bad + `:7: steps[0].duration: "10 s" is not a duration (such as 30s or 1m30s)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := run(t, tt.args...)
			assert.Equal(t, tt.code, code)
			assert.Contains(t, errOut, tt.err)
		})
	}
}

func TestValidateAndList(t *testing.T) {
	var out, errOut bytes.Buffer
	assert.Equal(t, ExitOK, ValidateTo("storm-restart", nil, &out, &errOut), errOut.String())
	assert.Contains(t, out.String(), "library:storm-restart: ok")
	out.Reset()
	assert.Equal(t, ExitUsage, ValidateTo("storm-restart", []string{"recovery=1 minute"}, &out, &errOut))
	assert.Contains(t, errOut.String(), `slos[0].threshold: "1 minute" is not a duration`)

	out.Reset()
	require.Equal(t, ExitOK, List(&out))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	names := make([]string, len(lines))
	for i, l := range lines {
		names[i] = strings.Fields(l)[0]
	}
	assert.Subset(t, names, []string{"smoke", "steady-state", "storm-restart", "cp-restart"})
}
