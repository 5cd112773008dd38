// Package tsdbtest is the conformance suite every tsdb.Storage implementation passes.
//
// Remote servers make writes visible to queries after a short delay, so the suite calls
// tsdb.Sync after writing and retries a query until it returns what is expected or Settle
// passes; the embedded engine answers on the first try. Every test tags its series with a random "run" label, so the suite can run against
// a shared server again and again.
package tsdbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/promutils"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/tsdb"
)

// Opener opens the storage under test. The suite calls it again with the same dir after closing
// the first storage, and expects the data to be there (for a remote server dir is ignored).
type Opener func(t *testing.T, dir string) tsdb.Storage

// Settle is how long the suite waits for written samples to become visible.
var Settle = 20 * time.Second

// Run runs the suite.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"AppendAndSelectByLabels", testSelectByLabels},
		{"TimeRangeIsInclusive", testTimeRange},
		{"OutOfOrderSamples", testOutOfOrder},
		{"KeptAcrossRestart", testRestart},
		{"Series", testSeries},
		{"Step", testStep},
		{"Rollback", testRollback},
		{"ConcurrentAppenders", testConcurrent},
		{"InvalidInput", testInvalid},
		{"Closed", testClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open) })
	}
}

// fixture is one test's run label and time base.
type fixture struct {
	run  string
	base time.Time
}

func newFixture(t *testing.T) fixture {
	b := make([]byte, 6)
	_, err := rand.Read(b)
	require.NoError(t, err)
	// Two hours back: inside every server's retention, clear of VictoriaMetrics' latency offset.
	return fixture{run: hex.EncodeToString(b), base: time.Now().Add(-2 * time.Hour).Truncate(time.Minute).UTC()}
}

func (f fixture) labels(metric string, pairs ...string) *promutils.Labels {
	return tsdb.Labels(metric, append([]string{"run", f.run}, pairs...)...)
}

func (f fixture) at(d time.Duration) time.Time { return f.base.Add(d) }

