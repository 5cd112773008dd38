package reports

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func figureOf(t *testing.T, c Comparison, name string) FigureComparison {
	t.Helper()
	for _, f := range c.Figures {
		if f.Name == name {
			return f
		}
	}
	t.Fatalf("no figure %s in the comparison", name)
	return FigureComparison{}
}

func mustCompare(t *testing.T, base, head *RunSet, opts CompareOptions) Comparison {
	t.Helper()
	c, err := Compare(base, head, opts)
	require.NoError(t, err)
	return c
}

const stormRecovery = "restart/storm-recovery.storm_recovery_seconds"

// A/A: base and head drawn from one recorded distribution. The gate must flag a regression in
// no more than about alpha of the comparisons, although each compares some thirty noisy
// performance figures.
func TestCompareAAFalseAlarmRate(t *testing.T) {
	rec := loadRecorded(t)
	rng := rand.New(rand.NewPCG(12, 2026))
	const draws, runs = 1500, 5
	alarms, naive := 0, 0
	drawSet := func(side string) *RunSet {
		var rs []*Run
		for i := range runs {
			rs = append(rs, synthRun(i, side, "c0ffee", rec.draw(rng), rec.units()))
		}
		return setOf(side, rs...)
	}
	for range draws {
		c := mustCompare(t, drawSet("base"), drawSet("head"), CompareOptions{})
		if c.Regressed() {
			alarms++
		}
		// Without the noise rule, every figure's own 5% adds up.
		for _, f := range c.Figures {
			if f.Verdict == Regressed {
				naive++
				break
			}
		}
	}
	rate, naiveRate := float64(alarms)/draws, float64(naive)/draws
	t.Logf("A/A over %d draws of %d runs per side: gate alarms %.3f, figures regressed before the noise rule %.3f", draws, runs, rate, naiveRate)
	assert.LessOrEqual(t, rate, DefaultAlpha, "the gate cries wolf")
	assert.Greater(t, naiveRate, 2*DefaultAlpha, "the draws are noisy enough for the check to mean something")
}

// A/B: a 20% slower storm recovery, 5 runs per side, is caught.
func TestCompareABShiftCaught(t *testing.T) {
	rec := loadRecorded(t)
	slower := func(_ int, v map[string]float64) { v[stormRecovery] *= 1.2 }
	c := mustCompare(t, recordedSet(rec, "base", "aaa", 5, nil), recordedSet(rec, "head", "bbb", 5, slower), CompareOptions{})
	f := figureOf(t, c, stormRecovery)
	assert.Equal(t, Regressed, f.Verdict, f.Why)
	assert.False(t, f.Noisy, f.Why)
	assert.True(t, f.Gated)
	require.NotNil(t, f.P)
	assert.InDelta(t, 2.0/252, *f.P, 1e-9, "five against five, apart")
	require.NotNil(t, f.Change)
	assert.InDelta(t, 0.2, *f.Change, 1e-9)
	assert.True(t, c.Regressed())
	require.Len(t, c.Regressions(), 1, "only the shifted figure: %+v", c.Regressions())

	// Drawn at random from the recorded runs, the same shift is caught nearly always.
	rng := rand.New(rand.NewPCG(7, 7))
	caught := 0
	const draws = 300
	for range draws {
		var b, h []*Run
		for i := range 5 {
			b = append(b, synthRun(i, "b", "aaa", rec.draw(rng), rec.units()))
			v := rec.draw(rng)
			v[stormRecovery] *= 1.2
			h = append(h, synthRun(i, "h", "bbb", v, rec.units()))
		}
		c := mustCompare(t, setOf("b", b...), setOf("h", h...), CompareOptions{})
		if f := figureOf(t, c, stormRecovery); f.Verdict == Regressed && !f.Noisy {
			caught++
		}
	}
	t.Logf("20%% shift caught in %d of %d draws", caught, draws)
	assert.GreaterOrEqual(t, caught, draws*85/100)
}

