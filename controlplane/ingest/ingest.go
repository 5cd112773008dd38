// Package ingest writes what DSNs report to the control plane's backends and serves queries over
// them: telemetry to the TSDB, events and log lines to the search index (which the audit shares),
// and the DSN inventory to SQL.
//
// Telemetry (wire.TelemetryBatch on wire.AllTelemetry) and events (wire.Event on wire.AllEvents)
// arrive on a few NATS queue subscriptions, each with its own goroutine and a bounded backlog.
// Every message is decoded and validated; a bad one is counted by reason and dropped. Events
// repeated by one DSN (same type, severity and message) are rolled up into series: one search
// document per series and window, with the count and the first and last times in its fields
// (see FieldCount), the rest counted as rolled up; while the event queue is full a series stays
// open instead of being dropped. What is valid goes into a bounded queue per backend (package tsdb/queue), written in batches by one
// worker each, retried with back-off. Nothing on this path ever waits for a backend: a slow or
// dead backend fills its queue, and what does not fit is dropped and counted, while the other
// backends and the control plane's intent distribution go on. Queue depths, drops and errors
// are on /metrics.
//
// Samples are stored with the labels __name__ (the sample's name), dsn (the sender's id) and
// the sample's own labels, at the batch's time. Names and labels must be valid Prometheus names
// ([a-zA-Z_:][a-zA-Z0-9_:]* with an underscore neither first nor last, and [a-zA-Z_][a-zA-Z0-9_]*
// not starting with "__" and not "dsn"), so that every TSDB implementation stores them alike;
// other samples are dropped and counted.
//
// The inventory follows the fleet: OnHello records each admission as it happens (the
// distributor calls it after answering a Hello), and TrackFleet polls the fleet's DSN list to
// keep states, applied revisions and last contacts current.
//
// Handler serves queries over the three backends under /api/v1 (see NewHandler); SearchIndex
// is the index the audit writes to.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dsnscale/dsnscale/controlplane/wire"
	"github.com/dsnscale/dsnscale/inventory"
	"github.com/dsnscale/dsnscale/search"
	"github.com/dsnscale/dsnscale/tsdb"
	"github.com/dsnscale/dsnscale/tsdb/queue"
)

// Ingest is running ingestion: subscriptions, queues and backends. Its methods are safe for
// concurrent use.
type Ingest struct {
	cfg   Config
	log   *slog.Logger
	clock Clock

	tsdb   tsdb.Storage
	index  search.Index
	inv    inventory.Inventory
	writer *tsdb.Writer
	events *queue.Queue[search.Document]
	series *aggregator
	invQ   *queue.Queue[invOp]

	c       counters
	metrics *metrics

	subMu sync.Mutex
	subs  map[string][]*nats.Subscription // by kind
	// droppedClosed keeps the slow-consumer drops of subscriptions already closed.
	droppedClosed map[string]int

	mu      sync.Mutex
	closed  bool
	tracked bool
	dirty   map[string]struct{} // DSNs admitted since the last poll
	stop    chan struct{}       // closed by Close: stops the fleet poller
	wg      sync.WaitGroup
}

