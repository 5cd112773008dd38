package sweeps

import (
	"bytes"
	"context"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/internal/manualclock"
	"github.com/dsnscale/dsnscale/reports"
	"github.com/dsnscale/dsnscale/reports/capacity"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// fakeRuns stands in for `dsnscale run`: its p99 grows as 0.0005·N (crossing the 1 s SLO at
// 2000 DSNs), spread by ±10% over the repeats; the control plane's CPU grows linearly up to
// 1000 DSNs and quadratically after; DSNs are lost from 6400 up. Runs at breakAt break.
type fakeRuns struct {
	mu      sync.Mutex
	calls   []map[string]string
	breakAt string
	// onCall runs at each call, before it returns (to interrupt, say).
	onCall func(n int)
	clock  *manualclock.Clock
}

func (f *fakeRuns) RunPoint(ctx context.Context, scenario string, set map[string]string, dir string) Outcome {
	f.mu.Lock()
	f.calls = append(f.calls, set)
	n := len(f.calls)
	f.mu.Unlock()
	f.clock.Advance(90 * time.Second)
	if f.onCall != nil {
		f.onCall(n)
	}
	if ctx.Err() != nil {
		return Outcome{Exit: ExitBroken, Err: "interrupted", Run: &reports.Run{ID: "aborted", Result: reports.ResultAborted}}
	}
	if set["dsns"] == f.breakAt {
		return Outcome{Exit: ExitBroken, Err: "control plane did not start"}
	}
	size, _ := strconv.ParseFloat(set["dsns"], 64)
	spread := []float64{0.9, 1.1, 1}[n%3]
	p99 := 0.0005 * size * spread
	cpu := 0.01 * size
	if size > 1000 {
		cpu = 0.01 * 1000 * math.Pow(size/1000, 2)
	}
	lost := 0.0
	if size >= 6400 {
		lost = 3
	}
	start := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	run := &reports.Run{
		ID: "run-" + strconv.Itoa(n), Start: start, End: start.Add(2 * time.Minute), Result: reports.ResultPass,
		Environment: reports.Environment{Extra: map[string]string{"fleet.size": set["dsns"]}},
		SLOs: []reports.Verdict{
			{Name: "storm/api_latency_p99_seconds <= 1s", Measurement: "storm/api-latency.api_latency_p99_seconds", Op: reports.OpLE, Threshold: 1, Unit: "s", Observed: reports.Float(p99), Pass: p99 <= 1},
			{Name: "lost_dsns == 0", Measurement: "lost-dsns.lost_dsns", Op: reports.OpEQ, Observed: reports.Float(lost), Pass: lost == 0},
		},
		Components: []reports.Component{{Name: reports.ComponentControlPlane, CPUSeconds: cpu, PeakRSSBytes: int64(50e6 + 40e3*size)}},
	}
	exit := ExitPass
	for _, v := range run.SLOs {
		if !v.Pass {
			run.Result, exit = reports.ResultFail, ExitFail
		}
	}
	return Outcome{Exit: exit, Run: run}
}

func newClock() *manualclock.Clock {
	return manualclock.New(time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC))
}

func mustPlan(t *testing.T, src string) *Plan {
	t.Helper()
	sw, err := Parse("test.yaml", []byte(src), "")
	require.NoError(t, err)
	plan, err := Check(sw)
	require.NoError(t, err)
	return plan
}

const gridSweep = `apiVersion: dsnscale/v1
kind: Sweep
metadata: {name: grid, description: a test grid}
scenario: storm-restart
set: {rate: 20/s}
axes:
  dsns: [250, 500, 1000, 1500, 2500]
repeat: 3
`

