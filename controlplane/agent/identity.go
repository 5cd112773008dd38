package agent

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dsnscale/dsnscale/controlplane/client"
	"github.com/dsnscale/dsnscale/controlplane/pki"
	"github.com/dsnscale/dsnscale/controlplane/wire"
)

// ErrIdentity marks an identity that cannot be obtained, used or renewed.
var ErrIdentity = errors.New("agent: identity")

// Identity is a DSN's (or a fleet gateway's) identity on the bus: its own private key, which
// never leaves it, and the certificate the control plane's CA signed for it. It is safe for
// concurrent use; a renewal swaps the certificate, which the next connection (or reconnection)
// presents.
type Identity struct {
	name, role string
	key        crypto.Signer
	caPEM      []byte

	// The certificate is kept as DER with its validity, not parsed: a parsed certificate is
	// several kilobytes, which a fleet of ten thousand simulated DSNs pays ten thousand times.
	mu                  sync.Mutex
	certDER             []byte
	notBefore, notAfter time.Time
}

// Admit obtains an identity for name with a bootstrap token: it makes a key, sends a CSR to the
// control plane's admission route (api must reach the northbound API; no login is needed) and
// keeps the certificate it gets. role is pki.RoleDSN or, with a gateway token, pki.RoleGateway.
func Admit(ctx context.Context, api *client.Client, token, name, role string, labels map[string]string) (*Identity, error) {
	key, err := pki.NewKey()
	if err != nil {
		return nil, err
	}
	csr, err := pki.NewCSRFor(key, pki.Identity{Name: name, Role: role})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrIdentity, err)
	}
	res, err := api.Admit(ctx, client.AdmitRequest{Token: token, DSN: name, Labels: labels, CSR: string(csr)})
	if err != nil {
		return nil, fmt.Errorf("%w: admission of %s: %w", ErrIdentity, name, err)
	}
	id := &Identity{name: name, role: role, key: key, caPEM: internCA([]byte(res.CA))}
	if err := id.setCertificate([]byte(res.Certificate)); err != nil {
		return nil, err
	}
	return id, nil
}

// LoadIdentity rebuilds an identity from its certificate, key and CA (PEM), as an agent keeps
// them across restarts.
func LoadIdentity(certPEM, keyPEM, caPEM []byte) (*Identity, error) {
	key, err := pki.ParseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrIdentity, err)
	}
	id := &Identity{key: key, caPEM: internCA(caPEM)}
	if err := id.setCertificate(certPEM); err != nil {
		return nil, err
	}
	return id, nil
}

func (id *Identity) setCertificate(certPEM []byte) error {
	cert, err := pki.ParseCertificatePEM(certPEM)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrIdentity, err)
	}
	who, err := pki.IdentityOf(cert)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrIdentity, err)
	}
	pub, ok := id.key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return fmt.Errorf("%w: the certificate is not for this identity's key", ErrIdentity)
	}
	if id.name != "" && (who.Name != id.name || who.Role != id.role) {
		return fmt.Errorf("%w: the certificate names %s, want %s:%s", ErrIdentity, who, id.role, id.name)
	}
	id.mu.Lock()
	id.name, id.role, id.certDER, id.notBefore, id.notAfter = who.Name, who.Role, slices.Clone(cert.Raw), cert.NotBefore, cert.NotAfter
	id.mu.Unlock()
	return nil
}

// Name is the identity's name (the DSN id, or the gateway's name).
func (id *Identity) Name() string { return id.name }

// Role is pki.RoleDSN or pki.RoleGateway.
func (id *Identity) Role() string { return id.role }

// NotAfter is when the current certificate expires.
func (id *Identity) NotAfter() time.Time {
	id.mu.Lock()
	defer id.mu.Unlock()
	return id.notAfter
}

// RenewAt is when the current certificate is due for renewal (pki.RenewAt).
func (id *Identity) RenewAt() time.Time {
	id.mu.Lock()
	defer id.mu.Unlock()
	return pki.RenewAt(&x509.Certificate{NotBefore: id.notBefore, NotAfter: id.notAfter})
}

// PEM returns the certificate, the private key and the CA in PEM, to hand the identity to a
// process of the same holder.
func (id *Identity) PEM() (certPEM, keyPEM, caPEM []byte, err error) {
	id.mu.Lock()
	defer id.mu.Unlock()
	keyPEM, err = pki.EncodeKeyPEM(id.key)
	if err != nil {
		return nil, nil, nil, err
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: id.certDER})
	return certPEM, keyPEM, append([]byte(nil), id.caPEM...), nil
}

