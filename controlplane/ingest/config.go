package ingest

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dsnscale/dsnscale/inventory"
	"github.com/dsnscale/dsnscale/search"
	"github.com/dsnscale/dsnscale/tsdb"
	"github.com/dsnscale/dsnscale/tsdb/queue"
)

// Sentinel errors. Errors about a backend wrap both one of these and the backend's own sentinel
// (tsdb.ErrBadURL, search.ErrUnreachable, ...), so a caller can test either.
var (
	// ErrConfig marks a Config that fails validation for a reason other than a URL.
	ErrConfig = errors.New("ingest: invalid config")
	// ErrBadURL marks a backend URL that cannot be used; the message names the backend and the
	// part of the URL that is wrong.
	ErrBadURL = errors.New("ingest: bad backend URL")
	// ErrUnreachable marks a backend server that did not answer at Start.
	ErrUnreachable = errors.New("ingest: backend unreachable")
	// ErrBackend marks any other failure to open a backend (a database that refused the login,
	// an embedded store that cannot be created).
	ErrBackend = errors.New("ingest: backend failed")
	// ErrClosed marks use of a closed Ingest.
	ErrClosed = errors.New("ingest: closed")
)

// Defaults of Config.
const (
	DefaultWorkers            = 2
	DefaultPendingMessages    = 65536
	DefaultInventoryInterval  = 10 * time.Second
	DefaultLastSeenResolution = time.Minute
	DefaultBackendTimeout     = 10 * time.Second
	DefaultQueryTimeout       = 30 * time.Second
	DefaultMaxFutureSkew      = 10 * time.Minute
	DefaultEventSeriesWindow  = 2 * time.Second
	MaxEventSeriesWindow      = time.Hour
	DefaultMaxEventSeries     = 100000
)

// QueueGroup is the NATS queue group the ingestion subscribes with, so that control-plane
// replicas share the telemetry and events instead of each storing all of them. It differs from
// wire.QueueGroup so that other control-plane components subscribing to the same subjects are
// not mistaken for ingestion workers.
const QueueGroup = "cp-ingest"

// Names of the three queues, as they appear in the "queue" label of the dsnscale_queue_*
// metrics.
const (
	QueueTelemetry = "telemetry"
	QueueEvents    = "events"
	QueueInventory = "inventory"
)

// Clock is the ingestion's view of time (the same as the queues'); tests inject one they
// control.
type Clock = queue.Clock