func TestGridSweepRecordsEveryPointAndAnswers(t *testing.T) {
	clock := newClock()
	fake := &fakeRuns{clock: clock, breakAt: "1500"}
	dir := filepath.Join(t.TempDir(), "grid")
	var progress bytes.Buffer
	r, err := Run(context.Background(), mustPlan(t, gridSweep), Options{Dir: dir, Points: fake, Now: clock.Now, Progress: &progress, Seed: 1})
	require.NoError(t, err)
	assert.Equal(t, StatusComplete, r.Status)
	require.Len(t, r.Points, 15)
	require.Len(t, fake.calls, 15, "a broken point does not stop the sweep")
	assert.Equal(t, "20/s", fake.calls[0]["rate"])
	assert.Equal(t, "250", fake.calls[0]["dsns"])
	assert.Equal(t, filepath.Join("points", "250-1"), r.Points[0].Dir)
	assert.Equal(t, PointBroken, r.Points[9].Status)
	assert.Equal(t, 9, r.FirstFailing, "the first broken run at 1500")
	assert.Equal(t, PointFail, r.Points[12].Status, "2500 fails the latency SLO")
	assert.Equal(t, ExitBroken, r.ExitCode())
	assert.Contains(t, progress.String(), "point 1 of 15: dsns=250, run 1 of 3")
	assert.Contains(t, progress.String(), "point 15 of 15")
	assert.Contains(t, progress.String(), "left)")

	require.Len(t, r.Analysis, 1)
	a := r.Analysis[0]
	require.NotNil(t, a.Capacity, a.CapacityError)
	assert.Equal(t, "storm/api-latency.api_latency_p99_seconds", a.Capacity.Limiting)
	assert.InEpsilon(t, 2000, a.Capacity.N, 0.1)
	assert.Less(t, a.Capacity.Low, a.Capacity.High)
	names := map[string]Model{}
	for _, m := range a.Models {
		names[m.Name] = m
	}
	for _, n := range []string{"storm/api-latency.api_latency_p99_seconds", "lost-dsns.lost_dsns", FigureCPUSeconds, FigurePeakRSS, FigureCPUPerDSNMin, FigureRSSBytesPerDSN} {
		assert.Contains(t, names, n)
	}
	cpu := names[FigureCPUSeconds]
	require.NotNil(t, cpu.Knee)
	assert.True(t, cpu.Knee.Found)
	assert.Equal(t, 1000.0, cpu.Knee.N)
	assert.Len(t, cpu.Observations, 12, "the broken runs are left out")
	assert.InDelta(t, 40e3/1+50e6/250, names[FigureRSSBytesPerDSN].Medians[0].Y, 1)
	assert.InDelta(t, 0.01/2, names[FigureCPUPerDSNMin].Medians[0].Y, 1e-9, "2.5 CPU-s over 250 DSNs and 2 minutes")

	back, err := LoadResult(dir)
	require.NoError(t, err)
	assert.Equal(t, r.Points[3].Figures, back.Points[3].Figures)
	for _, f := range Files {
		assert.FileExists(t, filepath.Join(dir, f))
	}
	for _, f := range []string{SummaryFile, JUnitFile, ReportFile} {
		golden(t, dir, f)
	}
}

// golden compares a rendered file with testdata/golden/<name>; -update rewrites it.
func golden(t *testing.T, dir, name string) {
	t.Helper()
	got, err := os.ReadFile(filepath.Join(dir, name))
	require.NoError(t, err)
	path := filepath.Join("testdata", "golden", name)
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run with -update to create it")
	assert.Equal(t, string(want), string(got), "%s differs from its golden file (go test -run TestGridSweep ./sweeps -update)", name)
}

func TestInterruptAbortsThePointAndStillWritesTheReport(t *testing.T) {
	clock := newClock()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fake := &fakeRuns{clock: clock, onCall: func(n int) {
		if n == 4 {
			cancel()
		}
	}}
	dir := filepath.Join(t.TempDir(), "s")
	r, err := Run(ctx, mustPlan(t, gridSweep), Options{Dir: dir, Points: fake, Now: clock.Now})
	require.NoError(t, err)
	assert.Equal(t, StatusInterrupted, r.Status)
	require.Len(t, r.Points, 4, "no point starts after the interrupt")
	assert.Equal(t, PointAborted, r.Points[3].Status)
	assert.Equal(t, ExitBroken, r.ExitCode())
	for _, f := range Files {
		assert.FileExists(t, filepath.Join(dir, f))
	}
	back, err := LoadResult(dir)
	require.NoError(t, err)
	assert.Equal(t, StatusInterrupted, back.Status)
}