func TestCorrectnessGatesOnAnyIncrease(t *testing.T) {
	rec := loadRecorded(t)
	crashes := "cp-health.cp_crashes"
	for _, runs := range []int{1, 5} {
		crash := func(i int, v map[string]float64) {
			if i == runs-1 {
				v[crashes] = 1
			}
		}
		c := mustCompare(t, recordedSet(rec, "base", "aaa", runs, nil), recordedSet(rec, "head", "bbb", runs, crash), CompareOptions{})
		f := figureOf(t, c, crashes)
		assert.Equal(t, KindCorrectness, f.Kind)
		assert.Equal(t, Regressed, f.Verdict, "%d runs per side: %s", runs, f.Why)
		assert.True(t, f.Gated)
		assert.Nil(t, f.P, "no statistics")
		assert.True(t, c.Regressed(), "%d runs per side", runs)
		assert.Contains(t, f.Why, "rose from 0 to 1 (in 1 of ")
		assert.Contains(t, f.Why, "any increase from a clean base is a regression")
	}

	// A crash in the base too: the base is not clean, a count that varies from run to run is
	// judged by statistics, and the comparison says so at the top.
	both := func(i int, v map[string]float64) {
		if i == 0 {
			v[crashes] = 1
		}
	}
	c := mustCompare(t, recordedSet(rec, "base", "aaa", 5, both), recordedSet(rec, "head", "bbb", 5, both), CompareOptions{})
	f := figureOf(t, c, crashes)
	assert.Equal(t, Unchanged, f.Verdict)
	assert.Contains(t, f.Why, "base not clean (up to 1), so judged by statistics")
	assert.False(t, c.Regressed())
	assert.Contains(t, strings.Join(c.Warnings, "\n"), "the base is not clean: 1 correctness figure is above 0 in base runs, so it is judged by statistics rather than on any increase: cp_crashes (up to 1)")

	// Watch duplicates in every run of a restart storm: noise between groups of one build
	// passes, three times as many fails.
	dups := "watch-correctness.watch_duplicates"
	some := func(by float64) func(int, map[string]float64) {
		return func(i int, v map[string]float64) { v[dups] = (63 + float64(i*4)) * by }
	}
	c = mustCompare(t, recordedSet(rec, "base", "aaa", 5, some(1)), recordedSet(rec, "head", "bbb", 5, some(1.05)), CompareOptions{})
	assert.Equal(t, Unchanged, figureOf(t, c, dups).Verdict, figureOf(t, c, dups).Why)
	// Three times as many: significant, but the count spreads by 9% and five runs cannot tell a
	// 10% move from noise, so it does not gate at ±10%, and the headline says so.
	c = mustCompare(t, recordedSet(rec, "base", "aaa", 5, some(1)), recordedSet(rec, "head", "bbb", 5, some(3)), CompareOptions{})
	f = figureOf(t, c, dups)
	assert.Equal(t, Regressed, f.Verdict, f.Why)
	assert.True(t, f.Noisy, f.Why)
	assert.False(t, c.Regressed())
	assert.Contains(t, compareHeadline(c), "worse but too noisy to gate: watch_duplicates")
	// At a tolerance the count's spread allows, it gates.
	c = mustCompare(t, recordedSet(rec, "base", "aaa", 5, some(1)), recordedSet(rec, "head", "bbb", 5, some(3)),
		CompareOptions{Tolerance: Tolerance{Figures: map[string]float64{"watch_duplicates": 0.5}}})
	f = figureOf(t, c, dups)
	assert.Equal(t, Regressed, f.Verdict, f.Why)
	assert.False(t, f.Noisy, f.Why)
	assert.True(t, c.Regressed())

	// Missing on one side: neither a pass nor a fail.
	gone := func(_ int, v map[string]float64) { delete(v, crashes) }
	c = mustCompare(t, recordedSet(rec, "base", "aaa", 5, nil), recordedSet(rec, "head", "bbb", 5, gone), CompareOptions{})
	f = figureOf(t, c, crashes)
	assert.Equal(t, Missing, f.Verdict)
	assert.Equal(t, "missing in head (5 runs): not judged", f.Why)
	assert.False(t, c.Regressed())
	assert.Contains(t, compareHeadline(c), "1 figure missing on a side")
	// Missing in some head runs: judged on the others, and said.
	partly := func(i int, v map[string]float64) {
		if i < 2 {
			delete(v, crashes)
		}
	}
	c = mustCompare(t, recordedSet(rec, "base", "aaa", 5, nil), recordedSet(rec, "head", "bbb", 5, partly), CompareOptions{})
	f = figureOf(t, c, crashes)
	assert.Equal(t, Unchanged, f.Verdict)
	assert.Contains(t, f.Why, "missing in 2 of 5 head runs")
}

