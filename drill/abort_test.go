package drill

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/reports"
	"github.com/dsnscale/dsnscale/scenarios"
	"github.com/dsnscale/dsnscale/scenarios/measure"
	"github.com/dsnscale/dsnscale/scenarios/runner"
)

func share(v float64) *scenarios.Share { s := scenarios.Share(v); return &s }

func serving(at time.Time, n int) runner.Sample {
	return runner.Sample{At: at, Size: 10, Census: measure.Counts{DataPlane: n}}
}

func TestWatcherServing(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w := NewWatcher([]Condition{{Figure: FigureServing, Below: share(0.9), For: 2 * time.Second}})
	var breaches []time.Time
	w.Breach = func(_ int, _ Condition, at time.Time, _ float64) { breaches = append(breaches, at) }
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

	// A fleet still booting does not trip it: the condition is armed once the fleet serves.
	for s := range 5 {
		require.Nil(t, w.Observe(serving(at(s), 0)), "not armed before the fleet first serves")
	}
	require.Nil(t, w.Observe(serving(at(5), 10)))
	// A dip shorter than its time resets.
	require.Nil(t, w.Observe(serving(at(6), 8)))
	require.Nil(t, w.Observe(serving(at(7), 9)))
	require.Nil(t, w.Observe(serving(at(8), 8)))
	require.Nil(t, w.Observe(serving(at(9), 8)))
	trip := w.Observe(serving(at(10), 7))
	require.NotNil(t, trip)
	assert.Equal(t, at(8), trip.Since)
	assert.Equal(t, at(10), trip.At)
	assert.InDelta(t, 0.7, trip.Value, 1e-9)
	assert.Equal(t, []time.Time{at(6), at(8)}, breaches)
	assert.Contains(t, trip.Error(), "abortWhen[0] serving < 90% for 2s: serving was 70% at 2026-01-01T00:00:10Z")
	assert.Nil(t, w.Observe(serving(at(11), 0)), "a watcher trips once")
}

func TestWatcherAPIErrors(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w := NewWatcher([]Condition{{Figure: FigureAPIErrorRate, Above: share(0.05)}})
	require.Nil(t, w.Observe(runner.Sample{At: t0, APICalls: 100, APIFailed: 5}), "5% is not above 5%")
	require.Nil(t, w.Observe(runner.Sample{At: t0.Add(time.Second)}), "no calls: nothing to judge")
	trip := w.Observe(runner.Sample{At: t0.Add(2 * time.Second), APICalls: 10, APIFailed: 1})
	require.NotNil(t, trip, "for 0 trips at the first sample beyond")
	assert.InDelta(t, 0.1, trip.Value, 1e-9)
}

func TestAbortWhenInvalid(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "d.yaml")
	require.NoError(t, os.WriteFile(p, []byte(`apiVersion: dsnscale/v1
kind: Drill
metadata: {name: d}
scenario: smoke
limits: {maxDSNs: 5, maxShare: 25%, maxFaultDuration: 2m, allowKinds: [dsn-restart]}
abortWhen:
  - {figure: errors, above: 5%}
  - {figure: serving, above: 5%, below: 90%}
  - {figure: serving, below: 90%, for: -1s}
`), 0o600))
	_, err := Load(p)
	require.ErrorIs(t, err, ErrInvalid)
	for _, want := range []string{
		`abortWhen[0].figure: must be one of apiErrorRate or serving, got "errors"`,
		"abortWhen[1]: needs exactly one of above or below",
		"abortWhen[2].for: must not be negative",
	} {
		assert.Contains(t, err.Error(), want)
	}
}

// The library drill loads, its scenario is the library's, and it keeps within its own limits.
func TestLibraryDrill(t *testing.T) {
	assert.Contains(t, Library(), "staging-basic")
	d, err := Load("staging-basic")
	require.NoError(t, err)
	assert.Len(t, d.AbortWhen, 2)
	s, err := d.LoadScenario()
	require.NoError(t, err)
	assert.Equal(t, 20, s.Fleet.Size)
	require.NoError(t, d.Limits.CheckLimits(s))
	_, err = Load("no-such-drill")
	require.ErrorIs(t, err, ErrInvalid)
	assert.Contains(t, err.Error(), "neither a library drill (staging-basic")
}

// fakeConvergence answers the restore check's reads from a list, one per call, the last
// repeated.
type fakeConvergence struct{ answers []model.Convergence }

func (f *fakeConvergence) Revision(context.Context) (uint64, error) { return 7, nil }
func (f *fakeConvergence) Convergence(_ context.Context, rev uint64) (model.Convergence, error) {
	c := f.answers[0]
	if len(f.answers) > 1 {
		f.answers = f.answers[1:]
	}
	c.Revision = rev
	return c, nil
}

// stepClock is a clock whose After fires at once and moves it on.
type stepClock struct{ now time.Time }

func (c *stepClock) Now() time.Time { return c.now }
func (c *stepClock) After(d time.Duration) <-chan time.Time {
	c.now = c.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

func TestCheckConvergence(t *testing.T) {
	before := model.Convergence{Total: 3, AtOrPast: 2, Behind: 1, BehindDSNs: []string{"old"}}
	api := &fakeConvergence{answers: []model.Convergence{before}}
	base, err := TakeBaseline(context.Background(), api)
	require.NoError(t, err)
	assert.Equal(t, "revision 7: 2 of 3 DSNs at or past it", base.String())

	clock := &stepClock{now: time.Unix(0, 0)}
	// Back to the baseline after a few reads: restored.
	api.answers = []model.Convergence{
		{Total: 3, AtOrPast: 1, Behind: 2, BehindDSNs: []string{"a", "old"}},
		{Total: 3, AtOrPast: 2, Behind: 1, BehindDSNs: []string{"old"}},
	}
	assert.Empty(t, CheckConvergence(context.Background(), api, base, time.Minute, clock))

	// Never back: what is left is named.
	api.answers = []model.Convergence{{Total: 3, AtOrPast: 1, Behind: 2, BehindDSNs: []string{"a", "old"}}}
	start := clock.Now()
	left := CheckConvergence(context.Background(), api, base, time.Minute, clock)
	assert.Equal(t, []string{
		"1 DSNs at or past revision 7, 2 before the drill",
		"behind revision 7 and not before the drill: a",
	}, left)
	assert.False(t, clock.Now().Before(start.Add(time.Minute)), "it waited its timeout")
}

func TestUnrecovered(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	run := &reports.Run{Faults: []reports.Fault{
		{Kind: "dsn-restart", Target: "4 DSNs", Step: "restart", Start: t0, End: t0.Add(time.Second)},
		{Kind: "dsn-crash", Target: "2 DSNs", Step: "crash", Start: t0, Error: "recover: start dsn-0001: timeout"},
		{Kind: "dsn-crash", Target: "2 DSNs", Step: "crash", Error: "inject: no DSN matched"},
	}}
	assert.Equal(t, []string{"fault dsn-crash on 2 DSNs (step crash) injected at 2026-01-01T00:00:00Z: never recovered: recover: start dsn-0001: timeout"},
		Unrecovered(run))
}
