package controlplane

import (
	"errors"
	"fmt"
	"github.com/dsnscale/dsnscale/controlplane/audit"
	"github.com/dsnscale/dsnscale/controlplane/ingest"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/authn"
	"github.com/dsnscale/dsnscale/controlplane/distrib"
	"github.com/dsnscale/dsnscale/controlplane/pki"
	"github.com/dsnscale/dsnscale/search"
)

// ErrConfig marks an invalid Config.
var ErrConfig = errors.New("controlplane: invalid config")

// Config is the control plane's configuration: pure data (a logger, a clock and an optional
// search index apart), checked by Validate.
//
// Security is on unless Insecure is set: the northbound API is served over TLS and every call
// is authenticated (JWT), authorized (RBAC), rate limited and audited; the southbound bus
// requires mutual TLS with identities from the control plane's CA and confines each DSN to its
// own subjects.
type Config struct {
	// DataDir holds everything the control plane keeps: the JetStream file store when NATS is
	// embedded, the CA (DataDir/ca), the generated admin password (DataDir/admin-password) and
	// the embedded audit index (DataDir/search/audit). Required.
	DataDir string
	// Listen is the northbound API's host:port ("127.0.0.1:0" picks a free port).
	Listen string
	// NATSListen is where the embedded NATS server listens for DSNs ("127.0.0.1:0" by default).
	NATSListen string
	// NATSURL, when set, uses an external NATS (with JetStream) instead of the embedded one. Its
	// client authentication is the operator's: the control plane cannot confine DSNs on it.
	NATSURL string
	// MaxBodyBytes caps request bodies (default 1 MiB).
	MaxBodyBytes int64
	// MaxInFlight caps concurrent API requests before 429 (default 512).
	MaxInFlight int
	// HeartbeatInterval is what DSNs are told to heartbeat at (default 10s).
	HeartbeatInterval time.Duration
	// MaxConcurrentSyncs bounds snapshot/sync work at admission (default 256).
	MaxConcurrentSyncs int
	// CoalesceWindow: intent changes within this long of the first are pushed as one delta
	// per DSN group (default distrib.DefaultCoalesceWindow, at most distrib.MaxCoalesceWindow;
	// distrib.NoCoalescing turns it off).
	CoalesceWindow time.Duration
	// OfflineAfter, StragglerDeadline and SyncTimeout are the distributor's timings (see
	// distrib.Config; 0 means its defaults: 3 heartbeat intervals, 30 s, 2 straggler deadlines).
	OfflineAfter, StragglerDeadline, SyncTimeout time.Duration
	// Replica, when set, names this control plane among replicas that share one bus and one
	// set of buckets, and splits the DSNs between them: each serves the partitions it leases
	// (distrib.Config.Replica). Empty serves every DSN, as a single control plane.
	Replica string
	// Logger receives the control plane's logs (default: discard).
	Logger *slog.Logger

	// Insecure turns security off: plain HTTP northbound with no authentication, RBAC, audit or
	// rate limits, and plain NATS southbound where any client may use any subject. Only for an
	// explicit opt-out (`dsnscale cp serve --insecure`).
	Insecure bool
	// TLSCertFile and TLSKeyFile, when set, are the PEM certificate chain and key the API
	// serves instead of a certificate from the control plane's CA.
	TLSCertFile, TLSKeyFile string
	// TLSHosts are the names and addresses put in the certificates the CA issues for the API
	// and the bus; empty means 127.0.0.1 and localhost, plus the hosts of Listen and NATSListen
	// when they name one.
	TLSHosts []string
	// AdminPasswordFile, when set, holds the first admin's password; otherwise one is generated
	// on first start and written to DataDir/admin-password (mode 0600).
	AdminPasswordFile string
	// TokenTTL is the lifetime of API tokens (default 15 min, at most 24 h).
	TokenTTL time.Duration
	// CertTTL is the lifetime of the certificates issued to DSNs (default 24 h).
	CertTTL time.Duration
	// RateLimits are the API's rate limits; the zero value means the defaults.
	RateLimits RateLimits
	// AuditMode is audit.ModeDurable (empty means it: a call is answered once its audit record
	// is stored in a JetStream stream, and indexed into search from there) or audit.ModeBounded
	// (records queue for search without holding calls; a full queue drops them).
	AuditMode string
	// AuditQueue is how many records may wait for the search backend in bounded mode before
	// more are dropped (default 50000).
	AuditQueue int
	// BcryptCost is the cost of password hashes (default bcrypt's, 10).
	BcryptCost int
	// TSDBURL, SearchURL and InventoryURL are the backends DSN telemetry, events and the
	// inventory go to; empty means embedded under DataDir (see package ingest for the URLs).
	TSDBURL, SearchURL, InventoryURL string
	// AuditIndex, when set, is where audit records go (the search backend the rest of the
	// control plane uses); otherwise an embedded index under DataDir/search/audit.
	AuditIndex search.Index
	// Clock reads the time for certificates, tokens, rate limits and audit records (default
	// time.Now).
	Clock func() time.Time

	// Cluster, when its Name is set, makes this control plane one replica of several on a NATS
	// cluster of their embedded servers (see ClusterConfig).
	Cluster ClusterConfig
	// Replicas is the replica count of the buckets, object stores and streams the control plane
	// creates: 0 means 1, or ClusterReplicas in cluster mode. With an external NATS cluster
	// (NATSURL listing its servers, comma separated) set it to the replication wanted there.
	Replicas int
	// CADir is the CA's directory (default DataDir/ca), created with a new CA when it holds
	// none. Replicas share one CA: give them the same directory, or copies of the first one's.
	CADir string
}

