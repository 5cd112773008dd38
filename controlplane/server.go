// Package controlplane assembles the reference control plane: the bus (an embedded nats-server
// with JetStream, or an external NATS), the intent store, southbound distribution and the
// northbound API.
package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/dsnscale/dsnscale/controlplane/api"
	"github.com/dsnscale/dsnscale/controlplane/distrib"
	"github.com/dsnscale/dsnscale/controlplane/store"
	"github.com/dsnscale/dsnscale/internal/natsserver"
)

// ErrNotReady is returned by readiness checks while a dependency is down.
var ErrNotReady = errors.New("control plane not ready")

// Config is the control plane's configuration: pure data, checked by Validate.
type Config struct {
	// DataDir holds everything the control plane keeps: the JetStream file store when NATS is
	// embedded. Required.
	DataDir string
	// Listen is the northbound API's host:port ("127.0.0.1:0" picks a free port).
	Listen string
	// NATSListen is where the embedded NATS server listens for DSNs ("127.0.0.1:0" by default).
	NATSListen string
	// NATSURL, when set, uses an external NATS (with JetStream) instead of the embedded one.
	NATSURL string
	// MaxBodyBytes caps request bodies (default 1 MiB).
	MaxBodyBytes int64
	// MaxInFlight caps concurrent API requests before 429 (default 512).
	MaxInFlight int
	// HeartbeatInterval is what DSNs are told to heartbeat at (default 10s).
	HeartbeatInterval time.Duration
	// MaxConcurrentSyncs bounds snapshot/sync work at admission (default 256).
	MaxConcurrentSyncs int
	// Logger receives the control plane's logs (default: discard).
	Logger *slog.Logger
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("controlplane: data directory is required")
	}
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			return fmt.Errorf("controlplane: listen %q: %w", c.Listen, err)
		}
	}
	if c.NATSURL != "" && c.NATSListen != "" {
		return errors.New("controlplane: nats-url and nats-listen are exclusive: an external NATS has its own listener")
	}
	if c.NATSListen != "" {
		if _, _, err := net.SplitHostPort(c.NATSListen); err != nil {
			return fmt.Errorf("controlplane: nats-listen %q: %w", c.NATSListen, err)
		}
	}
	if c.MaxBodyBytes < 0 || c.MaxInFlight < 0 || c.HeartbeatInterval < 0 || c.MaxConcurrentSyncs < 0 {
		return errors.New("controlplane: limits must not be negative")
	}
	return nil
}