func TestSLOsAndBrokenRunsAreCorrectnessFigures(t *testing.T) {
	rec := loadRecorded(t)
	base := recordedSet(rec, "base", "aaa", 3, nil)
	head := recordedSet(rec, "head", "bbb", 3, nil)
	for _, r := range base.Runs {
		r.SLOs = []Verdict{pass("lost_dsns == 0"), fail("flaky")}
		r.Result = ResultFail
	}
	for i, r := range head.Runs {
		r.SLOs = []Verdict{pass("lost_dsns == 0"), fail("flaky")}
		r.Result = ResultFail
		if i == 1 {
			r.SLOs[0] = fail("lost_dsns == 0")
		}
	}
	c := mustCompare(t, base, head, CompareOptions{})
	lost := figureOf(t, c, "slo:lost_dsns == 0")
	assert.Equal(t, Regressed, lost.Verdict)
	assert.Equal(t, "fails in 1 of 3 head runs, in no base run", lost.Why)
	flaky := figureOf(t, c, "slo:flaky")
	assert.Equal(t, Inconclusive, flaky.Verdict, "failing in the base: judged by statistics, and 3 runs are too few")
	assert.Contains(t, flaky.Why, "base not clean")

	head.Broken = []BrokenRun{{Dir: "runs/head/run-04", Error: "control plane: exited"}}
	c = mustCompare(t, recordedSet(rec, "base", "aaa", 3, nil), head, CompareOptions{})
	broken := figureOf(t, c, FigureBroken)
	assert.Equal(t, Regressed, broken.Verdict)
	assert.Equal(t, 4, broken.Head.Runs)
	assert.Equal(t, []float64{0, 0, 0, 1}, broken.Head.Values)
	assert.Contains(t, strings.Join(c.Warnings, "\n"), "1 of 4 head runs broke and are left out of every figure but run.broken")
	assert.Equal(t, 3, figureOf(t, c, stormRecovery).Head.Runs, "the broken run is left out")
}

func TestPerformanceVerdicts(t *testing.T) {
	rec := loadRecorded(t)
	scale := func(name string, by float64) func(int, map[string]float64) {
		return func(_ int, v map[string]float64) { v[name] *= by }
	}
	avail := "availability.static_stability_availability"
	rss := "resources.cp_peak_rss_bytes"
	conv := "convergence.convergence_p99_seconds"
	for _, tc := range []struct {
		name        string
		runs        int
		figure      string
		edit        func(int, map[string]float64)
		tol         float64
		verdict     FigureVerdict
		noisy       bool
		why         string
		regressedGt bool
	}{
		{"too few runs", 3, stormRecovery, scale(stormRecovery, 2), 0, Inconclusive, false, "need >= 4 runs per side for significance at alpha 0.05 (have 3 and 3)", false},
		{"within tolerance", 5, stormRecovery, scale(stormRecovery, 1.05), 0, Unchanged, false, "within ±10%", false},
		{"looser tolerance", 5, stormRecovery, scale(stormRecovery, 1.2), 0.25, Unchanged, false, "within ±25%", false},
		{"faster", 5, stormRecovery, scale(stormRecovery, 0.7), 0, Improved, false, "better beyond ±10%, significant (p=0.008 <= 0.05)", false},
		{"availability down", 5, avail, scale(avail, 0.8), 0, Regressed, false, "worse beyond ±10%", true},
		{"availability up", 5, avail, scale(avail, 1.2), 0, Improved, false, "better", false},
		{"memory up", 6, rss, scale(rss, 1.3), 0, Regressed, false, "worse", true},
		{"noisy convergence", 5, conv, scale(conv, 1.5), 0, Regressed, true, "too noisy to gate with 5 runs", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := CompareOptions{}
			if tc.tol > 0 {
				opts.Tolerance = Tolerance{Figures: map[string]float64{SLOName(tc.figure): tc.tol}}
			}
			c := mustCompare(t, recordedSet(rec, "base", "aaa", tc.runs, nil), recordedSet(rec, "head", "bbb", tc.runs, tc.edit), opts)
			f := figureOf(t, c, tc.figure)
			assert.Equal(t, tc.verdict, f.Verdict, f.Why)
			assert.Equal(t, tc.noisy, f.Noisy, f.Why)
			assert.Contains(t, f.Why, tc.why)
			if tc.noisy {
				assert.Greater(t, f.RunsNeeded, tc.runs)
			}
			gated := false
			for _, r := range c.Regressions() {
				gated = gated || r.Name == tc.figure
			}
			assert.Equal(t, tc.regressedGt, gated)
		})
	}
}

func TestCompareGateSelectsFigures(t *testing.T) {
	rec := loadRecorded(t)
	avail := "availability.static_stability_availability"
	worse := func(_ int, v map[string]float64) { v[avail] *= 0.8; v[stormRecovery] *= 1.3 }
	base, head := recordedSet(rec, "base", "aaa", 5, nil), recordedSet(rec, "head", "bbb", 5, worse)
	c := mustCompare(t, base, head, CompareOptions{Gate: []string{"restart/storm_recovery_seconds"}})
	assert.True(t, figureOf(t, c, stormRecovery).Gated, "named by its SLO name")
	a := figureOf(t, c, avail)
	assert.False(t, a.Gated)
	assert.Equal(t, Regressed, a.Verdict, "judged and shown, not gated")
	require.Len(t, c.Regressions(), 1)
	assert.Equal(t, stormRecovery, c.Regressions()[0].Name)
	assert.True(t, figureOf(t, c, "cp-health.cp_crashes").Gated, "correctness figures always gate")
}

