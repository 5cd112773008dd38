// Package api serves the control plane's northbound REST/JSON API: tenants, networks and
// policies under /api/v1 in a Kubernetes-like envelope, DSNs through the Fleet, transactions,
// a server-sent-events watch, convergence, the OpenAPI description of itself, health and metrics.
//
// Every write is validated in layers before it reaches the store: the JSON shape and the values
// (model.DecodeObject and model.Validate), then the relations between objects, checked against
// the state the write would produce inside the store's Commit. Every error is a JSON body
// {"code", "reason", "message", "field"} with the matching HTTP status.
package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dsnscale/dsnscale/controlplane/store"
)

// Defaults and bounds of the configuration and of requests.
const (
	DefaultMaxBodyBytes      = 1 << 20
	DefaultMaxInFlight       = 512
	DefaultHeartbeatInterval = 15 * time.Second
	// MaxTransactionOps bounds the operations of one transaction (JetStream's atomic batch limit).
	MaxTransactionOps = 1000
	// MaxListLimit bounds the limit of one list page.
	MaxListLimit = 10000
)

// ErrConfig marks an invalid Config.
var ErrConfig = errors.New("api: invalid config")

// Config configures the API. It is pure data; New validates it.
type Config struct {
	// Store holds the intent. Required.
	Store store.Store
	// Fleet serves DSNs and convergence. Optional: without it those routes answer 501.
	Fleet Fleet
	// Registry receives the API's metrics and is served on /metrics. Optional: nil uses a
	// registry of the API's own.
	Registry *prometheus.Registry
	// Logger logs failed requests. Optional: nil discards.
	Logger *slog.Logger
	// MaxBodyBytes caps a request body; larger ones get 413. 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxInFlight caps concurrent requests (watches, health and metrics not counted); more get
	// 429 with Retry-After. 0 means DefaultMaxInFlight.
	MaxInFlight int
	// Ready reports whether the control plane can serve (/readyz answers 503 with its error).
	// Optional: nil is always ready.
	Ready func() error
	// Clock reads the time for request latencies. Optional: nil uses time.Now.
	Clock func() time.Time
	// HeartbeatInterval is the time between comment lines on an idle watch stream, so that
	// proxies and clients can tell a quiet stream from a dead one. 0 means
	// DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
	// Streams ends the running watches when it ends: a server that stops ends them first, so
	// that its shutdown need not wait for them while the other requests finish. Optional: nil
	// leaves watches to their requests' contexts.
	Streams context.Context
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case c.Store == nil:
		return fmt.Errorf("%w: Store is required", ErrConfig)
	case c.MaxBodyBytes < 0:
		return fmt.Errorf("%w: MaxBodyBytes %d is negative", ErrConfig, c.MaxBodyBytes)
	case c.MaxInFlight < 0:
		return fmt.Errorf("%w: MaxInFlight %d is negative", ErrConfig, c.MaxInFlight)
	case c.HeartbeatInterval < 0:
		return fmt.Errorf("%w: HeartbeatInterval %s is negative", ErrConfig, c.HeartbeatInterval)
	}
	return nil
}

// server holds the API's state; its methods are the handlers.
type server struct {
	cfg      Config
	store    store.Store
	fleet    Fleet
	log      *slog.Logger
	now      func() time.Time
	registry *prometheus.Registry
	metrics  *metrics
	inFlight chan struct{}
	mux      *http.ServeMux
	openAPI  []byte
	allowed  map[string][]string // path pattern -> methods, for 405 answers
}

// New builds the API handler. Watches stream until the client goes, the request's context ends
// or Config.Streams ends.
func New(cfg Config) (http.Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	s := &server{
		cfg:      cfg,
		store:    cfg.Store,
		fleet:    cfg.Fleet,
		log:      cfg.Logger,
		now:      cfg.Clock,
		registry: cfg.Registry,
		inFlight: make(chan struct{}, cfg.MaxInFlight),
		mux:      http.NewServeMux(),
		allowed:  map[string][]string{},
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.registry == nil {
		s.registry = prometheus.NewRegistry()
	}
	m, err := newMetrics(s.registry)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	s.routes()
	doc, err := buildOpenAPI()
	if err != nil {
		return nil, err
	}
	s.openAPI = doc
	return s.mux, nil
}