// Config configures the ingestion. It is pure data, checked by Validate; zero fields take the
// defaults given with each.
type Config struct {
	// Conn is the control plane's NATS connection. Required.
	Conn *nats.Conn
	// DataDir holds the embedded backends (tsdb/, search/, inventory/ under it). Required unless
	// all three URLs are set.
	DataDir string
	// TSDBURL names the time-series database (see tsdb.Open); empty means embedded.
	TSDBURL string
	// SearchURL names the search index for events, logs and audit (see search.Open); empty
	// means embedded.
	SearchURL string
	// InventoryURL names the SQL inventory (see inventory.Open); empty means embedded.
	InventoryURL string
	// Registerer receives the ingestion's and its queues' metrics; nil registers them nowhere.
	Registerer prometheus.Registerer
	// Logger; nil discards.
	Logger *slog.Logger
	// Clock; nil is the system clock.
	Clock Clock

	// Workers is how many subscriptions (each with its own goroutine) decode telemetry, and as
	// many decode events. Default DefaultWorkers.
	Workers int
	// PendingMessages bounds the messages waiting in each subscription (as does a limit of
	// 64 MiB); beyond it NATS drops them and counts them (slow consumer). Default
	// DefaultPendingMessages.
	PendingMessages int
	// TelemetryQueue, EventQueue and InventoryQueue size the queues in front of the backends.
	// Their Name is set here (QueueTelemetry, ...); zero fields take queue.Config's defaults,
	// except TelemetryQueue's Capacity (default 1<<19 samples, some 250 bytes each) and
	// BatchSize (default 5000).
	TelemetryQueue queue.Config
	EventQueue     queue.Config
	InventoryQueue queue.Config
	// EventSeriesWindow is how long repetitive events of one DSN (same type, severity and
	// message) are rolled up into one series document before it is written; a series stays open
	// longer while the event queue is full. Default DefaultEventSeriesWindow, at most
	// MaxEventSeriesWindow.
	EventSeriesWindow time.Duration
	// MaxEventSeries bounds the series open at once; beyond it, events are written one by one.
	// Default DefaultMaxEventSeries.
	MaxEventSeries int
	// InventoryInterval is how often the DSN inventory is brought up to date from the fleet
	// (see TrackFleet). Default DefaultInventoryInterval.
	InventoryInterval time.Duration
	// LastSeenResolution: a DSN whose only change is its last contact is rewritten in the
	// inventory once its last contact moved by this much, not at every heartbeat. Default
	// DefaultLastSeenResolution.
	LastSeenResolution time.Duration
	// BackendTimeout bounds connecting to a remote backend at Start and each request to it.
	// Default DefaultBackendTimeout.
	BackendTimeout time.Duration
	// QueryTimeout bounds each query of the HTTP API. Default DefaultQueryTimeout.
	QueryTimeout time.Duration
	// MaxFutureSkew drops telemetry stamped further than this ahead of the control plane's
	// clock: one DSN with a clock far ahead would otherwise move the embedded TSDB's head so far
	// that every other DSN's samples fall out of its out-of-order window. Default
	// DefaultMaxFutureSkew.
	MaxFutureSkew time.Duration
}

// Validate checks the configuration without contacting any backend: bad URLs get an error
// wrapping ErrBadURL and the backend's ErrBadURL, other mistakes one wrapping ErrConfig.
func (c Config) Validate() error {
	if c.Conn == nil {
		return fmt.Errorf("%w: Conn: required", ErrConfig)
	}
	if err := ValidateURLs(c.TSDBURL, c.SearchURL, c.InventoryURL); err != nil {
		return err
	}
	if c.DataDir == "" {
		var embedded []string
		for _, b := range []struct{ name, url string }{{"tsdb", c.TSDBURL}, {"search", c.SearchURL}, {"inventory", c.InventoryURL}} {
			if b.url == "" {
				embedded = append(embedded, b.name)
			}
		}
		if len(embedded) > 0 {
			return fmt.Errorf("%w: DataDir: required for the embedded %s", ErrConfig, strings.Join(embedded, ", "))
		}
	}
	for _, n := range []struct {
		name string
		v    int
	}{{"Workers", c.Workers}, {"PendingMessages", c.PendingMessages}, {"MaxEventSeries", c.MaxEventSeries}} {
		if n.v < 0 {
			return fmt.Errorf("%w: %s: %d must not be negative", ErrConfig, n.name, n.v)
		}
	}
	if c.Workers > 64 {
		return fmt.Errorf("%w: Workers: %d, at most 64", ErrConfig, c.Workers)
	}
	if c.EventSeriesWindow > MaxEventSeriesWindow {
		return fmt.Errorf("%w: EventSeriesWindow: %v, at most %v", ErrConfig, c.EventSeriesWindow, MaxEventSeriesWindow)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"InventoryInterval", c.InventoryInterval}, {"LastSeenResolution", c.LastSeenResolution},
		{"BackendTimeout", c.BackendTimeout}, {"QueryTimeout", c.QueryTimeout}, {"MaxFutureSkew", c.MaxFutureSkew},
		{"EventSeriesWindow", c.EventSeriesWindow},
	} {
		if d.v < 0 {
			return fmt.Errorf("%w: %s: %v must not be negative", ErrConfig, d.name, d.v)
		}
	}
	d := c.withDefaults()
	for _, q := range []struct {
		field string
		cfg   queue.Config
	}{{"TelemetryQueue", d.TelemetryQueue}, {"EventQueue", d.EventQueue}, {"InventoryQueue", d.InventoryQueue}} {
		if err := q.cfg.Validate(); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrConfig, q.field, err)
		}
	}
	return nil
}