func TestBudgetStopsBeforeAPointThatWouldNotFit(t *testing.T) {
	clock := newClock()
	fake := &fakeRuns{clock: clock}
	plan := mustPlan(t, gridSweep+"budget: 5m\n")
	r, err := Run(context.Background(), plan, Options{Dir: t.TempDir(), Points: fake, Now: clock.Now})
	require.NoError(t, err)
	// Each point takes 90 s on the fake clock: after three, a fourth would end past 5 min.
	assert.Equal(t, StatusBudget, r.Status)
	assert.Len(t, r.Points, 3)
}

func TestRunRefusesAFullDirectory(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "x"), nil, 0o644))
	_, err := Run(context.Background(), mustPlan(t, gridSweep), Options{Dir: dir, Points: &fakeRuns{clock: newClock()}})
	assert.ErrorIs(t, err, ErrDirNotEmpty)
}

func TestUntilFailFindsTheLimit(t *testing.T) {
	clock := newClock()
	fake := &fakeRuns{clock: clock}
	plan := mustPlan(t, `apiVersion: dsnscale/v1
kind: Sweep
metadata: {name: limit}
scenario: storm-restart
axes: {dsns: [250]}
untilFail: {max: "20000", resolution: 10%}
`)
	require.NotNil(t, plan.Search)
	r, err := Run(context.Background(), plan, Options{Dir: t.TempDir(), Points: fake, Now: clock.Now})
	require.NoError(t, err)
	require.NotNil(t, r.Search)
	s := r.Search
	assert.True(t, s.Resolved, s.Reason)
	// p99 = 0.0005·N·spread with spread 0.9..1.1 over calls: the limit is near 2000.
	assert.Greater(t, s.FirstFail, 1800.0)
	assert.Less(t, s.LastPass, 2300.0)
	assert.LessOrEqual(t, s.FirstFail, s.LastPass*1.1)
	assert.Equal(t, len(s.Path), len(r.Points), "one run per probe")
	assert.Equal(t, "250", s.Path[0].Value)
	assert.Equal(t, "500", s.Path[1].Value)
	assert.Equal(t, ExitPass, r.ExitCode())
	var summary bytes.Buffer
	require.NoError(t, RenderSummary(&summary, r))
	assert.Contains(t, summary.String(), "## Limit search")
	assert.Contains(t, summary.String(), "| 1 | grow | 250 | pass |")
	_ = capacity.Below
}

func TestTwoAxesGiveOneAnalysisPerValueOfTheSecond(t *testing.T) {
	clock := newClock()
	fake := &fakeRuns{clock: clock}
	plan := mustPlan(t, head("scenario: storm-restart\naxes:\n  dsns: [250, 500, 1000, 2500]\n  rate: [10/s, 20/s]\n"))
	r, err := Run(context.Background(), plan, Options{Dir: t.TempDir(), Points: fake, Now: clock.Now})
	require.NoError(t, err)
	require.Len(t, r.Points, 8)
	assert.Equal(t, "10/s", fake.calls[0]["rate"])
	assert.Equal(t, "20/s", fake.calls[4]["rate"])
	require.Len(t, r.Analysis, 2)
	assert.Equal(t, "10/s", r.Analysis[0].Series)
	assert.Equal(t, "20/s", r.Analysis[1].Series)
	for _, a := range r.Analysis {
		require.NotNil(t, a.Capacity, a.CapacityError)
		assert.Equal(t, 4, len(a.Models[0].Observations), "each curve has its own points")
		assert.Contains(t, r.CapacityLine(a), "rate="+a.Series+": ")
	}
	var b bytes.Buffer
	require.NoError(t, RenderHTML(&b, r))
	assert.Contains(t, b.String(), "Figures against dsns at rate=20/s")
}
