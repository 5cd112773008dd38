package tsdb

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/promutils"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// Embedded is the in-process storage: the Prometheus tsdb engine in a directory.
type Embedded struct {
	db  *tsdb.DB
	dir string

	mu     sync.RWMutex // guards closed against Close racing reads and writes
	closed bool
}

var _ Storage = (*Embedded)(nil)

// OpenEmbedded opens (creating if needed) the Prometheus tsdb in dir. Data in dir from a
// previous run, including samples not yet compacted into blocks, is kept.
func OpenEmbedded(dir string, opts Options) (*Embedded, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.WithDefaults()
	po := tsdb.DefaultOptions()
	po.RetentionDuration = opts.Retention.Milliseconds()
	po.OutOfOrderTimeWindow = opts.OutOfOrderWindow.Milliseconds()
	db, err := tsdb.Open(dir, opts.Logger.With("component", "tsdb"), nil, po, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: opening embedded tsdb in %s: %w", ErrBackend, dir, err)
	}
	return &Embedded{db: db, dir: dir}, nil
}

// Appender starts a write transaction.
func (e *Embedded) Appender() Appender {
	return &embeddedAppender{e: e, sb: labels.NewScratchBuilder(8)}
}

// Close flushes and closes the engine.
func (e *Embedded) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	if err := e.db.Close(); err != nil {
		return fmt.Errorf("%w: closing embedded tsdb in %s: %w", ErrBackend, e.dir, err)
	}
	return nil
}

// Select implements Querier.
func (e *Embedded) Select(ctx context.Context, q Query) ([]Series, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	from, to := millis(q.From), millis(q.To)
	lo := from
	if q.Step > 0 {
		lo = from.Add(-q.Step + time.Millisecond)
	}
	var out []Series
	err := e.query(ctx, lo, to, q.Matchers, false, func(s storage.Series) error {
		var samples []Sample
		it := s.Iterator(nil)
		for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
			if vt != chunkenc.ValFloat {
				continue // histograms are never appended through this package
			}
			t, v := it.At()
			samples = append(samples, Sample{Time: time.UnixMilli(t).UTC(), Value: v})
		}
		if err := it.Err(); err != nil {
			return err
		}
		if q.Step > 0 {
			samples = stepSamples(samples, from, to, q.Step)
		}
		if len(samples) > 0 {
			out = append(out, Series{Labels: fromPromLabels(s.Labels()), Samples: samples})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sortSeries(out)
	return out, nil
}

// Series implements Querier.
func (e *Embedded) Series(ctx context.Context, from, to time.Time, matchers ...Matcher) ([]*promutils.Labels, error) {
	if err := validateMatchers(matchers); err != nil {
		return nil, err
	}
	if to.Before(from) {
		return nil, fmt.Errorf("%w: series %s: to (%v) is before from (%v)", ErrInvalid, selector(matchers), to, from)
	}
	var out []*promutils.Labels
	err := e.query(ctx, millis(from), millis(to), matchers, true, func(s storage.Series) error {
		out = append(out, fromPromLabels(s.Labels()))
		return nil
	})
	if err != nil {
		return nil, err
	}
	sortLabelSets(out)
	return out, nil
}

// query calls fn for each series with samples in [from, to] matching ms.
func (e *Embedded) query(ctx context.Context, from, to time.Time, ms []Matcher, seriesOnly bool, fn func(storage.Series) error) error {
	pms := make([]*labels.Matcher, len(ms))
	for i, m := range ms {
		pm, err := m.prom()
		if err != nil {
			return fmt.Errorf("%w: matcher %s: %v", ErrInvalid, m, err)
		}
		pms[i] = pm
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return ErrClosed
	}
	mint, maxt := from.UnixMilli(), to.UnixMilli()
	qr, err := e.db.Querier(mint, maxt)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBackend, err)
	}
	defer qr.Close()
	// No "series" hint: it would drop the chunks that hasSampleIn needs.
	hints := &storage.SelectHints{Start: mint, End: maxt}
	set := qr.Select(ctx, false, hints, pms...)
	for set.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		s := set.At()
		if seriesOnly && !hasSampleIn(s, mint, maxt) {
			continue
		}
		if err := fn(s); err != nil {
			return fmt.Errorf("%w: reading %s: %w", ErrBackend, s.Labels(), err)
		}
	}
	if err := set.Err(); err != nil {
		return fmt.Errorf("%w: selecting %s: %w", ErrBackend, selector(ms), err)
	}
	return nil
}

// hasSampleIn reports whether s has a sample in [mint, maxt]; the head index alone would also
// list series whose samples all lie outside the range.
func hasSampleIn(s storage.Series, mint, maxt int64) bool {
	it := s.Iterator(nil)
	if it.Seek(mint) == chunkenc.ValNone {
		return false
	}
	return it.AtT() <= maxt
}

type embeddedAppender struct {
	e    *Embedded
	app  storage.Appender
	sb   labels.ScratchBuilder
	done bool
}

func (a *embeddedAppender) Append(ls *promutils.Labels, t time.Time, v float64) error {
	if a.done {
		return ErrClosed
	}
	if err := ValidateLabels(ls); err != nil {
		return err
	}
	if err := validateSample(ls, t, v); err != nil {
		return err
	}
	a.e.mu.RLock()
	defer a.e.mu.RUnlock()
	if a.e.closed {
		return ErrClosed
	}
	if a.app == nil {
		a.app = a.e.db.Appender(context.Background())
	}
	_, err := a.app.Append(0, toPromLabels(ls, &a.sb), t.UnixMilli(), v)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrOutOfBounds), errors.Is(err, storage.ErrTooOldSample),
		errors.Is(err, storage.ErrOutOfOrderSample), errors.Is(err, storage.ErrDuplicateSampleForTimestamp):
		return fmt.Errorf("%w: %s at %v: %w", ErrRejected, ls.String(), t.UTC(), err)
	default:
		return fmt.Errorf("%w: appending %s: %w", ErrBackend, ls.String(), err)
	}
}

func (a *embeddedAppender) Commit(ctx context.Context) error {
	if a.done {
		return ErrClosed
	}
	a.done = true
	if a.app == nil {
		return nil
	}
	a.e.mu.RLock()
	defer a.e.mu.RUnlock()
	if a.e.closed {
		return ErrClosed
	}
	if err := a.app.Commit(); err != nil {
		return fmt.Errorf("%w: commit: %w", ErrBackend, err)
	}
	return nil
}

func (a *embeddedAppender) Rollback() error {
	if a.done {
		return nil
	}
	a.done = true
	if a.app == nil {
		return nil
	}
	a.e.mu.RLock()
	defer a.e.mu.RUnlock()
	if a.e.closed {
		return nil
	}
	if err := a.app.Rollback(); err != nil {
		return fmt.Errorf("%w: rollback: %w", ErrBackend, err)
	}
	return nil
}