// ValidateURLs checks backend URLs as Config.Validate does, for callers that check flags or
// scenario files before they have a NATS connection. Empty URLs (embedded backends) are valid.
func ValidateURLs(tsdbURL, searchURL, inventoryURL string) error {
	if tsdbURL != "" {
		if _, err := tsdb.ParseURL(tsdbURL); err != nil {
			return fmt.Errorf("%w: tsdb URL: %w", ErrBadURL, err)
		}
	}
	if searchURL != "" {
		if _, err := search.ParseURL(searchURL); err != nil {
			return fmt.Errorf("%w: search URL: %w", ErrBadURL, err)
		}
	}
	if inventoryURL != "" {
		if err := checkInventoryURL(inventoryURL); err != nil {
			return fmt.Errorf("%w: inventory URL: %w", ErrBadURL, err)
		}
	}
	return nil
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = systemClock{}
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.PendingMessages == 0 {
		c.PendingMessages = DefaultPendingMessages
	}
	c.TelemetryQueue.Name = QueueTelemetry
	if c.TelemetryQueue.Capacity == 0 {
		c.TelemetryQueue.Capacity = 1 << 19
	}
	if c.TelemetryQueue.BatchSize == 0 {
		c.TelemetryQueue.BatchSize = min(5000, c.TelemetryQueue.Capacity)
	}
	c.EventQueue.Name = QueueEvents
	c.InventoryQueue.Name = QueueInventory
	if c.InventoryInterval == 0 {
		c.InventoryInterval = DefaultInventoryInterval
	}
	if c.LastSeenResolution == 0 {
		c.LastSeenResolution = DefaultLastSeenResolution
	}
	if c.BackendTimeout == 0 {
		c.BackendTimeout = DefaultBackendTimeout
	}
	if c.QueryTimeout == 0 {
		c.QueryTimeout = DefaultQueryTimeout
	}
	if c.MaxFutureSkew == 0 {
		c.MaxFutureSkew = DefaultMaxFutureSkew
	}
	if c.EventSeriesWindow == 0 {
		c.EventSeriesWindow = DefaultEventSeriesWindow
	}
	if c.MaxEventSeries == 0 {
		c.MaxEventSeries = DefaultMaxEventSeries
	}
	return c
}

// checkInventoryURL checks an inventory URL the way inventory.Open reads it, without
// connecting.
func checkInventoryURL(raw string) error {
	switch {
	case strings.HasPrefix(raw, "sqlite://"):
		u, err := url.Parse(raw)
		if err != nil {
			return fmt.Errorf("%w: %v", inventory.ErrBadURL, err)
		}
		if u.Host != "" || u.Path == "" || u.RawQuery != "" {
			return fmt.Errorf("%w: %q: want sqlite:///absolute/path.db", inventory.ErrBadURL, raw)
		}
		return nil
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		if _, err := pgx.ParseConfig(raw); err != nil {
			// pgx's message may quote the URL; say only what kind of problem it is.
			return fmt.Errorf("%w: %s", inventory.ErrBadURL, redactPG(err.Error(), raw))
		}
		return nil
	}
	scheme, _, ok := strings.Cut(raw, "://")
	if !ok {
		return fmt.Errorf("%w: no scheme; want postgres://, postgresql:// or sqlite://", inventory.ErrBadURL)
	}
	return fmt.Errorf("%w: scheme %q: want postgres, postgresql or sqlite", inventory.ErrBadURL, scheme)
}

// redactPG removes the password of raw from msg.
func redactPG(msg, raw string) string {
	if u, err := url.Parse(raw); err == nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
	}
	return msg
}

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
