// Package natsauth configures a nats-server for the southbound side of the control plane: every
// client connection is mutual TLS with a certificate from the control plane's CA, and each
// identity gets permissions of its own. A DSN may publish and subscribe only on its own subjects
// (see package wire); a control-plane component may do anything.
//
// It plugs into the server as its custom client authentication rather than as a static user list
// (verify_and_map), so that a DSN admitted a moment ago can connect without a configuration
// reload, a revoked identity is refused at its next connection, and a connection is closed when
// its certificate expires.
//
// A DSN connects with pki.ClientTLSConfig (its certificate, its own key, the CA's root) and must
// use InboxPrefix(id) as its inbox prefix, since it may subscribe only to its own inboxes. A
// control-plane component connects with a certificate from CA.ClientCert.
package natsauth

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/dsnscale/dsnscale/controlplane/pki"
	"github.com/dsnscale/dsnscale/controlplane/wire"
)

// ErrConfig marks an invalid Config.
var ErrConfig = errors.New("natsauth: invalid config")

// DefaultServerCertTTL is the lifetime of the server's certificates; each is replaced by a fresh
// one after two thirds of it.
const DefaultServerCertTTL = 24 * time.Hour

// DefaultHosts are the names put in the server certificate when Config.Hosts is empty.
var DefaultHosts = []string{"127.0.0.1", "localhost"}

// Config configures the southbound authentication. It is pure data but for the CA.
type Config struct {
	// CA issues the server's certificate and verifies clients'. Required.
	CA *pki.CA
	// Hosts are the names and addresses clients reach the server by, put in its certificate.
	// Empty means DefaultHosts.
	Hosts []string
	// ServerCertTTL is the lifetime of the server certificate; 0 means DefaultServerCertTTL.
	ServerCertTTL time.Duration
	// SnapshotBucket is the object store bucket DSNs may read snapshots from; empty means
	// wire.SnapshotBucket.
	SnapshotBucket string
	// Permissions gives the permissions of an identity; nil means DefaultPermissions. A nil
	// result means no restriction at all.
	Permissions func(id pki.Identity) *server.Permissions
	// Logger logs refused connections. Optional: nil uses slog.Default().
	Logger *slog.Logger
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case c.CA == nil:
		return fmt.Errorf("%w: CA is required", ErrConfig)
	case c.ServerCertTTL != 0 && (c.ServerCertTTL < pki.MinLeafTTL || c.ServerCertTTL > pki.MaxLeafTTL):
		return fmt.Errorf("%w: ServerCertTTL %s: want %s to %s", ErrConfig, c.ServerCertTTL, pki.MinLeafTTL, pki.MaxLeafTTL)
	}
	return nil
}

// Authenticator is the server's custom client authentication. It is safe for concurrent use.
type Authenticator struct {
	cfg   Config
	perms func(pki.Identity) *server.Permissions
	log   *slog.Logger
}

var _ server.Authentication = (*Authenticator)(nil)

