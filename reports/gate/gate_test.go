package gate

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/internal/strictyaml"
)

const good = `apiVersion: dsnscale/v1
kind: Gate
metadata:
  name: storm-restart-ci
  description: the pull-request gate on the restart storm
scenario: storm-restart
alpha: 0.01
runs: 6
tolerance: 15%
figures:
  - name: storm/storm_recovery_seconds
    tolerance: 0.25
  - name: cp_peak_rss_bytes
  - name: custom.resyncs
    better: lower
`

func TestParse(t *testing.T) {
	g, err := Parse("gate.yaml", []byte(good))
	require.NoError(t, err)
	assert.Equal(t, "storm-restart", g.Scenario)
	assert.Equal(t, 0.01, g.Alpha)
	assert.Equal(t, 6, g.Runs)
	assert.InDelta(t, 0.15, float64(g.Tolerance), 1e-12)
	require.Len(t, g.Figures, 3)
	assert.InDelta(t, 0.25, g.ToleranceFor(0), 1e-12)
	assert.InDelta(t, 0.15, g.ToleranceFor(1), 1e-12, "the gate's tolerance")
	assert.Equal(t, "lower", g.Figures[2].Better)
	assert.Equal(t, "gate.yaml", g.File())

	minimal, err := Parse("min.yaml", []byte("apiVersion: dsnscale/v1\nkind: Gate\n"))
	require.NoError(t, err)
	assert.Equal(t, DefaultAlpha, minimal.Alpha)
	assert.Equal(t, Fraction(DefaultTolerance), minimal.Tolerance)
	assert.Zero(t, minimal.Runs)
	assert.Empty(t, minimal.Figures)
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      []string
	}{
		{"wrong kind", "apiVersion: dsnscale/v1\nkind: Scenario\n", []string{`f.yaml:2: kind: must be "Gate", got "Scenario"`}},
		{"wrong version", "apiVersion: v2\nkind: Gate\n", []string{`f.yaml:1: apiVersion: must be "dsnscale/v1", got "v2"`}},
		{"unknown field", "apiVersion: dsnscale/v1\nkind: Gate\nthreshold: 3\n", []string{"f.yaml:3: threshold: unknown field (known: apiVersion, kind, metadata, scenario, alpha, runs, tolerance, figures)"}},
		{"alpha out of range", "apiVersion: dsnscale/v1\nkind: Gate\nalpha: 0.7\n", []string{"f.yaml:3: alpha: 0.7: want a significance level in (0, 0.5]"}},
		{"alpha zero", "apiVersion: dsnscale/v1\nkind: Gate\nalpha: 0\n", []string{"f.yaml:3: alpha: 0: want a significance level"}},
		{"alpha text", "apiVersion: dsnscale/v1\nkind: Gate\nalpha: often\n", []string{`f.yaml:3: alpha: "often" is not a number`}},
		{"too few runs", "apiVersion: dsnscale/v1\nkind: Gate\nruns: 3\n", []string{"f.yaml:3: runs: 3 runs per side can never be significant at alpha 0.05: want >= 4"}},
		{"too few runs at alpha", "apiVersion: dsnscale/v1\nkind: Gate\nalpha: 0.01\nruns: 4\n", []string{"f.yaml:4: runs: 4 runs per side can never be significant at alpha 0.01: want >= 5"}},
		{"negative runs", "apiVersion: dsnscale/v1\nkind: Gate\nruns: -2\n", []string{"f.yaml:3: runs: -2: want a number of runs per side"}},
		{"bad tolerance", "apiVersion: dsnscale/v1\nkind: Gate\ntolerance: ten\n", []string{`f.yaml:3: tolerance: "ten" is not a fraction (0.1) or a percentage (10%)`}},
		{"zero tolerance", "apiVersion: dsnscale/v1\nkind: Gate\ntolerance: 0%\n", []string{"f.yaml:3: tolerance: 0: want a fraction in (0, 100]"}},
		{"figure problems", `apiVersion: dsnscale/v1
kind: Gate
figures:
  - name: cp_peak_rss_bytes
  - tolerance: 5%
  - name: cp_peak_rss_bytes
    better: sideways
  - name: " api.p99.max"
    tolerance: -1
  - cp_crashes
`, []string{
			"f.yaml:5: figures[1].name: is required",
			`f.yaml:6: figures[2].name: "cp_peak_rss_bytes" is already listed at figures[0]`,
			`f.yaml:7: figures[2].better: "sideways": want lower or higher`,
			`f.yaml:8: figures[3].name: " api.p99.max" has spaces around it`,
			"f.yaml:9: figures[3].tolerance: -1: want a fraction in (0, 100]",
			`f.yaml:10: figures[4]: want a mapping, got "cp_crashes"`,
		}},
		{"two documents", "apiVersion: dsnscale/v1\nkind: Gate\n---\nkind: Gate\n", []string{"f.yaml:3: more than one YAML document"}},
		{"not yaml", "apiVersion: [dsnscale\n", []string{"f.yaml:1:"}},
		{"empty", "", []string{"f.yaml:1: empty document"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := Parse("f.yaml", []byte(tc.doc))
			require.Error(t, err)
			assert.Nil(t, g)
			assert.ErrorIs(t, err, strictyaml.ErrInvalid)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.Len(t, strings.Split(err.Error(), "\n"), len(tc.want), "one line per problem:\n%v", err)
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gate.yaml")
	require.NoError(t, os.WriteFile(path, []byte(good), 0o644))
	g, err := Load(path)
	require.NoError(t, err)
	assert.Equal(t, path, g.File())

	_, err = Load(filepath.Join(dir, "missing.yaml"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestCheckFigures(t *testing.T) {
	g, err := Parse("gate.yaml", []byte(good))
	require.NoError(t, err)
	err = g.CheckFigures(func(i int, f Figure) (string, string) {
		switch f.Name {
		case "cp_peak_rss_bytes":
			return "name", `no figure of the runs is called "cp_peak_rss_bytes"; did you mean "cp_peak_rss"?`
		case "custom.resyncs":
			return "better", "the direction of custom.resyncs is known"
		}
		return "", ""
	})
	require.Error(t, err)
	var es strictyaml.Errors
	require.True(t, errors.As(err, &es))
	require.Len(t, es, 2)
	assert.Equal(t, `gate.yaml:13: figures[1].name: no figure of the runs is called "cp_peak_rss_bytes"; did you mean "cp_peak_rss"?`, es[0].Error())
	assert.Equal(t, "gate.yaml:15: figures[2].better: the direction of custom.resyncs is known", es[1].Error())

	clean, err := Parse("gate.yaml", []byte(good))
	require.NoError(t, err)
	assert.NoError(t, clean.CheckFigures(func(int, Figure) (string, string) { return "", "" }))
}

func TestFraction(t *testing.T) {
	for in, want := range map[string]float64{"0.1": 0.1, "10%": 0.1, " 2.5 % ": 0.025, "1": 1} {
		var f Fraction
		require.NoError(t, f.UnmarshalText([]byte(in)), in)
		assert.InDelta(t, want, float64(f), 1e-12, in)
	}
	for _, in := range []string{"", "%", "x%", "NaN", "Inf"} {
		var f Fraction
		assert.Error(t, f.UnmarshalText([]byte(in)), in)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("apiVersion: dsnscale/v1\nkind: Gate\nfigures: [{name: a}, {name: a}]\n"))
	f.Add([]byte("alpha: 1e309\nruns: 99999999999999999999\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := Parse("fuzz.yaml", data)
		if err != nil {
			assert.Nil(t, g)
			assert.ErrorIs(t, err, strictyaml.ErrInvalid)
			return
		}
		assert.Greater(t, g.Alpha, 0.0)
		assert.LessOrEqual(t, g.Alpha, 0.5)
		assert.Greater(t, float64(g.Tolerance), 0.0)
		assert.GreaterOrEqual(t, g.Runs, 0)
	})
}
