package reports

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeGroup writes set's runs as a group directory under parent.
func writeGroup(t *testing.T, parent, name string, set *RunSet) string {
	t.Helper()
	dir := filepath.Join(parent, name)
	g := &Group{SchemaVersion: GroupSchemaVersion, ID: name, Scenario: "smoke", Repeat: set.Size(), Status: GroupComplete, Start: synthStart}
	for i, r := range set.Runs {
		sub := filepath.Join(dir, "run-"+string(rune('1'+i)))
		require.NoError(t, Write(sub, r))
		g.Runs = append(g.Runs, GroupRun{Dir: filepath.Base(sub), ID: r.ID, Result: r.Result})
	}
	require.NoError(t, WriteGroup(dir, g))
	return dir
}

func TestCLICompareGroups(t *testing.T) {
	rec := loadRecorded(t)
	tmp := t.TempDir()
	base := writeGroup(t, tmp, "base", recordedSet(rec, "base", "aaa", 5, nil))
	same := writeGroup(t, tmp, "same", recordedSet(rec, "same", "aaa", 5, nil))
	slow := writeGroup(t, tmp, "slow", recordedSet(rec, "slow", "bbb", 5, func(_ int, v map[string]float64) { v[stormRecovery] *= 1.3 }))

	code, out, errOut := cli(compare, base, same)
	assert.Equal(t, ExitOK, code, errOut)
	assert.True(t, strings.HasPrefix(out, "### ✅ smoke: no regression"), out)

	code, out, errOut = cli(compare, base, slow)
	assert.Equal(t, ExitRegression, code, errOut)
	assert.True(t, strings.HasPrefix(out, "### ❌ smoke: regression: 1 figure worse (restart/storm\\_recovery\\_seconds)"), out)
	assert.Contains(t, out, "| restart/storm\\_recovery\\_seconds | 4.111 s ±4.7% | 5.344 s ±4.7% | +30.0% | 0.008 | ❌ regressed |")

	// Flags after the positional arguments; a run directory against a group.
	outDir := filepath.Join(t.TempDir(), "cmp")
	code, out, errOut = cli(compare, filepath.Join(base, "run-1"), slow, "--out", outDir)
	assert.Equal(t, ExitOK, code, "one base run: inconclusive, not a regression: %s", errOut)
	assert.Contains(t, out, "smoke: no regression; ")
	assert.Contains(t, out, "inconclusive (need >= 4 runs per side)")
	for _, f := range CompareFiles {
		assert.FileExists(t, filepath.Join(outDir, f))
		assert.Contains(t, out, "wrote "+filepath.Join(outDir, f))
	}

	// A directory of runs: the groups' parent holds both base and slow.
	code, _, errOut = cli(compare, tmp, slow, "--allow-different")
	assert.Equal(t, ExitOK, code, "base, same and slow against slow: %s", errOut)

	code, _, errOut = cli(compare, base, slow, "--figure-tolerance", "restart/storm_recovery_seconds=0.5")
	assert.Equal(t, ExitOK, code, errOut)
	code, _, errOut = cli(compare, base, slow, "--figure-tolerance", "watch_duplicates=0.5")
	assert.Equal(t, ExitRegression, code, "a correctness figure takes a tolerance, for a base that is not clean: %s", errOut)
	code, _, errOut = cli(compare, base, slow, "--alpha", "0.001")
	assert.Equal(t, ExitOK, code, "5 runs cannot reach 0.001: %s", errOut)

	gate := filepath.Join(t.TempDir(), "gate.yaml")
	require.NoError(t, os.WriteFile(gate, []byte("apiVersion: dsnscale/v1\nkind: Gate\nscenario: smoke\nruns: 5\nfigures:\n  - name: convergence_p99_seconds\n"), 0o644))
	code, _, errOut = cli(compare, base, slow, "--gate", gate)
	assert.Equal(t, ExitOK, code, "storm recovery is not gated: %s", errOut)
	code, _, errOut = cli(compare, base, slow, "--gate", gate, "--tolerance", "0.5")
	assert.Equal(t, ExitOK, code, errOut)

	for _, tc := range []struct {
		name string
		gate string
		args []string
		want string
	}{
		{"one argument", "", []string{base}, "want BASE and HEAD, got 1 arguments"},
		{"three arguments", "", []string{base, slow, slow}, "want BASE and HEAD, got 3 arguments"},
		{"zero tolerance", "", []string{base, slow, "--tolerance", "0"}, "--tolerance: must be greater than 0"},
		{"negative tolerance", "", []string{base, slow, "--tolerance", "-1"}, "default: -1 is not a fraction"},
		{"bad alpha", "", []string{base, slow, "--alpha", "0.9"}, "alpha 0.9: want a significance level in (0, 0.5]"},
		{"bad figure tolerance", "", []string{base, slow, "--figure-tolerance", "nonsense"}, "want NAME=FRACTION"},
		{"unknown figure", "", []string{base, slow, "--figure-tolerance", "storm_recovery_secs=0.2"},
			`--figure-tolerance storm_recovery_secs: no figure of the compared runs is called "storm_recovery_secs"`},
		{"typo suggests", "", []string{base, slow, "--figure-tolerance", "restart/storm_recovery_secnds=0.2"},
			`did you mean "restart/storm_recovery_seconds"?`},
		{"tolerance on info", "", []string{base, slow, "--figure-tolerance", "cp_kills=0.5"},
			"cp-health.cp_kills counts what the run did and is not judged"},
		{"missing head", "", []string{base, filepath.Join(t.TempDir(), "missing")}, "HEAD: reports: stat"},
		{"empty directory", "", []string{base, t.TempDir()}, "no runs in it"},
		{"too few runs", "", []string{base, filepath.Join(slow, "run-1"), "--min-runs", "4"}, "4 runs per side required; head has 1 good run"},
		{"gate for another scenario", "apiVersion: dsnscale/v1\nkind: Gate\nscenario: storm-restart\n", []string{base, slow},
			`gate.yaml:3: scenario: the gate is for "storm-restart", but runs of "smoke" were given`},
		{"gate names nothing", "apiVersion: dsnscale/v1\nkind: Gate\nfigures:\n  - name: storm_recovery_secs\n", []string{base, slow},
			`gate.yaml:4: figures[0].name: no figure of the compared runs is called "storm_recovery_secs"`},
		{"gate lists a correctness figure", "apiVersion: dsnscale/v1\nkind: Gate\nfigures:\n  - name: lost_dsns\n", []string{base, slow},
			"gate.yaml:4: figures[0].name: lost-dsns.lost_dsns is a correctness figure: it always gates, on any increase from a clean base; list it only to give the tolerance"},
		{"gate redirects a known figure", "apiVersion: dsnscale/v1\nkind: Gate\nfigures:\n  - name: convergence_p99_seconds\n    better: higher\n", []string{base, slow},
			"gate.yaml:5: figures[0].better: the direction of convergence.convergence_p99_seconds is known (lower is better)"},
		{"gate needs more runs", "apiVersion: dsnscale/v1\nkind: Gate\nruns: 6\n", []string{base, slow},
			"6 runs per side required; base has 5 good runs; head has 5 good runs"},
		{"bad gate file", "apiVersion: dsnscale/v1\nkind: Gate\nalpha: 2\n", []string{base, slow}, "gate.yaml:3: alpha: 2: want a significance level"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.gate != "" {
				path := filepath.Join(t.TempDir(), "gate.yaml")
				require.NoError(t, os.WriteFile(path, []byte(tc.gate), 0o644))
				args = append(args, "--gate", path)
			}
			code, _, errOut := cli(compare, args...)
			assert.Equal(t, ExitBadInput, code, "%v", args)
			assert.Contains(t, errOut, tc.want, "%v", args)
		})
	}
	code, _, _ = cli(compare, "-h")
	assert.Equal(t, ExitOK, code)
}

func TestCLICompareUnwritableOutput(t *testing.T) {
	rec := loadRecorded(t)
	base := writeGroup(t, t.TempDir(), "base", recordedSet(rec, "base", "aaa", 2, nil))
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	code, _, errOut := cli(compare, base, base, "--out", filepath.Join(file, "sub"))
	assert.Equal(t, ExitFailure, code)
	assert.Contains(t, errOut, "create comparison directory")
}