func TestCompareDirectionOverrideAndGuess(t *testing.T) {
	rec := loadRecorded(t)
	custom := func(by float64) func(int, map[string]float64) {
		return func(i int, v map[string]float64) { v["custom.resyncs"] = (100 + float64(i)) * by }
	}
	base, head := recordedSet(rec, "base", "aaa", 5, custom(1)), recordedSet(rec, "head", "bbb", 5, custom(1.5))
	c := mustCompare(t, base, head, CompareOptions{})
	f := figureOf(t, c, "custom.resyncs")
	assert.Equal(t, Info, f.Verdict, "no direction known or guessed")
	c = mustCompare(t, base, head, CompareOptions{Better: map[string]Direction{"custom.resyncs": LowerIsBetter}})
	f = figureOf(t, c, "custom.resyncs")
	assert.Equal(t, Regressed, f.Verdict)
	assert.False(t, f.Guessed)

	errs := func(i int, v map[string]float64) { v["custom.errors"] = 1 }
	c = mustCompare(t, recordedSet(rec, "base", "aaa", 5, errs), recordedSet(rec, "head", "bbb", 5, errs), CompareOptions{})
	f = figureOf(t, c, "custom.errors")
	assert.True(t, f.Guessed)
	assert.Contains(t, strings.Join(c.Warnings, "\n"), "1 figure is outside the catalogue: its direction is guessed from its name and unit (custom.errors)")
}

func TestCompareRefusals(t *testing.T) {
	rec := loadRecorded(t)
	base := recordedSet(rec, "base", "aaa", 4, nil)
	other := recordedSet(rec, "head", "bbb", 4, nil)
	other.Runs[2].Params["dsns"] = "50"
	_, err := Compare(base, other, CompareOptions{})
	require.ErrorIs(t, err, ErrIncomparable)
	assert.Contains(t, err.Error(), `parameter dsns is "100" in base run base-1 but "50" in head run head-3`)
	assert.Contains(t, err.Error(), "--allow-different")
	c, err := Compare(base, other, CompareOptions{AllowDifferent: true})
	require.NoError(t, err)
	assert.Contains(t, c.Warnings[0], "parameter dsns")

	scen := recordedSet(rec, "head", "bbb", 4, nil)
	scen.Runs[0].Scenario.Name = "storm-restart"
	_, err = Compare(base, scen, CompareOptions{})
	assert.ErrorIs(t, err, ErrIncomparable)
	assert.Contains(t, err.Error(), `base run base-1 is of scenario "smoke", head run head-1 of "storm-restart"`)

	_, err = Compare(base, recordedSet(rec, "head", "bbb", 3, nil), CompareOptions{MinRuns: 4})
	require.ErrorIs(t, err, ErrTooFewRuns)
	assert.Contains(t, err.Error(), "4 runs per side required; head has 3 good runs")

	for _, bad := range []CompareOptions{{Alpha: 0.9}, {Alpha: math.NaN()}, {MinRuns: -1}, {Tolerance: Tolerance{Default: -1}}, {Better: map[string]Direction{"x": Neutral}}} {
		_, err := Compare(base, base, bad)
		assert.Error(t, err, "%+v", bad)
		assert.True(t, errors.Is(err, ErrOptions) || errors.Is(err, ErrTolerance), "%v", err)
	}
}

func TestCompareSameRunsIsQuiet(t *testing.T) {
	rec := loadRecorded(t)
	base := recordedSet(rec, "base", "aaa", 8, nil)
	c := mustCompare(t, base, base, CompareOptions{})
	assert.False(t, c.Regressed())
	for _, f := range c.Figures {
		assert.Contains(t, []FigureVerdict{Unchanged, Info}, f.Verdict, "%s: %s", f.Name, f.Why)
	}
	// The recorded smoke runs say their load generator fell behind; that is all there is to say.
	require.Len(t, c.Warnings, 2, "%q", c.Warnings)
	for _, w := range c.Warnings {
		assert.Contains(t, w, "the load generator fell behind its schedule in 8")
	}
}

