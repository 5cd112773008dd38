package reports

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestJudge(t *testing.T) {
	for _, tc := range []struct {
		name       string
		base, head float64
		better     Direction
		want       Change
		ratio      float64 // NaN: no ratio
	}{
		{"same", 100, 100, LowerIsBetter, Unchanged, 1},
		{"within tolerance up", 100, 110, LowerIsBetter, Unchanged, 1.1},
		{"within tolerance down", 100, 90, HigherIsBetter, Unchanged, 0.9},
		{"latency up", 100, 111, LowerIsBetter, Regressed, 1.11},
		{"latency down", 100, 80, LowerIsBetter, Improved, 0.8},
		{"throughput down", 100, 85, HigherIsBetter, Regressed, 0.85},
		{"throughput up", 100, 130, HigherIsBetter, Improved, 1.3},
		{"neutral moved", 100, 200, Neutral, Changed, 2},
		{"from zero errors", 0, 3, LowerIsBetter, Regressed, math.NaN()},
		{"zero both", 0, 0, LowerIsBetter, Unchanged, 1},
		{"from zero throughput", 0, 3, HigherIsBetter, Improved, math.NaN()},
		{"to zero errors", 5, 0, LowerIsBetter, Improved, 0},
		{"negative base worse", -10, -5, HigherIsBetter, Improved, 0.5},
		{"negative base lower", -10, -20, HigherIsBetter, Regressed, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ratio, ch := judge(tc.base, tc.head, tc.better, 0.1)
			assert.Equal(t, tc.want, ch)
			if math.IsNaN(tc.ratio) {
				assert.Nil(t, ratio)
			} else {
				require.NotNil(t, ratio)
				assert.InDelta(t, tc.ratio, *ratio, 1e-9)
			}
		})
	}
}

func TestCompareFixtures(t *testing.T) {
	base, head := generateRun(false), generateRun(true)
	c := Compare(base, head, DefaultTolerance())
	assert.True(t, c.Regressed())
	byName := map[string]FigureDelta{}
	for _, f := range c.Figures {
		byName[f.Name] = f
	}
	assert.Equal(t, Regressed, byName["control-plane.peak_rss"].Change)
	assert.Equal(t, Regressed, byName["api-latency.p99"].Change)
	assert.Equal(t, Unchanged, byName["fleet.peak_rss"].Change)
	assert.Equal(t, HigherIsBetter, byName["api-latency.throughput"].Better, "the value's name decides, not the measurement's")
	assert.Equal(t, Neutral, byName["restart-storm.resyncs"].Better, "explicit direction wins")

	slos := map[string]SLOChange{}
	for _, s := range c.SLOs {
		slos[s.Name] = s
	}
	assert.Equal(t, Regressed, slos["API p99 <= 250ms"].Change)
	assert.Equal(t, Unchanged, slos["storm reconnect p99 < 60s"].Change)

	// The other way round, the same figures are improvements.
	back := Compare(head, base, DefaultTolerance())
	assert.False(t, back.Regressed(), "%+v", back.Figures)
	self := Compare(head, head, DefaultTolerance())
	assert.False(t, self.Regressed())
	assert.Empty(t, self.Warnings, "same run, same machine, same parameters")
	for _, f := range self.Figures {
		assert.Equal(t, Unchanged, f.Change, f.Name)
	}
	assert.NotEmpty(t, c.Overlays)
}

func TestCompareTolerance(t *testing.T) {
	base, head := generateRun(false), generateRun(true)
	loose := Compare(base, head, Tolerance{Default: 0.5})
	for _, f := range loose.Figures {
		if f.Ratio != nil {
			assert.NotEqual(t, Regressed, f.Change, "%s moved %v, within 50%%", f.Name, *f.Ratio)
		}
	}
	perFigure := Compare(base, head, Tolerance{Default: 0.5, Figures: map[string]float64{"control-plane.peak_rss": 0.05}})
	for _, f := range perFigure.Figures {
		if f.Name == "control-plane.peak_rss" {
			assert.Equal(t, Regressed, f.Change)
			assert.Equal(t, 0.05, f.Tolerance)
		}
	}
	zero := Compare(base, head, Tolerance{})
	assert.Equal(t, DefaultToleranceFraction, zero.Figures[0].Tolerance, "zero value means the default")

	bad := Compare(base, head, Tolerance{Default: -1})
	assert.Equal(t, DefaultTolerance(), bad.Tolerance)
	assert.Contains(t, bad.Warnings[0], "invalid tolerance")
}

func TestToleranceValidate(t *testing.T) {
	require.NoError(t, DefaultTolerance().Validate())
	require.NoError(t, Tolerance{}.Validate())
	for _, bad := range []Tolerance{{Default: -0.1}, {Default: math.NaN()}, {Default: 101}, {Default: 0.1, Figures: map[string]float64{"x": 0}}} {
		err := bad.Validate()
		require.Error(t, err, "%+v", bad)
		assert.ErrorIs(t, err, ErrTolerance)
	}
}

func TestCompareSLOsAndWarnings(t *testing.T) {
	base, head := smallRun(), smallRun()
	head.ID = "r2"
	head.Params = map[string]string{"dsns": "2000"}
	head.Environment.NumCPU = 8
	head.Scenario.Name = "other"
	head.SLOs = append(head.SLOs,
		Verdict{Name: "new-failing", Measurement: "m.v", Op: OpLT, Threshold: 1, Observed: Float(2)},
		Verdict{Name: "new-passing", Measurement: "m.v", Op: OpLT, Threshold: 3, Observed: Float(2), Pass: true})
	base.SLOs = append(base.SLOs, Verdict{Name: "gone", Measurement: "m.v", Op: OpLT, Threshold: 1, Observed: nil})
	c := Compare(base, head, DefaultTolerance())
	got := map[string]Change{}
	for _, s := range c.SLOs {
		got[s.Name] = s.Change
	}
	assert.Equal(t, map[string]Change{"p99": Unchanged, "gone": Removed, "new-failing": Regressed, "new-passing": Added}, got)
	assert.Equal(t, 1, c.Regressions())
	assert.Contains(t, c.Warnings, `the runs are of different scenarios ("smoke" and "other")`)
	assert.Contains(t, c.Warnings, `parameter dsns is set only in head ("2000")`)
	assert.Contains(t, c.Warnings, "the runs had different CPU counts (2 and 8)")
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
