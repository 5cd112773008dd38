// Package controlplane assembles the reference control plane: the bus (an embedded nats-server
// with JetStream, or an external NATS), the intent store, southbound distribution and the
// northbound API, with its security: the control plane's own certificate authority, mutual TLS
// and per-identity permissions on the bus, DSN admission with bootstrap tokens, and on the API
// TLS, login with short-lived tokens, RBAC, rate limits and an audit trail.
package controlplane

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/dsnscale/dsnscale/controlplane/api"
	"github.com/dsnscale/dsnscale/controlplane/audit"
	"github.com/dsnscale/dsnscale/controlplane/authn"
	"github.com/dsnscale/dsnscale/controlplane/distrib"
	"github.com/dsnscale/dsnscale/controlplane/ingest"
	"github.com/dsnscale/dsnscale/controlplane/pki"
	"github.com/dsnscale/dsnscale/controlplane/pki/admission"
	"github.com/dsnscale/dsnscale/controlplane/ratelimit"
	"github.com/dsnscale/dsnscale/controlplane/rbac"
	"github.com/dsnscale/dsnscale/controlplane/store"
	"github.com/dsnscale/dsnscale/internal/natsserver"
)

// ErrNotReady is returned by readiness checks while a dependency is down.
var ErrNotReady = errors.New("control plane not ready")