// Start opens the backends, starts the queues and subscribes. A backend that cannot be opened
// fails Start with an error wrapping ErrBadURL, ErrUnreachable or ErrBackend (and the backend's
// own sentinel); nothing is left running then.
func Start(ctx context.Context, cfg Config) (_ *Ingest, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	in := &Ingest{
		cfg:           cfg,
		log:           cfg.Logger.With("component", "ingest"),
		clock:         cfg.Clock,
		subs:          map[string][]*nats.Subscription{},
		droppedClosed: map[string]int{},
		stop:          make(chan struct{}),
		dirty:         map[string]struct{}{},
	}
	defer func() {
		if err != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			_ = in.Close(cctx)
			cancel()
		}
	}()
	if err := in.open(); err != nil {
		return nil, err
	}
	qopts := []queue.Option{queue.WithClock(cfg.Clock), queue.WithLogger(in.log)}
	if cfg.Registerer != nil {
		qopts = append(qopts, queue.WithRegisterer(cfg.Registerer))
	}
	if in.writer, err = tsdb.NewWriter(in.tsdb, cfg.TelemetryQueue, qopts...); err != nil {
		return nil, fmt.Errorf("%w: telemetry queue: %w", ErrConfig, err)
	}
	if in.events, err = queue.New(cfg.EventQueue, search.Sink(in.index), qopts...); err != nil {
		return nil, fmt.Errorf("%w: event queue: %w", ErrConfig, err)
	}
	in.series = newAggregator(cfg.EventSeriesWindow, cfg.MaxEventSeries, in.events)
	if in.invQ, err = queue.New(cfg.InventoryQueue, in.inventorySink(), qopts...); err != nil {
		return nil, fmt.Errorf("%w: inventory queue: %w", ErrConfig, err)
	}
	if in.metrics, err = newMetrics(cfg.Registerer, &in.c, in.series, in.dropped, func() float64 { return float64(in.writer.Rejected()) }); err != nil {
		return nil, err
	}
	if err := in.subscribe(ctx); err != nil {
		return nil, err
	}
	in.wg.Add(1)
	go in.flushSeries()
	in.log.Info("ingestion started", "tsdb", describe("tsdb", cfg.TSDBURL), "search", describe("search", cfg.SearchURL),
		"inventory", describe("inventory", cfg.InventoryURL), "workers", cfg.Workers)
	return in, nil
}

// describe names a backend for logs, without credentials.
func describe(backend, rawURL string) string {
	if rawURL == "" {
		return "embedded"
	}
	switch backend {
	case "tsdb":
		if t, err := tsdb.ParseURL(rawURL); err == nil {
			return t.String()
		}
	case "search":
		if t, err := search.ParseURL(rawURL); err == nil {
			return t.String()
		}
	default:
		if u, err := url.Parse(rawURL); err == nil {
			return u.Scheme + "://" + u.Host + u.Path
		}
	}
	return backend
}

// open opens the three backends.
func (in *Ingest) open() error {
	cfg := in.cfg
	// Fields are set only on success: a failed Open may return a typed nil.
	st, err := tsdb.Open(cfg.TSDBURL, dataDir(cfg, "tsdb"), tsdb.Options{Timeout: cfg.BackendTimeout, Logger: in.log})
	if err != nil {
		return openError("tsdb", err, tsdb.ErrBadURL, tsdb.ErrUnreachable)
	}
	in.tsdb = st
	idx, err := search.Open(cfg.SearchURL, dataDir(cfg, "search"), search.Options{Timeout: cfg.BackendTimeout, Logger: in.log})
	if err != nil {
		return openError("search", err, search.ErrBadURL, search.ErrUnreachable)
	}
	in.index = idx
	inv, err := inventory.Open(cfg.InventoryURL, dataDir(cfg, "inventory"),
		inventory.Options{Timeout: cfg.BackendTimeout, Now: cfg.Clock.Now, Logger: in.log})
	if err != nil {
		return openError("inventory", err, inventory.ErrBadURL, inventory.ErrUnreachable)
	}
	in.inv = inv
	return nil
}

func dataDir(cfg Config, name string) string {
	if cfg.DataDir == "" {
		return ""
	}
	return filepath.Join(cfg.DataDir, name)
}