func (c *Config) setDefaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:0"
	}
	if c.NATSURL == "" && c.NATSListen == "" {
		c.NATSListen = "127.0.0.1:0"
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 512
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = 10 * time.Second
	}
	if c.MaxConcurrentSyncs == 0 {
		c.MaxConcurrentSyncs = 256
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Server is a running control plane.
type Server struct {
	cfg      Config
	nats     *natsserver.Server // nil with an external NATS
	nc       *nats.Conn
	store    store.Store
	distrib  *distrib.Distributor
	http     *http.Server
	listener net.Listener
	natsURL  string

	cancel context.CancelFunc
	wg     sync.WaitGroup
	errMu  sync.Mutex
	runErr error
}

// Start brings the control plane up and returns once it listens. It is ready (GET /readyz
// answers 200) when Ready returns nil.
func Start(ctx context.Context, cfg Config) (_ *Server, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("controlplane: data directory: %w", err)
	}
	s := &Server{cfg: cfg}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()

	s.natsURL = cfg.NATSURL
	if s.natsURL == "" {
		ns, err := natsserver.Start(natsserver.Config{
			StoreDir: filepath.Join(cfg.DataDir, "jetstream"),
			Listen:   cfg.NATSListen,
		})
		if err != nil {
			return nil, fmt.Errorf("controlplane: embedded NATS: %w", err)
		}
		s.nats = ns
		s.natsURL = ns.URL()
	}
	s.nc, err = nats.Connect(s.natsURL,
		nats.Name("dsnscale-cp"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.ReconnectBufSize(64<<20),
	)
	if err != nil {
		return nil, fmt.Errorf("controlplane: connect to NATS at %s: %w", s.natsURL, err)
	}
	js, err := jetstream.New(s.nc, jetstream.WithDefaultTimeout(30*time.Second))
	if err != nil {
		return nil, fmt.Errorf("controlplane: JetStream: %w", err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	kv, err := store.Open(ctx, js, store.Config{Registerer: reg, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("controlplane: intent store: %w", err)
	}
	s.store = kv

	s.distrib, err = distrib.New(distrib.Config{
		Conn:               s.nc,
		JS:                 js,
		Store:              kv,
		Registerer:         reg,
		Logger:             cfg.Logger,
		HeartbeatInterval:  cfg.HeartbeatInterval,
		MaxConcurrentSyncs: cfg.MaxConcurrentSyncs,
	})
	if err != nil {
		return nil, fmt.Errorf("controlplane: distribution: %w", err)
	}

	handler, err := api.New(api.Config{
		Store:        kv,
		Fleet:        s.distrib,
		Registry:     reg,
		Logger:       cfg.Logger,
		MaxBodyBytes: cfg.MaxBodyBytes,
		MaxInFlight:  cfg.MaxInFlight,
		Ready:        s.Ready,
	})
	if err != nil {
		return nil, fmt.Errorf("controlplane: API: %w", err)
	}

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.distrib.Run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
			s.setErr(fmt.Errorf("distribution: %w", err))
			cfg.Logger.Error("distribution stopped", "err", err)
		}
	}()

	s.listener, err = net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("controlplane: listen %s: %w", cfg.Listen, err)
	}
	// Watches stream until their request context ends: BaseContext ties them to the server's
	// life so that Stop does not wait for every watcher to leave.
	s.http = &http.Server{
		BaseContext:       func(net.Listener) context.Context { return runCtx },
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.http.Serve(s.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.setErr(fmt.Errorf("http: %w", err))
		}
	}()
	cfg.Logger.Info("control plane listening", "api", s.APIURL(), "nats", s.natsURL, "data", cfg.DataDir)
	return s, nil
}

func (s *Server) setErr(err error) {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	if s.runErr == nil {
		s.runErr = err
	}
}

// Ready returns nil when the control plane can serve: the bus is connected and distribution is
// subscribed.
func (s *Server) Ready() error {
	s.errMu.Lock()
	runErr := s.runErr
	s.errMu.Unlock()
	switch {
	case runErr != nil:
		return fmt.Errorf("%w: %w", ErrNotReady, runErr)
	case s.nc == nil || !s.nc.IsConnected():
		return fmt.Errorf("%w: not connected to NATS", ErrNotReady)
	case s.distrib == nil || !s.distrib.Ready():
		return fmt.Errorf("%w: distribution not subscribed yet", ErrNotReady)
	}
	return nil
}

// WaitReady blocks until Ready returns nil or ctx ends.
func (s *Server) WaitReady(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if err := s.Ready(); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", s.Ready(), ctx.Err())
		case <-t.C:
		}
	}
}

// APIURL is the base URL of the northbound API.
func (s *Server) APIURL() string {
	if s.listener == nil {
		return ""
	}
	return "http://" + s.listener.Addr().String()
}

// NATSURL is the URL DSNs connect to.
func (s *Server) NATSURL() string { return s.natsURL }

// Stop shuts down in order: API, distribution, store, bus. It is safe to call more than once.
func (s *Server) Stop() {
	if s.http != nil {
		if s.cancel != nil {
			s.cancel() // ends watches and distribution
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.http.Shutdown(ctx); err != nil {
			_ = s.http.Close()
		}
		cancel()
		s.http = nil
	}
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	if s.store != nil {
		_ = s.store.Close()
		s.store = nil
	}
	if s.nc != nil {
		_ = s.nc.Drain()
		s.nc.Close()
		s.nc = nil
	}
	if s.nats != nil {
		s.nats.Stop()
		s.nats = nil
	}
}