// Server is a running control plane.
type Server struct {
	cfg      Config
	nats     *natsserver.Server // nil with an external NATS
	nc       *nats.Conn         // the fleet's traffic, JetStream and the rest
	ingestNC *nats.Conn         // telemetry and events
	store    store.Store
	distrib  *distrib.Distributor
	ingest   *ingest.Ingest
	http     *http.Server
	listener net.Listener
	natsURL  string
	ca       *pki.CA   // nil when insecure
	sec      *security // nil when insecure

	cancel context.CancelFunc
	wg     sync.WaitGroup
	errMu  sync.Mutex
	runErr error
	// endStreams ends the API's watches, first thing when the API stops.
	endStreams context.CancelFunc
	// draining is set while a replica that is stopping turns the load balancer away.
	draining atomic.Bool
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
	// What runs in the background lives until Stop, whatever ctx does after Start returns.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	// Watches end apart from, and before, the other requests: Stop ends them, then lets the
	// rest finish.
	streams, endStreams := context.WithCancel(context.Background())
	s.endStreams = endStreams

	if !cfg.Insecure {
		if s.ca, err = openCA(cfg); err != nil {
			return nil, err
		}
	}
	s.natsURL = cfg.NATSURL
	if s.natsURL == "" {
		nc := natsserver.Config{StoreDir: filepath.Join(cfg.DataDir, "jetstream"), Listen: cfg.NATSListen,
			Cluster: cfg.Cluster.natsCluster()}
		if s.ca != nil {
			if nc.Configure, err = busAuth(cfg, s.ca); err != nil {
				return nil, err
			}
			if cfg.Cluster.Enabled() {
				clientAuth := nc.Configure
				routes, err := routeTLS(s.ca, cfg.TLSHosts)
				if err != nil {
					return nil, err
				}
				nc.Configure = func(o *server.Options) error {
					if err := clientAuth(o); err != nil {
						return err
					}
					return routes(o)
				}
			}
		}
		ns, err := natsserver.Start(nc)
		if err != nil {
			return nil, fmt.Errorf("controlplane: embedded NATS: %w", err)
		}
		s.nats = ns
		s.natsURL = ns.URL()
		if cfg.Cluster.Enabled() {
			if err := s.joinCluster(); err != nil {
				return nil, err
			}
		}
	}
	busOpts, err := busOptions(s.ca, s.natsURL)
	if err != nil {
		return nil, err
	}
	connect := func(name string) (*nats.Conn, error) {
		nc, err := nats.Connect(s.natsURL, append([]nats.Option{
			nats.Name(name),
			nats.MaxReconnects(-1),
			nats.ReconnectWait(250 * time.Millisecond),
			nats.ReconnectBufSize(64 << 20),
		}, busOpts...)...)
		if err != nil {
			return nil, fmt.Errorf("controlplane: connect to NATS at %s: %w", s.natsURL, err)
		}
		return nc, nil
	}
	if s.nc, err = connect("dsnscale-cp"); err != nil {
		return nil, err
	}
	// Telemetry and events come in on a connection of their own. On the one that carries
	// Hellos, acks and JetStream replies they would queue ahead of them: under a fleet-wide
	// burst of telemetry, admission and distribution would wait behind it.
	if s.ingestNC, err = connect("dsnscale-cp-ingest"); err != nil {
		return nil, err
	}
	var js jetstream.JetStream
	js, err = jetstream.New(s.nc, jetstream.WithDefaultTimeout(30*time.Second))
	if err != nil {
		return nil, fmt.Errorf("controlplane: JetStream: %w", err)
	}
	replicas := cfg.replicas()
	if cfg.Cluster.Enabled() || cfg.NATSURL != "" {
		// A cluster that has just elected its meta leader may still drop requests while its
		// routes settle: the stores are created once JetStream answers.
		timeout := cmp.Or(cfg.Cluster.JoinTimeout, DefaultJoinTimeout)
		wctx, cancel := context.WithTimeout(ctx, timeout)
		err := natsserver.WaitJetStream(wctx, js)
		cancel()
		if err != nil {
			if cfg.Cluster.Enabled() {
				return nil, fmt.Errorf("%w: %w", ErrClusterNotFormed, err)
			}
			return nil, fmt.Errorf("controlplane: JetStream at %s: %w", s.natsURL, err)
		}
	}
	if replicas > 1 {
		js = replicated{JetStream: js, n: replicas}
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// Telemetry, events and inventory go to their backends through bounded queues: a slow or
	// dead backend drops and counts, it never holds up distribution.
	s.ingest, err = ingest.Start(ctx, ingest.Config{Conn: s.ingestNC, DataDir: cfg.DataDir, TSDBURL: cfg.TSDBURL,
		SearchURL: cfg.SearchURL, InventoryURL: cfg.InventoryURL, Registerer: reg, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("controlplane: %w", err)
	}
	if cfg.AuditIndex == nil {
		cfg.AuditIndex = s.ingest.SearchIndex()
	}

	kv, err := store.Open(ctx, js, store.Config{Registerer: reg, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("controlplane: intent store: %w", err)
	}
	s.store = kv
	if replicas > 1 {
		// Other replicas write the bucket too: this one's view follows them.
		if err := kv.Follow(runCtx); err != nil {
			return nil, fmt.Errorf("controlplane: intent store: %w", err)
		}
	}

	// With security on, a DSN's tenant and labels are those admission recorded.
	var ids *admission.Identities
	var identities distrib.Identities
	if s.ca != nil {
		if ids, err = admission.OpenIdentities(ctx, js, ""); err != nil {
			return nil, fmt.Errorf("controlplane: identities: %w", err)
		}
		// The watch lives as long as the server: attempts are not bounded by retryCreate's.
		view, err := retryIfReplicated(ctx, replicas, func(context.Context) (*admission.IdentityView, error) {
			return ids.Watch(runCtx, cfg.Logger)
		})
		if err != nil {
			return nil, fmt.Errorf("controlplane: identities: %w", err)
		}
		identities = admittedIdentities{view}
	}
	s.distrib, err = distrib.New(distrib.Config{
		Identities:         identities,
		Conn:               s.nc,
		JS:                 js,
		Store:              kv,
		Registerer:         reg,
		Logger:             cfg.Logger,
		HeartbeatInterval:  cfg.HeartbeatInterval,
		MaxConcurrentSyncs: cfg.MaxConcurrentSyncs,
		CoalesceWindow:     cfg.CoalesceWindow,
		OfflineAfter:       cfg.OfflineAfter,
		StragglerDeadline:  cfg.StragglerDeadline,
		SyncTimeout:        cfg.SyncTimeout,
		Observer:           s.ingest,
		Replicas:           replicas,
		Replica:            cfg.Replica,
	})
	if err != nil {
		return nil, fmt.Errorf("controlplane: distribution: %w", err)
	}
	if err := s.ingest.TrackFleet(s.distrib); err != nil {
		return nil, fmt.Errorf("controlplane: inventory: %w", err)
	}

	var fleet api.Fleet = s.distrib
	if s.ca != nil {
		fleet = decommissioning{Fleet: s.distrib, ca: s.ca, ids: ids, bus: s.nats, log: cfg.Logger}
	}
	var handler http.Handler
	handler, err = api.New(api.Config{
		Store:        kv,
		Fleet:        fleet,
		Registry:     reg,
		Logger:       cfg.Logger,
		MaxBodyBytes: cfg.MaxBodyBytes,
		MaxInFlight:  cfg.MaxInFlight,
		Ready:        s.Ready,
		Streams:      streams,
	})
	if err != nil {
		return nil, fmt.Errorf("controlplane: API: %w", err)
	}
	routes := http.NewServeMux()
	routes.Handle("/", handler)
	routes.Handle("GET "+rbac.APIPrefix+"/cluster", s.clusterHandler())
	ingest.Mount(routes, s.ingest.Handler())
	handler = routes
	if s.ca != nil {
		if s.sec, err = openSecurity(ctx, runCtx, cfg, s.ca, js, ids); err != nil {
			return nil, err
		}
		if err := s.sec.register(reg); err != nil {
			return nil, err
		}
		if handler, err = s.sec.handler(cfg, kv, handler); err != nil {
			return nil, err
		}
		if _, err := s.sec.renewals(s.nc, cfg.Logger); err != nil {
			return nil, fmt.Errorf("controlplane: renewals: %w", err)
		}
	}

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
	// Requests are not tied to runCtx: a request under way when Stop comes finishes (within
	// the shutdown's bound) rather than fail because distribution stopped first.
	s.http = &http.Server{
		Handler: s.closeWhileDraining(handler),
		// TLS handshakes that fail (a client that does not trust the CA, say) are the
		// client's business: log them at debug, not on stderr.
		ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
	}
	ratelimit.DefaultServerLimits().Apply(s.http)
	l := s.listener
	if s.sec != nil {
		l = tls.NewListener(l, s.sec.apiTLS)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.http.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
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

// Ready returns nil when the control plane can serve: the bus is connected, distribution is
// subscribed and, in cluster mode, the cluster has a JetStream meta leader.
func (s *Server) Ready() error {
	s.errMu.Lock()
	runErr := s.runErr
	s.errMu.Unlock()
	switch {
	case s.draining.Load():
		return fmt.Errorf("%w: stopping; other replicas take the requests", ErrNotReady)
	case runErr != nil:
		return fmt.Errorf("%w: %w", ErrNotReady, runErr)
	case s.nc == nil || !s.nc.IsConnected():
		return fmt.Errorf("%w: not connected to NATS", ErrNotReady)
	case s.distrib == nil || !s.distrib.Ready():
		return fmt.Errorf("%w: distribution not subscribed yet", ErrNotReady)
	case s.nats != nil && s.cfg.Cluster.Enabled() && s.nats.MetaLeader() == "":
		return fmt.Errorf("%w: the cluster has no JetStream meta leader (%d of %d peers reachable)", ErrNotReady,
			len(s.routeRemotes()), len(s.cfg.Cluster.Peers))
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

// APIURL is the base URL of the northbound API: https://host:port, or http://host:port when
// insecure.
func (s *Server) APIURL() string {
	if s.listener == nil {
		return ""
	}
	if s.cfg.Insecure {
		return "http://" + s.listener.Addr().String()
	}
	return "https://" + s.listener.Addr().String()
}

// Ownership reports which replica serves which partition of the DSNs; ok is false when the
// control plane is not one of several replicas (Config.Replica empty) or has not started.
func (s *Server) Ownership() (r distrib.OwnershipReport, ok bool) {
	if s.distrib == nil {
		return distrib.OwnershipReport{}, false
	}
	return s.distrib.Ownership()
}

// DistributedRevision is the store revision the distributor has processed: what a Hello is
// answered at. It trails the store by at most the coalescing window while the bus is up.
func (s *Server) DistributedRevision() uint64 {
	if s.distrib == nil {
		return 0
	}
	return s.distrib.Revision()
}

// NATSURL is the URL DSNs connect to: tls://host:port when the bus requires mutual TLS.
func (s *Server) NATSURL() string { return s.natsURL }

// Insecure reports whether the control plane runs without security.
func (s *Server) Insecure() bool { return s.cfg.Insecure }

// CAFile is the path of the CA's root certificate (PEM), the trust anchor of the API and the
// bus; "" when insecure.
func (s *Server) CAFile() string {
	if s.ca == nil {
		return ""
	}
	return filepath.Join(s.cfg.caDir(), pki.CertFile)
}

// CAPEM is the CA's root certificate in PEM; nil when insecure.
func (s *Server) CAPEM() []byte {
	if s.ca == nil {
		return nil
	}
	return s.ca.CertPEM()
}

// ClientTLS is a TLS configuration for clients of the API and the bus that trusts the control
// plane's CA; nil when insecure. With an operator's API certificate (TLSCertFile), API clients
// trust that certificate's issuer instead.
func (s *Server) ClientTLS() *tls.Config {
	if s.ca == nil {
		return nil
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: s.ca.Pool()}
}

// BusTLS is the TLS configuration of a privileged client of the bus running next to the control
// plane (a tool, a test): a client certificate with the control-plane role for name. Nil and
// no error when insecure.
func (s *Server) BusTLS(name string) (*tls.Config, error) {
	if s.ca == nil {
		return nil, nil
	}
	return s.ca.ControlPlaneTLSConfig(name, 0)
}

// AdminCredentials returns the first admin's user name and password, as the password file
// holds it (DataDir/admin-password, or AdminPasswordFile).
func (s *Server) AdminCredentials() (user, password string, err error) {
	if s.sec == nil {
		return "", "", errors.New("controlplane: insecure: there are no users")
	}
	pw, err := readAdminPassword(s.sec.adminFile)
	if err != nil {
		return "", "", err
	}
	return authn.DefaultAdminUser, pw, nil
}

// AuditStats counts the audit records: recorded, dropped (the queue to the search backend was
// full), written and lost in failed writes. Zero when insecure.
func (s *Server) AuditStats() audit.Stats {
	if s.sec == nil || s.sec.recorder == nil {
		return audit.Stats{}
	}
	return s.sec.recorder.Stats()
}

// AdminPasswordFile is the file holding the first admin's password; "" when insecure.
func (s *Server) AdminPasswordFile() string {
	if s.sec == nil {
		return ""
	}
	return s.sec.adminFile
}

// closeWhileDraining asks clients to close the connection after each answer while the replica
// drains: a client told so opens its next connection through the load balancer to another
// replica, instead of keeping one that the replica will close when it stops (a request sent on
// it just then would fail).
func (s *Server) closeWhileDraining(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.draining.Load() {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
}

// Stop shuts down in order: API, distribution, store, bus. It is safe to call more than once.
func (s *Server) Stop() {
	if s.http != nil && s.cfg.Cluster.Enabled() {
		// A replica leaving its cluster first turns away the load balancer's health check, so
		// that new requests go to the others while it still serves what it has.
		s.draining.Store(true)
		delay := s.cfg.Cluster.DrainDelay
		if delay == 0 {
			delay = DefaultDrainDelay
		}
		s.cfg.Logger.Info("draining: /readyz answers 503 before the API stops", "for", delay)
		time.Sleep(delay)
	}
	if s.http != nil {
		s.endStreams()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.http.Shutdown(ctx); err != nil {
			_ = s.http.Close()
		}
		cancel()
		s.http = nil
	}
	if s.endStreams != nil {
		s.endStreams()
	}
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	if s.sec != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		s.sec.close(ctx)
		cancel()
		s.sec = nil
	}
	if s.ingest != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := s.ingest.Close(ctx); err != nil {
			s.cfg.Logger.Warn("backends not flushed", "err", err)
		}
		cancel()
		s.ingest = nil
	}
	if s.store != nil {
		_ = s.store.Close()
		s.store = nil
	}
	for _, nc := range []**nats.Conn{&s.ingestNC, &s.nc} {
		if *nc != nil {
			_ = (*nc).Drain()
			(*nc).Close()
			*nc = nil
		}
	}
	if s.nats != nil {
		// A replica hands its JetStream leaderships over as it leaves, so that the others do
		// not wait out an election timeout to write again.
		s.nats.Handover()
		s.nats = nil
	}
}