// MaxReplicas is the most replicas JetStream keeps of a stream.
const MaxReplicas = 5

// replicas is the replica count of what the control plane creates.
func (c Config) replicas() int {
	switch {
	case c.Replicas > 0:
		return c.Replicas
	case c.Cluster.Enabled():
		return ClusterReplicas
	}
	return 1
}

// caDir is the CA's directory.
func (c Config) caDir() string {
	if c.CADir != "" {
		return c.CADir
	}
	return filepath.Join(c.DataDir, CADir)
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.DataDir == "" {
		return fmt.Errorf("%w: data directory is required", ErrConfig)
	}
	if err := ingest.ValidateURLs(c.TSDBURL, c.SearchURL, c.InventoryURL); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if c.AuditMode != "" && c.AuditMode != audit.ModeDurable && c.AuditMode != audit.ModeBounded {
		return fmt.Errorf("%w: audit mode %q: want %q or %q", ErrConfig, c.AuditMode, audit.ModeDurable, audit.ModeBounded)
	}
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			return fmt.Errorf("%w: listen %q: %w", ErrConfig, c.Listen, err)
		}
	}
	if c.Replicas < 0 || c.Replicas > MaxReplicas {
		return fmt.Errorf("%w: replicas %d: want 1 to %d", ErrConfig, c.Replicas, MaxReplicas)
	}
	if err := c.Cluster.validate(c); err != nil {
		return err
	}
	if c.NATSURL != "" && c.NATSListen != "" {
		return fmt.Errorf("%w: nats-url and nats-listen are exclusive: an external NATS has its own listener", ErrConfig)
	}
	if c.NATSListen != "" {
		if _, _, err := net.SplitHostPort(c.NATSListen); err != nil {
			return fmt.Errorf("%w: nats-listen %q: %w", ErrConfig, c.NATSListen, err)
		}
	}
	if c.MaxBodyBytes < 0 || c.MaxInFlight < 0 || c.HeartbeatInterval < 0 || c.MaxConcurrentSyncs < 0 ||
		c.OfflineAfter < 0 || c.StragglerDeadline < 0 || c.SyncTimeout < 0 || c.AuditQueue < 0 {
		return fmt.Errorf("%w: limits must not be negative", ErrConfig)
	}
	if c.CoalesceWindow > distrib.MaxCoalesceWindow || c.CoalesceWindow < 0 && c.CoalesceWindow != distrib.NoCoalescing {
		return fmt.Errorf("%w: coalesce window %s: want 0 (the default, %s) to %s, or %s to turn it off",
			ErrConfig, c.CoalesceWindow, distrib.DefaultCoalesceWindow, distrib.MaxCoalesceWindow, time.Duration(distrib.NoCoalescing))
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return fmt.Errorf("%w: tls-cert and tls-key go together", ErrConfig)
	}
	if c.Insecure {
		switch {
		case c.TLSCertFile != "":
			return fmt.Errorf("%w: insecure (plain HTTP) and a TLS certificate contradict each other", ErrConfig)
		case c.AdminPasswordFile != "":
			return fmt.Errorf("%w: insecure has no users: an admin password file has no effect", ErrConfig)
		}
	}
	if c.TokenTTL != 0 && (c.TokenTTL < time.Second || c.TokenTTL > authn.MaxTokenTTL) {
		return fmt.Errorf("%w: token TTL %s: want 1s to %s", ErrConfig, c.TokenTTL, authn.MaxTokenTTL)
	}
	if c.CertTTL != 0 && (c.CertTTL < pki.MinLeafTTL || c.CertTTL > pki.MaxLeafTTL) {
		return fmt.Errorf("%w: certificate TTL %s: want %s to %s", ErrConfig, c.CertTTL, pki.MinLeafTTL, pki.MaxLeafTTL)
	}
	for i, h := range c.TLSHosts {
		if h == "" {
			return fmt.Errorf("%w: TLSHosts[%d] is empty", ErrConfig, i)
		}
	}
	if c.BcryptCost != 0 && (c.BcryptCost < 4 || c.BcryptCost > 31) {
		return fmt.Errorf("%w: bcrypt cost %d: want 4 to 31", ErrConfig, c.BcryptCost)
	}
	return c.RateLimits.validate()
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
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if len(c.TLSHosts) == 0 {
		c.TLSHosts = []string{"127.0.0.1", "localhost"}
		for _, addr := range []string{c.Listen, c.NATSListen, c.Cluster.Listen} {
			if h, _, err := net.SplitHostPort(addr); err == nil && h != "" && !isAnyOrKnown(h, c.TLSHosts) {
				c.TLSHosts = append(c.TLSHosts, h)
			}
		}
	}
	c.RateLimits = c.RateLimits.withDefaults()
}

// isAnyOrKnown reports whether host is a wildcard address (no name to put in a certificate) or
// already among hosts.
func isAnyOrKnown(host string, hosts []string) bool {
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return true
	}
	for _, h := range hosts {
		if h == host {
			return true
		}
	}
	return false
}