// New builds an Authenticator.
func New(cfg Config) (*Authenticator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(cfg.Hosts) == 0 {
		cfg.Hosts = DefaultHosts
	}
	if cfg.ServerCertTTL == 0 {
		cfg.ServerCertTTL = DefaultServerCertTTL
	}
	if cfg.SnapshotBucket == "" {
		cfg.SnapshotBucket = wire.SnapshotBucket
	}
	a := &Authenticator{cfg: cfg, perms: cfg.Permissions, log: cfg.Logger}
	if a.perms == nil {
		bucket := cfg.SnapshotBucket
		a.perms = func(id pki.Identity) *server.Permissions { return DefaultPermissions(id, bucket) }
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	return a, nil
}

// Apply sets the client TLS and authentication fields of opts: TLS with a rotating server
// certificate from the CA, client certificates required and verified (revoked ones refused in
// the handshake), no plain-text clients, and this Authenticator as the custom client
// authentication. Other fields are left alone.
func (a *Authenticator) Apply(opts *server.Options) error {
	tc, err := a.cfg.CA.ServerTLSConfig(a.cfg.Hosts, a.cfg.ServerCertTTL, true)
	if err != nil {
		return fmt.Errorf("natsauth: server TLS: %w", err)
	}
	opts.TLSConfig = tc
	opts.TLSVerify = true
	opts.AllowNonTLS = false
	if opts.TLSTimeout == 0 {
		opts.TLSTimeout = 2
	}
	opts.CustomClientAuthentication = a
	return nil
}

// Check implements server.Authentication: it accepts a client connection whose verified
// certificate names an identity that is not revoked, and registers it as the user
// "<role>:<name>" (see Username) with that identity's permissions, disconnected when the
// certificate expires.
func (a *Authenticator) Check(c server.ClientAuthentication) bool {
	if c.Kind() != server.CLIENT {
		return false
	}
	state := c.GetTLSConnectionState()
	if state == nil || len(state.PeerCertificates) == 0 {
		a.log.Warn("southbound connection refused: no client certificate", "remote", remote(c))
		return false
	}
	// The handshake verified the chain (Apply asks it to); it is not verified again.
	id, err := a.cfg.CA.VerifyConnection(state)
	if err != nil {
		a.log.Warn("southbound connection refused", "remote", remote(c), "err", err)
		return false
	}
	c.RegisterUser(&server.User{
		Username:           Username(id),
		Permissions:        a.perms(id),
		ConnectionDeadline: state.PeerCertificates[0].NotAfter,
	})
	return true
}

func remote(c server.ClientAuthentication) string {
	if addr := c.RemoteAddress(); addr != nil {
		return addr.String()
	}
	return ""
}

// Username is the user name a connection with identity id has on the server ("dsn:<id>",
// "control-plane:<name>"), as its monitoring and Disconnect know it.
func Username(id pki.Identity) string { return id.String() }

// InboxPrefix is the inbox prefix a DSN (or a gateway) must use for request/reply
// (nats.CustomInboxPrefix): it may subscribe to its own inboxes only.
func InboxPrefix(dsn string) string { return "_INBOX." + dsn }

// IsInboxOf reports whether reply is one of dsn's inboxes.
func IsInboxOf(dsn, reply string) bool {
	p := InboxPrefix(dsn) + "."
	return len(reply) > len(p) && reply[:len(p)] == p
}

// DefaultPermissions are the permissions of an identity: none of the restrictions for a
// control-plane component, DSNPermissions for a DSN, GatewayPermissions for a fleet gateway.
// snapshotBucket is the base name of the snapshot buckets: a DSN admitted into a tenant may
// read that tenant's bucket only (TenantBucket), so that the bus refuses it another tenant's
// snapshots; an identity with no tenant reads the base bucket.
func DefaultPermissions(id pki.Identity, snapshotBucket string) *server.Permissions {
	switch id.Role {
	case pki.RoleControlPlane:
		return nil
	case pki.RoleGateway:
		return GatewayPermissions(id.Name, snapshotBucket)
	}
	return DSNPermissions(id.Name, TenantBucket(snapshotBucket, id.Tenant))
}

// TenantBucket is the snapshot bucket of tenant under the base name base (see
// wire.SnapshotBucketFor): base itself for no tenant.
func TenantBucket(base, tenant string) string {
	if tenant == "" {
		return base
	}
	return base + "_" + tenant
}

// snapshotReads are the JetStream API subjects that read the snapshot object store.
func snapshotReads(snapshotBucket string) []string {
	stream := "OBJ_" + snapshotBucket
	return []string{
		"$JS.API.STREAM.INFO." + stream,
		"$JS.API.STREAM.MSG.GET." + stream,
		"$JS.API.DIRECT.GET." + stream,
		"$JS.API.DIRECT.GET." + stream + ".>",
		"$JS.API.CONSUMER.CREATE." + stream,
		"$JS.API.CONSUMER.CREATE." + stream + ".>",
		"$JS.API.CONSUMER.INFO." + stream + ".*",
		"$JS.API.CONSUMER.DELETE." + stream + ".*",
		"$JS.FC." + stream + ".>",
	}
}

// DSNPermissions are the permissions of DSN dsn:
//
//   - publish: its own per-DSN subjects (hello, ack, heartbeat, telemetry, events, renew and any
//     later one) except its push subject, which only the control plane sends on; and the
//     JetStream API calls that read the snapshot bucket;
//   - subscribe: its own push subject and its own inboxes (see InboxPrefix).
//
// Everything else, another DSN's subjects above all, is refused by the server. Since a DSN may
// publish only under its own id, a request on one of its subjects (a Hello, a renewal) is known
// to come from that DSN.
func DSNPermissions(dsn, snapshotBucket string) *server.Permissions {
	return &server.Permissions{
		Publish: &server.SubjectPermission{
			Allow: append([]string{"dsn.v1.dsn." + dsn + ".*"}, snapshotReads(snapshotBucket)...),
			Deny:  []string{wire.PushSubject(dsn)},
		},
		Subscribe: &server.SubjectPermission{
			Allow: []string{wire.PushSubject(dsn), InboxPrefix(dsn) + ".>"},
		},
	}
}

// GatewayPermissions are the permissions of the fleet gateway name: one connection speaking
// for many simulated DSNs. It may publish on every DSN's subjects but their push and renew
// subjects (it cannot obtain a DSN's certificate), read the base snapshot bucket (the DSNs it
// speaks for have no admission record, hence no tenant), and subscribe to
// every DSN's push subject and to its own inboxes. It can therefore act as any DSN on the bus:
// a simulation-only trust level (docs/PROTOCOL.md, Fleet gateways).
func GatewayPermissions(name, snapshotBucket string) *server.Permissions {
	return &server.Permissions{
		Publish: &server.SubjectPermission{
			Allow: append([]string{"dsn.v1.dsn.*.*"}, snapshotReads(snapshotBucket)...),
			Deny:  []string{wire.AllPushes, wire.AllRenewals},
		},
		Subscribe: &server.SubjectPermission{
			Allow: []string{wire.AllPushes, InboxPrefix(name) + ".>"},
		},
	}
}

// Disconnect closes every connection of the identity id on s (a decommissioned DSN: its
// certificate revoked, it is refused when it reconnects). It returns how many it closed.
func Disconnect(s *server.Server, id pki.Identity) (int, error) {
	conns, err := s.Connz(&server.ConnzOptions{User: Username(id), Limit: 1 << 20})
	if err != nil {
		return 0, fmt.Errorf("natsauth: listing connections of %s: %w", id, err)
	}
	n := 0
	for _, ci := range conns.Conns {
		if err := s.DisconnectClientByID(ci.Cid); err == nil {
			n++
		}
	}
	return n, nil
}
