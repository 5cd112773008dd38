// Package tsdb stores time series behind three narrow interfaces, Appender, Querier and Storage,
// with one embedded and two remote implementations:
//
//   - embedded: the Prometheus tsdb package (write-ahead log, blocks, retention) in a directory;
//   - VictoriaMetrics: written as InfluxDB line protocol through influxdb-client-go, read
//     through the Prometheus HTTP API (/api/v1/query, /api/v1/query_range, /api/v1/series);
//   - InfluxDB 2.x: written as line protocol through influxdb-client-go, read with Flux.
//
// Open chooses one by URL. A series is a label set (promutils.Labels) whose "__name__" label is
// the metric name; a sample is a float64 value at a time of millisecond precision. All
// implementations pass the same conformance suite, tsdbtest.Run.
//
// Writes are synchronous: Commit returns once the samples are stored (embedded) or accepted by
// the server (remote). Callers that must never wait for a backend put a Writer (an asynchronous,
// bounded, counted queue) in front.
package tsdb

import (
	"context"
	"errors"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/promutils"
)

// Sentinel errors. Errors returned by this package wrap one of them.
var (
	// ErrBadURL marks a storage URL that cannot be used; the message says which part is wrong.
	ErrBadURL = errors.New("tsdb: bad storage URL")
	// ErrUnreachable marks a remote server that did not answer.
	ErrUnreachable = errors.New("tsdb: server unreachable")
	// ErrInvalid marks a label set, sample, matcher, query or option that breaks the rules.
	ErrInvalid = errors.New("tsdb: invalid input")
	// ErrRejected marks a sample the backend refused (too old, out of bounds, conflicting).
	ErrRejected = errors.New("tsdb: sample rejected")
	// ErrBackend marks a failure reported by, or in talking to, the backend.
	ErrBackend = errors.New("tsdb: backend error")
	// ErrClosed marks use of a closed Storage or a finished Appender.
	ErrClosed = errors.New("tsdb: closed")
)

// MetricNameLabel is the label that holds a series' metric name.
const MetricNameLabel = "__name__"

// Sample is one value of a series. Time has millisecond precision.
type Sample struct {
	Time  time.Time
	Value float64
}

// Series is a label set and its samples in ascending time order.
type Series struct {
	Labels  *promutils.Labels
	Samples []Sample
}

// Appender collects samples and writes them on Commit. An Appender is used by one goroutine and
// is finished by Commit or Rollback.
type Appender interface {
	// Append adds a sample to the series named by labels (which must hold __name__). The label
	// set is validated and copied; the caller may reuse it.
	Append(labels *promutils.Labels, t time.Time, v float64) error
	// Commit writes the appended samples. Samples appended out of time order within the
	// backend's out-of-order window are accepted.
	Commit(ctx context.Context) error
	// Rollback discards the appended samples.
	Rollback() error
}

// Querier reads series.
type Querier interface {
	// Select returns the series matching q with their samples, sorted by label set.
	Select(ctx context.Context, q Query) ([]Series, error)
	// Series returns the label sets of the series matching all matchers that have samples
	// between from and to, sorted. Remote servers resolve the range coarsely (VictoriaMetrics by
	// day), so series with samples just outside it may be included.
	Series(ctx context.Context, from, to time.Time, matchers ...Matcher) ([]*promutils.Labels, error)
}

// Storage is a time-series store. It is safe for concurrent use.
type Storage interface {
	Querier
	// Appender starts a write transaction.
	Appender() Appender
	// Close releases the storage; the embedded engine flushes its write-ahead log.
	Close() error
}

// Syncer is implemented by storages whose committed samples reach queries only after a delay.
type Syncer interface {
	// Sync makes every committed sample visible to queries.
	Sync(ctx context.Context) error
}

// Sync makes st's committed samples visible to queries, if st needs that (see Syncer).
func Sync(ctx context.Context, st Storage) error {
	if s, ok := st.(Syncer); ok {
		return s.Sync(ctx)
	}
	return nil
}
