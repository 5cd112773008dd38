package tsdb

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/promutils"

	"github.com/dsnscale/dsnscale/tsdb/queue"
)

// Point is one sample of one series, as offered to a Writer.
type Point struct {
	Labels *promutils.Labels
	Time   time.Time
	Value  float64
}

// Writer writes points to a Storage in the background through a bounded queue: Offer never
// blocks, points that do not fit are dropped and counted, failed batches are retried with
// back-off (see package queue). Points the storage rejects one by one (too old, invalid for the
// backend) are counted in Rejected and do not fail their batch.
type Writer struct {
	st       Storage
	q        *queue.Queue[Point]
	rejected atomic.Uint64
}

// NewWriter starts a Writer in front of st. cfg.Name names the queue in logs and metrics.
func NewWriter(st Storage, cfg queue.Config, opts ...queue.Option) (*Writer, error) {
	w := &Writer{st: st}
	q, err := queue.New(cfg, w.sink, opts...)
	if err != nil {
		return nil, err
	}
	w.q = q
	return w, nil
}

// Offer validates points and buffers the valid ones without blocking. It returns how many were
// accepted and, if any was invalid, an error wrapping ErrInvalid that names the first one. The
// label sets are kept until written: do not modify them after offering.
func (w *Writer) Offer(points ...Point) (int, error) {
	var firstErr error
	valid := points
	for i, p := range points {
		err := ValidateLabels(p.Labels)
		if err == nil {
			err = validateSample(p.Labels, p.Time, p.Value)
		}
		if err == nil {
			if firstErr != nil {
				valid = append(valid, p)
			}
			continue
		}
		if firstErr == nil {
			firstErr = fmt.Errorf("point %d: %w", i, err)
			valid = append(make([]Point, 0, len(points)), points[:i]...)
		}
	}
	return w.q.Offer(valid...), firstErr
}

// Stats reports the queue's counters.
func (w *Writer) Stats() queue.Stats { return w.q.Stats() }

// Rejected counts points the storage refused individually.
func (w *Writer) Rejected() uint64 { return w.rejected.Load() }

// Close writes what is buffered until ctx is done (see queue.Queue.Close). It does not close
// the storage.
func (w *Writer) Close(ctx context.Context) error { return w.q.Close(ctx) }

func (w *Writer) sink(ctx context.Context, batch []Point) error {
	app := w.st.Appender()
	for _, p := range batch {
		if err := app.Append(p.Labels, p.Time, p.Value); err != nil {
			if errors.Is(err, ErrRejected) || errors.Is(err, ErrInvalid) {
				w.rejected.Add(1)
				continue
			}
			_ = app.Rollback()
			return err
		}
	}
	err := app.Commit(ctx)
	if errors.Is(err, ErrRejected) || errors.Is(err, ErrInvalid) || errors.Is(err, ErrClosed) {
		return queue.Permanent(err)
	}
	return err
}