func TestComparisonJSONHasNoNaN(t *testing.T) {
	rec := loadRecorded(t)
	c := mustCompare(t, recordedSet(rec, "base", "aaa", 1, nil), recordedSet(rec, "head", "bbb", 2, nil), CompareOptions{})
	data, err := json.Marshal(c)
	require.NoError(t, err, "one run on a side has no interval and no spread: those are null")
	var back map[string]any
	require.NoError(t, json.Unmarshal(data, &back))
	assert.Contains(t, string(data), `"cv":null`)
}

func TestCatalogueKnowsEveryBuiltinFigure(t *testing.T) {
	figs := generateRun(true).builtinFigures()
	require.NotEmpty(t, figs)
	for _, f := range figs {
		_, ok := LookupFigure(f.Name)
		assert.True(t, ok, "built-in figure %s is not in the catalogue", f.Name)
		assert.False(t, f.Guessed, f.Name)
	}
}

func TestToleranceValidate(t *testing.T) {
	require.NoError(t, DefaultTolerance().Validate())
	require.NoError(t, Tolerance{}.Validate())
	for _, bad := range []Tolerance{{Default: -0.1}, {Default: math.NaN()}, {Default: 101}, {Default: 0.1, Figures: map[string]float64{"x": 0}}} {
		err := bad.Validate()
		require.Error(t, err, "%+v", bad)
		assert.ErrorIs(t, err, ErrTolerance)
	}
	tol := Tolerance{Default: 0.2, Figures: map[string]float64{"restart/storm_recovery_seconds": 0.3, "api.p99.max": 0.5}}
	assert.Equal(t, 0.3, tol.For(stormRecovery), "by SLO name")
	assert.Equal(t, 0.5, tol.For("api.p99.max"))
	assert.Equal(t, 0.2, tol.For("lost-dsns.lost_dsns"))
	assert.Equal(t, DefaultToleranceFraction, Tolerance{}.For("x"))
}

func TestDirectionFor(t *testing.T) {
	for _, tc := range []struct {
		name, unit string
		explicit   Direction
		want       Direction
	}{
		{"p99", "ms", "", LowerIsBetter},
		{"peak", "bytes", "", LowerIsBetter},
		{"cpu", "cores", "", LowerIsBetter},
		{"throughput", "1/s", "", HigherIsBetter},
		{"puts", "ops/s", "", HigherIsBetter},
		{"availability", "%", "", HigherIsBetter},
		{"errors", "1/s", "", LowerIsBetter},
		{"error_rate", "%", "", LowerIsBetter},
		{"admission_rejections", "", "", LowerIsBetter},
		{"resyncs", "", "", Neutral},
		{"resyncs", "", LowerIsBetter, LowerIsBetter},
		{"p99", "ms", HigherIsBetter, HigherIsBetter},
	} {
		assert.Equal(t, tc.want, DirectionFor(tc.name, tc.unit, tc.explicit), "%s [%s]", tc.name, tc.unit)
	}
}

func TestFormatNumber(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{
		{0, "0"}, {1, "1"}, {1000, "1000"}, {12345, "12,345"}, {-1234567, "-1,234,567"}, {1234.6, "1235"},
		{123.45, "123.5"}, {12.345, "12.35"}, {1.2345, "1.234"}, {0.012345, "0.0123"}, {1e-15, "1e-15"},
		{math.NaN(), "NaN"}, {math.Inf(1), "∞"}, {-0.0001, "-0.0001"},
	} {
		assert.Equal(t, tc.want, FormatNumber(tc.v), "%v", tc.v)
	}
	assert.Equal(t, "1.5 GiB", FormatValue(1.5*(1<<30), UnitBytes))
	assert.Equal(t, "512 B", FormatValue(512, UnitBytes))
	assert.Equal(t, "99.9%", FormatValue(99.9, UnitPercent))
	assert.Equal(t, "200/s", FormatValue(200, UnitPerSecond))
	assert.Equal(t, "3 dsns", FormatValue(3, "dsns"))
	assert.Equal(t, "850 ms", FormatMillis(850))
	assert.Equal(t, "4.21 s", FormatMillis(4210))
	assert.Equal(t, "2m5s", FormatMillis(125_000))
}

func TestFormatObservedNeverReadsAsTheThreshold(t *testing.T) {
	assert.Equal(t, "99.99999999112976%", FormatObserved(99.99999999112976, 100, UnitPercent), "rounds to 100% but fails >= 100%")
	assert.Equal(t, "100%", FormatObserved(100, 100, UnitPercent))
	assert.Equal(t, "99.5%", FormatObserved(99.5, 100, UnitPercent), "already distinct from the threshold")
	assert.Equal(t, "1.0000001 s", FormatObserved(1.0000001, 1, "s"))
}
