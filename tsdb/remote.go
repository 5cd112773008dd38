package tsdb

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/promutils"
	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api"
	influxhttp "github.com/influxdata/influxdb-client-go/v2/api/http"
	"github.com/influxdata/influxdb-client-go/v2/api/write"
)

// lineWriter writes points as InfluxDB line protocol through influxdb-client-go, in batches of
// Options.BatchSize, retrying a failed batch with jittered exponential back-off. Both remote
// storages write through it: InfluxDB natively, VictoriaMetrics through its InfluxDB-compatible
// /api/v2/write endpoint.
type lineWriter struct {
	client influxdb2.Client
	api    api.WriteAPIBlocking
	opts   Options
	target Target
	log    *slog.Logger
}

func newLineWriter(t Target, opts Options, httpClient *http.Client) *lineWriter {
	co := influxdb2.DefaultOptions().
		SetPrecision(time.Millisecond).
		SetHTTPClient(httpClient).
		SetUseGZip(true).
		SetApplicationName("dsnscale")
	client := influxdb2.NewClientWithOptions(t.BaseURL, t.Token, co)
	if t.User != "" || t.Password != "" {
		auth := base64.StdEncoding.EncodeToString([]byte(t.User + ":" + t.Password))
		client.HTTPService().SetAuthorization("Basic " + auth)
	}
	org, bucket := t.Org, t.Bucket
	if t.Kind == KindVictoriaMetrics {
		// VictoriaMetrics ignores org and bucket; the client needs them to build its URL.
		org, bucket = "dsnscale", "dsnscale"
	}
	return &lineWriter{
		client: client,
		api:    client.WriteAPIBlocking(org, bucket),
		opts:   opts,
		target: t,
		log:    opts.Logger.With("tsdb", t.String()),
	}
}

// write sends points in batches. It returns an error wrapping ErrRejected when the server
// refused a batch as malformed (retrying cannot help), or ErrBackend when it stayed unavailable
// for all attempts; batches before the failing one are stored.
func (w *lineWriter) write(ctx context.Context, points []*write.Point) error {
	for len(points) > 0 {
		n := min(len(points), w.opts.BatchSize)
		if err := w.writeBatch(ctx, points[:n]); err != nil {
			return err
		}
		points = points[n:]
	}
	return nil
}

func (w *lineWriter) writeBatch(ctx context.Context, batch []*write.Point) error {
	backoff := w.opts.MinBackoff
	for attempt := 1; ; attempt++ {
		rctx, cancel := context.WithTimeout(ctx, w.opts.Timeout)
		err := w.api.WritePoint(rctx, batch...)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w: writing %d points to %s: %w", ErrBackend, len(batch), w.target, ctx.Err())
		}
		var he *influxhttp.Error
		if errors.As(err, &he) && he.StatusCode >= 400 && he.StatusCode < 500 && he.StatusCode != http.StatusTooManyRequests &&
			he.StatusCode != http.StatusRequestTimeout {
			return fmt.Errorf("%w: %s refused %d points: HTTP %d: %v", ErrRejected, w.target, len(batch), he.StatusCode, err)
		}
		if attempt >= w.opts.MaxAttempts {
			return fmt.Errorf("%w: writing %d points to %s failed %d times: %v", ErrBackend, len(batch), w.target, attempt, err)
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		if he != nil && he.RetryAfter > 0 {
			wait = max(wait, time.Duration(he.RetryAfter)*time.Second)
		}
		w.log.Warn("tsdb write failed; retrying", "attempt", attempt, "points", len(batch), "retryIn", wait, "err", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return fmt.Errorf("%w: writing %d points to %s: %w", ErrBackend, len(batch), w.target, ctx.Err())
		}
		backoff = min(2*backoff, w.opts.MaxBackoff)
	}
}

func (w *lineWriter) close() { w.client.Close() }

// pointFunc converts a validated sample to a line-protocol point.
type pointFunc func(ls *promutils.Labels, t time.Time, v float64) (*write.Point, error)

// remoteAppender collects points and writes them on Commit.
type remoteAppender struct {
	w      *lineWriter
	toPt   pointFunc
	closed func() bool
	points []*write.Point
	done   bool
}

func (a *remoteAppender) Append(ls *promutils.Labels, t time.Time, v float64) error {
	if a.done || a.closed() {
		return ErrClosed
	}
	if err := ValidateLabels(ls); err != nil {
		return err
	}
	if err := validateSample(ls, t, v); err != nil {
		return err
	}
	p, err := a.toPt(ls, t, v)
	if err != nil {
		return err
	}
	a.points = append(a.points, p)
	return nil
}

func (a *remoteAppender) Commit(ctx context.Context) error {
	if a.done || a.closed() {
		return ErrClosed
	}
	a.done = true
	points := a.points
	a.points = nil
	return a.w.write(ctx, points)
}

func (a *remoteAppender) Rollback() error {
	a.done = true
	a.points = nil
	return nil
}

// closeFlag is a Storage's closed state, shared with its appenders.
type closeFlag struct {
	mu     sync.Mutex
	closed bool
}

func (c *closeFlag) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// close sets the flag and reports whether it was already set.
func (c *closeFlag) close() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	was := c.closed
	c.closed = true
	return was
}

// unreachable wraps a failed health check.
func unreachable(t Target, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrUnreachable, t, err)
}
