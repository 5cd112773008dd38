package sweeps

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func head(body string) string {
	return "apiVersion: dsnscale/v1\nkind: Sweep\nmetadata: {name: t}\n" + body
}

func TestCheckRejectsBadSweeps(t *testing.T) {
	for _, tc := range []struct {
		name, src, want string
	}{
		{"unknown scenario", head("scenario: no-such\naxes: {dsns: [1, 2]}\n"), `t.yaml:4: scenario:`},
		{"unknown field", head("scenario: smoke\naxis: {dsns: [1]}\n"), `t.yaml:5: axis: unknown field; did you mean "axes"?`},
		{"undeclared axis", head("scenario: smoke\naxes:\n  dnss: [10, 20]\n"), `t.yaml:6: axes.dnss: the scenario smoke declares no parameter "dnss"; did you mean "dsns"?`},
		{"wrong type", head("scenario: smoke\naxes:\n  dsns: [10, 2x0]\n"), `t.yaml:6: axes.dsns[1]: "2x0" is not an integer, as the default of dsns ("100") is`},
		{"wrong type rate", head("scenario: smoke\naxes:\n  rate: [10/s, fast]\n"), `axes.rate[1]: "fast" is not a rate (such as 50/s)`},
		{"unsorted", head("scenario: smoke\naxes:\n  dsns: [40, 20]\n"), `t.yaml:6: axes.dsns[1]: values must be ascending with no repeats: 20 after 40`},
		{"duplicate", head("scenario: smoke\naxes:\n  dsns: [20, 20]\n"), `values must be ascending with no repeats: 20 after 20`},
		{"empty", head("scenario: smoke\naxes:\n  dsns: []\n"), `t.yaml:6: axes.dsns: no values`},
		{"no axes", head("scenario: smoke\n"), `axes: at least one axis is required`},
		{"three axes", head("scenario: storm-restart\naxes: {dsns: [1], rate: [1/s], window: [1s]}\n"), `3 axes, at most 2`},
		{"zero", head("scenario: smoke\naxes: {dsns: [0, 10]}\n"), `axes.dsns[0]: "0": want a value above 0`},
		{"repeat", head("scenario: smoke\naxes: {dsns: [10]}\nrepeat: 0\n"), `t.yaml:6: repeat: 0: want at least 1 run per point`},
		{"set undeclared", head("scenario: smoke\nset: {rat: 5/s}\naxes: {dsns: [10]}\n"), `t.yaml:5: set.rat: the scenario smoke declares no parameter "rat"; did you mean "rate"?`},
		{"set and swept", head("scenario: smoke\nset: {dsns: \"10\"}\naxes: {dsns: [10]}\n"), `axes.dsns: is also fixed in set`},
		{"model", head("scenario: smoke\naxes: {dsns: [10]}\nmodel: [no.such_thing]\n"), `t.yaml:6: model[0]: "no.such_thing" is no figure`},
		{"budget", head("scenario: smoke\naxes: {dsns: [10, 20]}\nbudget: 5s\n"), `t.yaml:6: budget: 5s is less than one point takes by its steps (8s for dsns=10)`},
		{"search max", head("scenario: smoke\naxes: {dsns: [10]}\nuntilFail: {max: \"5\"}\n"), `untilFail.max: 5 is not above the first value, 10`},
		{"search resolution", head("scenario: smoke\naxes: {dsns: [10]}\nuntilFail: {resolution: 10}\n"), `untilFail.resolution: "10": want a percentage`},
		{"search two axes", head("scenario: smoke\naxes: {dsns: [10], rate: [5/s]}\nuntilFail: {}\n"), `untilFail: the limit search runs over one axis, not 2`},
		{"scenario refuses", head("scenario: smoke\naxes: {dsns: [10, 200000]}\n"), `the scenario does not accept dsns=200000`},
		{"name", "apiVersion: dsnscale/v1\nkind: Sweep\nmetadata: {name: ../x}\nscenario: smoke\naxes: {dsns: [10]}\n", `t.yaml:3: metadata.name: "../x": want letters`},
		{"kind", "apiVersion: dsnscale/v1\nkind: Scenario\nmetadata: {name: t}\nscenario: smoke\naxes: {dsns: [10]}\n", `t.yaml:2: kind: must be "Sweep"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sw, err := Parse("t.yaml", []byte(tc.src), "")
			if err == nil {
				_, err = Check(sw)
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrInvalid)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestCommandLineErrorsNameTheFlag(t *testing.T) {
	sw := FromScenario("smoke")
	require.NoError(t, sw.Apply(Overrides{Axes: []string{"dsns=20,10"}, Repeat: 2}))
	_, err := Check(sw)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "command line: axes.dsns[1]: (--axis) values must be ascending with no repeats: 10 after 20")

	err = FromScenario("smoke").Apply(Overrides{Axes: []string{"dsns"}})
	assert.ErrorIs(t, err, ErrInvalid)
	assert.Contains(t, err.Error(), "--axis: \"dsns\": want param=v1,v2,...")

	sw = FromScenario("smoke")
	require.NoError(t, sw.Apply(Overrides{Axes: []string{"dsns=10"}, Repeat: -1}))
	_, err = Check(sw)
	assert.Contains(t, err.Error(), "repeat: (--repeat) -1: want 1 to 100 runs per point")

	sw = FromScenario("nope")
	require.NoError(t, sw.Apply(Overrides{Axes: []string{"dsns=10"}}))
	_, err = Check(sw)
	assert.Contains(t, err.Error(), `scenario not found: "nope" is neither a library scenario`)
}

func TestCheckPlansTheGrid(t *testing.T) {
	plan := mustPlan(t, head("scenario: storm-restart\nset: {cp_mode: inprocess}\naxes:\n  dsns: [100, 200]\n  rate: [10/s, 1200/m]\nrepeat: 2\n"))
	require.Len(t, plan.Points, 8)
	p := plan.Points[0]
	assert.Equal(t, []string{"100", "10/s"}, p.Values)
	assert.Equal(t, []float64{100, 10}, p.Nums)
	assert.Equal(t, filepath.Join("points", "100-10pers-1"), p.Dir)
	assert.Equal(t, map[string]string{"dsns": "100", "rate": "10/s", "cp_mode": "inprocess"}, p.Set)
	assert.Equal(t, 60*time.Second, p.Least, "15 s of baseline and 45 s of storm")
	assert.Equal(t, []string{"200", "10/s"}, plan.Points[2].Values)
	assert.Equal(t, []string{"100", "1200/m"}, plan.Points[4].Values, "the second axis is outermost")
	assert.InDelta(t, 20, plan.Points[4].Nums[1], 1e-12)
}

func TestLoadFindsLibraryAndFiles(t *testing.T) {
	sw, err := Load("capacity")
	require.NoError(t, err)
	assert.Equal(t, "library:capacity", sw.Source)
	plan, err := Check(sw)
	require.NoError(t, err)
	assert.NotEmpty(t, plan.Points)
	var most time.Duration
	for _, p := range plan.Points {
		most += p.Least
	}
	assert.Less(t, most, 30*time.Minute, "the library capacity sweep fits in 30 minutes by its steps")

	dir := t.TempDir()
	scen, err := os.ReadFile(filepath.Join("..", "scenarios", "library", "smoke.yaml"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "mine.yaml"), scen, 0o644))
	path := filepath.Join(dir, "s.yaml")
	require.NoError(t, os.WriteFile(path, []byte(head("scenario: mine.yaml\naxes: {dsns: [10, 20]}\n")), 0o644))
	sw, err = Load(path)
	require.NoError(t, err)
	_, err = Check(sw)
	require.NoError(t, err, "a scenario file is looked up beside the sweep file")

	_, err = Load("no-such-sweep")
	assert.ErrorIs(t, err, ErrNotFound)
	assert.Contains(t, err.Error(), "capacity")
	assert.True(t, strings.Contains(err.Error(), "neither a library sweep"))
}

func TestDerivedFiguresAreInTheCatalogue(t *testing.T) {
	for _, n := range []string{FigureCPUSeconds, FigurePeakRSS, FigureCPUPerDSNMin, FigureRSSBytesPerDSN} {
		assert.True(t, modelName(n), n)
	}
}