func (f fixture) matchers(ms ...tsdb.Matcher) []tsdb.Matcher {
	return append([]tsdb.Matcher{tsdb.Equal("run", f.run)}, ms...)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func openClosed(t *testing.T, open Opener, dir string) tsdb.Storage {
	st := open(t, dir)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

type sample struct {
	ms int64
	v  float64
}

// appendAll appends samples of one series and commits.
func appendAll(t *testing.T, st tsdb.Storage, ls *promutils.Labels, samples ...sample) {
	t.Helper()
	app := st.Appender()
	for _, s := range samples {
		require.NoError(t, app.Append(ls, time.UnixMilli(s.ms), s.v))
	}
	require.NoError(t, app.Commit(ctx(t)))
	require.NoError(t, tsdb.Sync(ctx(t), st))
}

// flat renders series comparably: label set string -> samples.
func flat(ss []tsdb.Series) map[string][]sample {
	out := map[string][]sample{}
	for _, s := range ss {
		var smp []sample
		for _, x := range s.Samples {
			smp = append(smp, sample{x.Time.UnixMilli(), x.Value})
		}
		out[s.Labels.String()] = smp
	}
	return out
}

// eventually runs q until it returns want or Settle passes, then asserts.
func eventually(t *testing.T, st tsdb.Storage, q tsdb.Query, want map[string][]sample) {
	t.Helper()
	deadline := time.Now().Add(Settle)
	var got map[string][]sample
	for {
		ss, err := st.Select(ctx(t), q)
		require.NoError(t, err)
		got = flat(ss)
		if assert.ObjectsAreEqual(want, got) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	require.Equal(t, want, got, "query %v", q)
}

func series(f fixture, n int, step time.Duration, val func(i int) float64) []sample {
	out := make([]sample, n)
	for i := range out {
		out[i] = sample{f.at(time.Duration(i) * step).UnixMilli(), val(i)}
	}
	return out
}

func testSelectByLabels(t *testing.T, open Opener) {
	f := newFixture(t)
	st := openClosed(t, open, t.TempDir())
	a := f.labels("dsn_cpu_seconds", "dsn", "a", "site", "s1")
	b := f.labels("dsn_cpu_seconds", "dsn", "b", "site", "s2")
	c := f.labels("dsn_flows_active", "dsn", "a")
	sa := series(f, 10, 10*time.Second, func(i int) float64 { return float64(i) })
	sb := series(f, 10, 10*time.Second, func(i int) float64 { return float64(100 + i) })
	sc := series(f, 5, 20*time.Second, func(i int) float64 { return 0.5 * float64(i) })
	appendAll(t, st, a, sa...)
	appendAll(t, st, b, sb...)
	appendAll(t, st, c, sc...)

	from, to := f.at(-time.Minute), f.at(10*time.Minute)
	tests := []struct {
		name string
		ms   []tsdb.Matcher
		want map[string][]sample
	}{
		{"metric", []tsdb.Matcher{tsdb.MetricName("dsn_cpu_seconds")}, map[string][]sample{a.String(): sa, b.String(): sb}},
		{"equal", []tsdb.Matcher{tsdb.Equal("dsn", "a")}, map[string][]sample{a.String(): sa, c.String(): sc}},
		{"not equal", []tsdb.Matcher{tsdb.MetricName("dsn_cpu_seconds"), tsdb.NotEqual("site", "s1")}, map[string][]sample{b.String(): sb}},
		{"regexp", []tsdb.Matcher{tsdb.Regexp("site", "s[12]")}, map[string][]sample{a.String(): sa, b.String(): sb}},
		{"regexp is anchored", []tsdb.Matcher{tsdb.Regexp("site", "s")}, map[string][]sample{}},
		{"not regexp", []tsdb.Matcher{tsdb.Regexp(tsdb.MetricNameLabel, "dsn_.*"), tsdb.NotRegexp("dsn", "b|c")}, map[string][]sample{a.String(): sa, c.String(): sc}},
		{"absent label", []tsdb.Matcher{tsdb.Regexp(tsdb.MetricNameLabel, "dsn_.*"), tsdb.Equal("site", "")}, map[string][]sample{c.String(): sc}},
		{"no match", []tsdb.Matcher{tsdb.MetricName("dsn_missing_total")}, map[string][]sample{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eventually(t, st, tsdb.Query{Matchers: f.matchers(tt.ms...), From: from, To: to}, tt.want)
		})
	}
}

func testTimeRange(t *testing.T, open Opener) {
	f := newFixture(t)
	st := openClosed(t, open, t.TempDir())
	ls := f.labels("dsn_rx_bytes", "dsn", "a")
	all := series(f, 10, 10*time.Second, func(i int) float64 { return float64(i * i) })
	appendAll(t, st, ls, all...)
	q := tsdb.Query{Matchers: f.matchers(tsdb.MetricName("dsn_rx_bytes")), From: f.at(20 * time.Second), To: f.at(50 * time.Second)}
	eventually(t, st, q, map[string][]sample{ls.String(): all[2:6]})
	q.From, q.To = f.at(21*time.Second), f.at(49*time.Second)
	eventually(t, st, q, map[string][]sample{ls.String(): all[3:5]})
	q.From, q.To = f.at(time.Hour), f.at(2*time.Hour)
	eventually(t, st, q, map[string][]sample{})
	// Millisecond precision is kept.
	ms := f.labels("dsn_rx_bytes", "dsn", "ms")
	appendAll(t, st, ms, sample{f.at(time.Second + 7*time.Millisecond).UnixMilli(), 1.25})
	q = tsdb.Query{Matchers: f.matchers(tsdb.Equal("dsn", "ms")), From: f.at(time.Second + 7*time.Millisecond), To: f.at(time.Second + 7*time.Millisecond)}
	eventually(t, st, q, map[string][]sample{ms.String(): {{f.at(time.Second + 7*time.Millisecond).UnixMilli(), 1.25}}})
}

func testOutOfOrder(t *testing.T, open Opener) {
	f := newFixture(t)
	st := openClosed(t, open, t.TempDir())
	ls := f.labels("dsn_acks_total", "dsn", "a")
	s := series(f, 6, 10*time.Second, func(i int) float64 { return float64(i) })
	appendAll(t, st, ls, s[4], s[5])
	appendAll(t, st, ls, s[1], s[0], s[3])
	appendAll(t, st, ls, s[2])
	q := tsdb.Query{Matchers: f.matchers(tsdb.MetricName("dsn_acks_total")), From: f.at(0), To: f.at(time.Minute)}
	eventually(t, st, q, map[string][]sample{ls.String(): s})
}

func testRestart(t *testing.T, open Opener) {
	f := newFixture(t)
	dir := t.TempDir()
	st := open(t, dir)
	ls := f.labels("dsn_restarts_total", "dsn", "a")
	s := series(f, 20, 5*time.Second, func(i int) float64 { return float64(i) + 0.5 })
	appendAll(t, st, ls, s...)
	q := tsdb.Query{Matchers: f.matchers(tsdb.MetricName("dsn_restarts_total")), From: f.at(0), To: f.at(time.Hour)}
	eventually(t, st, q, map[string][]sample{ls.String(): s})
	require.NoError(t, st.Close())

	st = openClosed(t, open, dir)
	eventually(t, st, q, map[string][]sample{ls.String(): s})
	// And the reopened storage takes new samples.
	more := sample{f.at(200 * time.Second).UnixMilli(), 99}
	appendAll(t, st, ls, more)
	eventually(t, st, q, map[string][]sample{ls.String(): append(s, more)})
}

func testSeries(t *testing.T, open Opener) {
	f := newFixture(t)
	st := openClosed(t, open, t.TempDir())
	a := f.labels("dsn_mem_bytes", "dsn", "a", "rack", "r1")
	b := f.labels("dsn_mem_bytes", "dsn", "b", "rack", "r2")
	c := f.labels("dsn_disk_bytes", "dsn", "a")
	for _, ls := range []*promutils.Labels{a, b, c} {
		appendAll(t, st, ls, sample{f.at(time.Minute).UnixMilli(), 1})
	}
	check := func(want []*promutils.Labels, ms ...tsdb.Matcher) {
		t.Helper()
		var wantS, got []string
		for _, l := range want {
			wantS = append(wantS, l.String())
		}
		deadline := time.Now().Add(Settle)
		for {
			ls, err := st.Series(ctx(t), f.at(0), f.at(2*time.Minute), f.matchers(ms...)...)
			require.NoError(t, err)
			got = nil
			for _, l := range ls {
				got = append(got, l.String())
			}
			if assert.ObjectsAreEqual(wantS, got) || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		require.Equal(t, wantS, got, "series %v", ms)
	}
	// Sorted by label set: dsn_disk_bytes before dsn_mem_bytes.
	check([]*promutils.Labels{c, a}, tsdb.Equal("dsn", "a"))
	check([]*promutils.Labels{a, b}, tsdb.MetricName("dsn_mem_bytes"))
	check([]*promutils.Labels{b}, tsdb.Regexp("rack", "r2|r9"))
	check(nil, tsdb.MetricName("dsn_none_bytes"))
}

func testStep(t *testing.T, open Opener) {
	f := newFixture(t)
	st := openClosed(t, open, t.TempDir())
	ls := f.labels("dsn_queue_depth", "dsn", "a")
	// Samples every 10s with value i, except a gap from 40s to 70s.
	var in []sample
	for i := range 10 {
		if i >= 4 && i <= 7 {
			continue
		}
		in = append(in, sample{f.at(time.Duration(i) * 10 * time.Second).UnixMilli(), float64(i)})
	}
	appendAll(t, st, ls, in...)
	q := tsdb.Query{Matchers: f.matchers(tsdb.MetricName("dsn_queue_depth")), From: f.at(0), To: f.at(90 * time.Second), Step: 20 * time.Second}
	// At t the point is the last sample in (t-20s, t]; t = 40s has the 30s sample, 60s none.
	want := []sample{
		{f.at(0).UnixMilli(), 0},
		{f.at(20 * time.Second).UnixMilli(), 2},
		{f.at(40 * time.Second).UnixMilli(), 3},
		{f.at(80 * time.Second).UnixMilli(), 8},
	}
	eventually(t, st, q, map[string][]sample{ls.String(): want})
	// An unaligned start: points at 5s, 35s, 65s (none: the gap) and 95s; 125s is past To.
	q = tsdb.Query{Matchers: q.Matchers, From: f.at(5 * time.Second), To: f.at(100 * time.Second), Step: 30 * time.Second}
	want = []sample{
		{f.at(5 * time.Second).UnixMilli(), 0},
		{f.at(35 * time.Second).UnixMilli(), 3},
		{f.at(95 * time.Second).UnixMilli(), 9},
	}
	eventually(t, st, q, map[string][]sample{ls.String(): want})
}

func testRollback(t *testing.T, open Opener) {
	f := newFixture(t)
	st := openClosed(t, open, t.TempDir())
	gone := f.labels("dsn_rolled_back", "dsn", "a")
	kept := f.labels("dsn_committed_total", "dsn", "a")
	app := st.Appender()
	require.NoError(t, app.Append(gone, f.at(0), 1))
	require.NoError(t, app.Rollback())
	require.ErrorIs(t, app.Commit(ctx(t)), tsdb.ErrClosed, "an appender is finished by Rollback")
	appendAll(t, st, kept, sample{f.at(0).UnixMilli(), 2})
	q := tsdb.Query{Matchers: f.matchers(tsdb.Equal("dsn", "a")), From: f.at(0), To: f.at(time.Minute)}
	eventually(t, st, q, map[string][]sample{kept.String(): {{f.at(0).UnixMilli(), 2}}})
}

func testConcurrent(t *testing.T, open Opener) {
	f := newFixture(t)
	st := openClosed(t, open, t.TempDir())
	const writers, perWriter = 4, 50
	want := map[string][]sample{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range writers {
		ls := f.labels("dsn_conc_total", "writer", fmt.Sprint(w))
		s := series(f, perWriter, time.Second, func(i int) float64 { return float64(w*1000 + i) })
		mu.Lock()
		want[ls.String()] = s
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			app := st.Appender()
			for _, x := range s {
				if err := app.Append(ls, time.UnixMilli(x.ms), x.v); err != nil {
					t.Error(err)
					return
				}
			}
			if err := app.Commit(context.Background()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	require.NoError(t, tsdb.Sync(ctx(t), st))
	q := tsdb.Query{Matchers: f.matchers(tsdb.MetricName("dsn_conc_total")), From: f.at(0), To: f.at(time.Hour)}
	eventually(t, st, q, want)
}

func testInvalid(t *testing.T, open Opener) {
	f := newFixture(t)
	st := openClosed(t, open, t.TempDir())
	noName := promutils.NewLabels(1)
	noName.Add("dsn", "a")
	bad := []struct {
		name string
		ls   *promutils.Labels
		t    time.Time
		v    float64
	}{
		{"no metric name", noName, f.at(0), 1},
		{"empty value", f.labels("dsn_x_total", "dsn", ""), f.at(0), 1},
		{"bad label name", f.labels("dsn_x_total", "1dsn", "a"), f.at(0), 1},
		{"reserved label name", f.labels("dsn_x_total", "__dsn", "a"), f.at(0), 1},
		{"bad metric name", f.labels("dsn-x"), f.at(0), 1},
		{"NaN", f.labels("dsn_x_total"), f.at(0), math.NaN()},
		{"infinity", f.labels("dsn_x_total"), f.at(0), math.Inf(1)},
		{"zero time", f.labels("dsn_x_total"), time.Time{}, 1},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			app := st.Appender()
			require.ErrorIs(t, app.Append(tt.ls, tt.t, tt.v), tsdb.ErrInvalid)
			require.NoError(t, app.Rollback())
		})
	}
	queries := []struct {
		name string
		q    tsdb.Query
	}{
		{"no matchers", tsdb.Query{From: f.at(0), To: f.at(time.Minute)}},
		{"only empty-matching matchers", tsdb.Query{Matchers: []tsdb.Matcher{tsdb.Equal("dsn", "")}, From: f.at(0), To: f.at(time.Minute)}},
		{"bad regexp", tsdb.Query{Matchers: []tsdb.Matcher{tsdb.Regexp("dsn", "(")}, From: f.at(0), To: f.at(time.Minute)}},
		{"to before from", tsdb.Query{Matchers: f.matchers(), From: f.at(time.Minute), To: f.at(0)}},
		{"no range", tsdb.Query{Matchers: f.matchers()}},
		{"sub-millisecond step", tsdb.Query{Matchers: f.matchers(), From: f.at(0), To: f.at(time.Minute), Step: time.Microsecond}},
		{"too many steps", tsdb.Query{Matchers: f.matchers(), From: f.at(0), To: f.at(24 * time.Hour), Step: time.Second}},
	}
	for _, tt := range queries {
		t.Run(tt.name, func(t *testing.T) {
			_, err := st.Select(ctx(t), tt.q)
			require.ErrorIs(t, err, tsdb.ErrInvalid)
		})
	}
	_, err := st.Series(ctx(t), f.at(0), f.at(time.Minute))
	require.ErrorIs(t, err, tsdb.ErrInvalid, "series without matchers")
}

func testClosed(t *testing.T, open Opener) {
	f := newFixture(t)
	st := open(t, t.TempDir())
	app := st.Appender()
	require.NoError(t, st.Close())
	require.NoError(t, st.Close(), "closing twice is harmless")
	require.ErrorIs(t, app.Append(f.labels("dsn_x_total"), f.at(0), 1), tsdb.ErrClosed)
	_, err := st.Select(ctx(t), tsdb.Query{Matchers: f.matchers(), From: f.at(0), To: f.at(time.Minute)})
	require.ErrorIs(t, err, tsdb.ErrClosed)
}