// openError classifies a backend's failure to open.
func openError(backend string, err, badURL, unreachable error) error {
	switch {
	case errors.Is(err, badURL):
		return fmt.Errorf("%w: %s: %w", ErrBadURL, backend, err)
	case errors.Is(err, unreachable):
		return fmt.Errorf("%w: %s: %w", ErrUnreachable, backend, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrBackend, backend, err)
}

// subscribe starts Workers queue subscriptions per subject and waits until the server has them.
func (in *Ingest) subscribe(ctx context.Context) error {
	for _, s := range []struct {
		kind, subject string
		handler       nats.MsgHandler
	}{{KindTelemetry, wire.AllTelemetry, in.onTelemetry}, {KindEvent, wire.AllEvents, in.onEvent}} {
		for range in.cfg.Workers {
			sub, err := in.cfg.Conn.QueueSubscribe(s.subject, QueueGroup, s.handler)
			if err != nil {
				return fmt.Errorf("ingest: subscribe to %s: %w", s.subject, err)
			}
			in.subMu.Lock()
			in.subs[s.kind] = append(in.subs[s.kind], sub)
			in.subMu.Unlock()
			// A bounded backlog per subscription: beyond it NATS drops and counts, and the
			// connection's reader, shared with distribution, never waits for ingestion.
			if err := sub.SetPendingLimits(in.cfg.PendingMessages, 64<<20); err != nil {
				return fmt.Errorf("ingest: pending limits on %s: %w", s.subject, err)
			}
		}
	}
	fctx, cancel := context.WithTimeout(ctx, in.cfg.BackendTimeout)
	defer cancel()
	if err := in.cfg.Conn.FlushWithContext(fctx); err != nil {
		return fmt.Errorf("ingest: registering subscriptions with NATS: %w", err)
	}
	return nil
}

// dropped counts the messages of kind NATS dropped for slow consumption.
func (in *Ingest) dropped(kind string) float64 {
	in.subMu.Lock()
	defer in.subMu.Unlock()
	n := in.droppedClosed[kind]
	for _, s := range in.subs[kind] {
		if d, err := s.Dropped(); err == nil {
			n += d
		}
	}
	return float64(n)
}

// onTelemetry stores one TelemetryBatch. It runs on a subscription's goroutine and never waits.
func (in *Ingest) onTelemetry(msg *nats.Msg) {
	in.c.messages[kindIndex(KindTelemetry)].Add(1)
	var b telemetryMsg
	if err := in.decode(KindTelemetry, msg, &b, func() string { return b.DSN }); err != nil {
		return
	}
	t := time.Unix(0, b.TimeUnixNano)
	if t.Sub(in.clock.Now()) > in.cfg.MaxFutureSkew {
		in.c.samplesInvalid.Add(uint64(len(b.Samples)))
		in.log.Debug("telemetry from the future dropped", "dsn", b.DSN, "time", t)
		return
	}
	points := make([]tsdb.Point, 0, len(b.Samples))
	for i := range b.Samples {
		ls, err := sampleLabels(b.DSN, &b.Samples[i])
		if err != nil {
			in.c.samplesInvalid.Add(1)
			in.log.Debug("invalid sample", "dsn", b.DSN, "err", err)
			continue
		}
		points = append(points, tsdb.Point{Labels: ls, Time: t, Value: b.Samples[i].Value})
	}
	in.c.samples.Add(uint64(len(points)))
	if _, err := in.writer.Offer(points...); err != nil {
		in.log.Debug("invalid sample", "dsn", b.DSN, "err", err)
	}
}

// onEvent indexes one Event. It runs on a subscription's goroutine and never waits.
func (in *Ingest) onEvent(msg *nats.Msg) {
	in.c.messages[kindIndex(KindEvent)].Add(1)
	var e eventMsg
	if err := in.decode(KindEvent, msg, &e, func() string { return e.DSN }); err != nil {
		return
	}
	in.series.add(&e, in.clock.Now())
}

// flushSeries writes the event series due, twice a window, until Close.
func (in *Ingest) flushSeries() {
	defer in.wg.Done()
	for {
		select {
		case <-in.stop:
			return
		case <-in.clock.After(in.cfg.EventSeriesWindow / 2):
			in.series.flush(in.clock.Now(), false)
		}
	}
}

// decode decodes and validates msg into v and checks that the DSN it names is the one in its
// subject (a DSN may only speak for itself); failures are counted and logged at debug level.
func (in *Ingest) decode(kind string, msg *nats.Msg, v wire.Validator, dsn func() string) error {
	err := wire.Unmarshal(msg.Data, v)
	if err == nil {
		if id, ok := wire.DSNFromSubject(msg.Subject); !ok || id != dsn() {
			err = invalid(ReasonDSN, "dsn: %q is not the sender named by subject %s", dsn(), msg.Subject)
		}
	}
	if err != nil {
		reason := reasonOf(err)
		in.c.invalid[kindIndex(kind)][reasonIndex(reason)].Add(1)
		in.log.Debug("invalid message", "kind", kind, "subject", msg.Subject, "reason", reason, "err", err)
	}
	return err
}
