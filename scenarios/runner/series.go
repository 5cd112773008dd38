package runner

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/promutils"

	"github.com/dsnscale/dsnscale/reports"
	"github.com/dsnscale/dsnscale/scenarios/measure"
	"github.com/dsnscale/dsnscale/tsdb"
)

// seriesWriter buffers the engine's samples and commits them to the run's embedded time-series
// store once per sampling interval; reports read the series back from it.
type seriesWriter struct {
	store tsdb.Storage
	log   *slog.Logger

	mu      sync.Mutex
	pending []pendingSample
	failed  int
	lastErr error
}

type pendingSample struct {
	labels *promutils.Labels
	at     time.Time
	v      float64
}

func openSeries(dir string, log *slog.Logger) (*seriesWriter, error) {
	st, err := tsdbOpen(dir, log)
	if err != nil {
		return nil, err
	}
	return &seriesWriter{store: st, log: log}, nil
}

func (w *seriesWriter) add(ls *promutils.Labels, at time.Time, v float64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending = append(w.pending, pendingSample{ls, at, v})
}

func (w *seriesWriter) censusSample(at time.Time, c measure.Counts, size int, rev uint64) {
	for _, state := range slices.Sorted(maps.Keys(c.States)) {
		w.add(tsdb.Labels(seriesDSNs, "state", state), at, float64(c.States[state]))
	}
	acked := 0.0
	if size > 0 {
		acked = 100 * float64(c.AtOrPast) / float64(size)
	}
	w.add(tsdb.Labels(seriesAcked), at, acked)
	w.add(tsdb.Labels(seriesRevision), at, float64(rev))
}

func (w *seriesWriter) resourceSample(comp string, s measure.Sample) {
	w.add(tsdb.Labels(seriesCPU, "component", comp), s.At, s.CPUSeconds)
	w.add(tsdb.Labels(seriesRSS, "component", comp), s.At, float64(s.RSSBytes))
}

func (w *seriesWriter) apiSample(at time.Time, perSec, errPerSec float64, sorted []time.Duration) {
	w.add(tsdb.Labels(seriesAPIRequests), at, perSec)
	w.add(tsdb.Labels(seriesAPIErrors), at, errPerSec)
	if len(sorted) > 0 {
		w.add(tsdb.Labels(seriesAPIP50), at, ms(pick(sorted, 0.5)))
		w.add(tsdb.Labels(seriesAPIP99), at, ms(pick(sorted, 0.99)))
	}
}

func pick(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.999999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// flush commits what was added since the last flush.
func (w *seriesWriter) flush(ctx context.Context) {
	w.mu.Lock()
	batch := w.pending
	w.pending = nil
	w.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	app := w.store.Appender()
	for _, s := range batch {
		if err := app.Append(s.labels, s.at, s.v); err != nil {
			w.fail(err)
		}
	}
	if err := app.Commit(context.WithoutCancel(ctx)); err != nil {
		w.fail(err)
	}
}

func (w *seriesWriter) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.failed++
	w.lastErr = err
	if w.failed <= 3 {
		w.log.Warn("time-series write failed", "err", err)
	}
}

// read returns the samples of the series matching metric and label pairs, in time order, as
// report points relative to start, one series per label set.
func (w *seriesWriter) read(ctx context.Context, start, end time.Time, metric string, pairs ...string) (map[string][]reports.Point, error) {
	ms := []tsdb.Matcher{tsdb.MetricName(metric)}
	for i := 0; i+1 < len(pairs); i += 2 {
		ms = append(ms, tsdb.Equal(pairs[i], pairs[i+1]))
	}
	ss, err := w.store.Select(ctx, tsdb.Query{Matchers: ms, From: start, To: end})
	if err != nil {
		return nil, err
	}
	out := map[string][]reports.Point{}
	for _, s := range ss {
		key := labelKey(s.Labels)
		pts := make([]reports.Point, 0, len(s.Samples))
		for _, p := range s.Samples {
			pts = append(pts, reports.Point{T: reports.Offset(start, p.Time), V: p.Value})
		}
		sort.Slice(pts, func(i, j int) bool { return pts[i].T < pts[j].T })
		out[key] = pts
	}
	return out, nil
}

// labelKey renders a label set without its metric name ("component=fleet").
func labelKey(ls *promutils.Labels) string {
	var parts []string
	for _, l := range ls.GetLabels() {
		if l.Name != tsdb.MetricNameLabel {
			parts = append(parts, l.Name+"="+l.Value)
		}
	}
	sort.Strings(parts)
	key := ""
	for i, p := range parts {
		if i > 0 {
			key += ","
		}
		key += p
	}
	return key
}

// Close flushes what is left and closes the store.
func (w *seriesWriter) Close() error {
	w.flush(context.Background())
	return w.store.Close()
}