// TLSConfig is the client TLS configuration of the identity: its current certificate, trusting
// only the control plane's CA.
func (id *Identity) TLSConfig() (*tls.Config, error) {
	pool, err := caPool(id.caPEM)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		RootCAs:    pool,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			id.mu.Lock()
			defer id.mu.Unlock()
			return &tls.Certificate{Certificate: [][]byte{id.certDER}, PrivateKey: id.key}, nil
		},
	}, nil
}

// NATSOptions are the options of a bus connection with this identity: mutual TLS, and the inbox
// prefix its permissions allow (natsauth.InboxPrefix).
func (id *Identity) NATSOptions() ([]nats.Option, error) {
	tc, err := id.TLSConfig()
	if err != nil {
		return nil, err
	}
	return []nats.Option{nats.Secure(tc), nats.CustomInboxPrefix(InboxPrefix(id.name))}, nil
}

// InboxPrefix is the inbox prefix of the identity name: the only inboxes the bus lets it
// subscribe to.
func InboxPrefix(name string) string { return "_INBOX." + name }

// Renew asks the control plane, over nc (a connection with this identity), for a new
// certificate for a new key, and uses both from then on. Only DSN identities renew this way.
func (id *Identity) Renew(ctx context.Context, nc *nats.Conn) error {
	if id.role != pki.RoleDSN {
		return fmt.Errorf("%w: a %s identity is not renewed over the bus", ErrIdentity, id.role)
	}
	key, err := pki.NewKey()
	if err != nil {
		return err
	}
	csr, err := pki.NewCSR(key, id.name)
	if err != nil {
		return err
	}
	data, _ := json.Marshal(wire.RenewRequest{DSN: id.name, CSR: string(csr)})
	msg, err := nc.RequestWithContext(ctx, wire.RenewSubject(id.name), data)
	if err != nil {
		return fmt.Errorf("%w: renewal of %s: %w", ErrIdentity, id.name, err)
	}
	var res wire.RenewResponse
	if err := wire.Unmarshal(msg.Data, &res); err != nil {
		return fmt.Errorf("%w: renewal of %s: %w", ErrIdentity, id.name, err)
	}
	if res.Error != "" {
		return fmt.Errorf("%w: renewal of %s refused: %s", ErrIdentity, id.name, res.Error)
	}
	next := &Identity{name: id.name, role: id.role, key: key, caPEM: id.caPEM}
	if err := next.setCertificate([]byte(res.Certificate)); err != nil {
		return err
	}
	id.mu.Lock()
	id.key, id.certDER, id.notBefore, id.notAfter = key, next.certDER, next.notBefore, next.notAfter
	id.mu.Unlock()
	return nil
}

// KeepRenewed renews the identity over nc once its certificate passes pki.RenewAt (two thirds
// of its life), retrying a failed renewal every retry until ctx ends. now is the clock (nil:
// time.Now).
func (id *Identity) KeepRenewed(ctx context.Context, nc *nats.Conn, retry time.Duration, now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	if retry <= 0 {
		retry = time.Minute
	}
	renewed := false
	for {
		wait := id.RenewAt().Sub(now())
		if renewed {
			// A certificate so short-lived that it is due as soon as it is issued (its life
			// starts pki.ClockSkew early) is renewed every retry, not back to back.
			wait = max(wait, retry)
		}
		if wait > 0 && !sleep(ctx, wait) {
			return
		}
		err := id.Renew(ctx, nc)
		if renewed = err == nil; !renewed && !sleep(ctx, retry) {
			return
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// caPools holds the CA pool of each CA (by its PEM): a process with many identities under one
// control plane, a simulated fleet say, parses its CA once, not once per connection. cas
// interns the PEM itself, for the same reason.
var caPools, cas sync.Map // string -> *x509.CertPool, string -> []byte

func caPool(caPEM []byte) (*x509.CertPool, error) {
	if p, ok := caPools.Load(string(caPEM)); ok {
		return p.(*x509.CertPool), nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("%w: no CA certificate", ErrIdentity)
	}
	p, _ := caPools.LoadOrStore(string(caPEM), pool)
	return p.(*x509.CertPool), nil
}

// internCA returns the one copy of caPEM this process keeps (callers do not modify it).
func internCA(caPEM []byte) []byte {
	p, _ := cas.LoadOrStore(string(caPEM), caPEM)
	return p.([]byte)
}
