package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net/url"
	"sync"
	"time"
)

// RenewFraction is the part of a leaf's lifetime after which it should be renewed.
const RenewFraction = 2.0 / 3.0

// NewKey makes an ECDSA P-256 private key.
func NewKey() (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generating key: %w", err)
	}
	return key, nil
}

// NewCSR makes the PEM certificate signing request a DSN sends to be given the identity name:
// CN = name and the identity's URI SAN, signed with key.
func NewCSR(key crypto.Signer, name string) ([]byte, error) {
	return NewCSRFor(key, Identity{Name: name, Role: RoleDSN})
}

// NewCSRFor makes the PEM certificate signing request for the identity id (a DSN or a fleet
// gateway): CN = id.Name and the identity's URI SAN, signed with key.
func NewCSRFor(key crypto.Signer, id Identity) ([]byte, error) {
	if msg := CheckName(id.Name); msg != "" {
		return nil, fmt.Errorf("%w: identity: %s", ErrInvalid, msg)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: id.Name},
		URIs:    []*url.URL{id.URI()},
	}, key)
	if err != nil {
		return nil, fmt.Errorf("pki: creating CSR: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// EncodeKeyPEM encodes a private key as a PEM "PRIVATE KEY" (PKCS #8) block.
func EncodeKeyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("pki: encoding key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseKeyPEM decodes a PEM "PRIVATE KEY" (PKCS #8) block.
func ParseKeyPEM(data []byte) (crypto.Signer, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%w: no PEM \"PRIVATE KEY\" block", ErrInvalid)
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: private key: %v", ErrInvalid, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: private key of type %T cannot sign", ErrInvalid, k)
	}
	return s, nil
}

// ParseCertificatePEM decodes one PEM certificate, with nothing after it.
func ParseCertificatePEM(data []byte) (*x509.Certificate, error) {
	b, rest := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%w: no PEM \"CERTIFICATE\" block", ErrInvalid)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%w: data after the certificate", ErrInvalid)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: certificate: %v", ErrInvalid, err)
	}
	return c, nil
}

// RenewAt is when a holder should renew cert: after RenewFraction of its lifetime, so that a
// renewal that fails can be retried for the last third before the certificate expires.
func RenewAt(cert *x509.Certificate) time.Time {
	life := cert.NotAfter.Sub(cert.NotBefore)
	return cert.NotBefore.Add(time.Duration(float64(life) * RenewFraction))
}

// NeedsRenewal reports whether cert should be renewed at now.
func NeedsRenewal(cert *x509.Certificate, now time.Time) bool { return !now.Before(RenewAt(cert)) }

// ClientTLSConfig is the TLS configuration of a DSN connecting with its identity: certificate
// certPEM for key, trusting only the CA in rootPEM.
func ClientTLSConfig(certPEM []byte, key crypto.Signer, rootPEM []byte) (*tls.Config, error) {
	leaf, err := ParseCertificatePEM(certPEM)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(rootPEM) {
		return nil, fmt.Errorf("%w: root: no certificate in PEM", ErrInvalid)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(leaf.PublicKey) {
		return nil, fmt.Errorf("%w: the key does not match the certificate", ErrInvalid)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		RootCAs:      pool,
		Certificates: []tls.Certificate{{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}},
	}, nil
}

// ServerTLSConfig is a TLS configuration serving a certificate from this CA for hosts, each valid
// for ttl (0 means DefaultLeafTTL) and replaced by a fresh one once it passes RenewAt. When
// clientAuth is true, clients must present a certificate from this CA that Verify accepts.
func (ca *CA) ServerTLSConfig(hosts []string, ttl time.Duration, clientAuth bool) (*tls.Config, error) {
	hosts = append([]string(nil), hosts...)
	r := &rotator{ca: ca, issue: func() (tls.Certificate, error) { return ca.ServerCert(hosts, ttl) }}
	if _, err := r.get(); err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return r.get() },
		Time:           ca.now,
	}
	if clientAuth {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = ca.Pool()
		cfg.VerifyPeerCertificate = ca.VerifyPeerCertificate
	}
	return cfg, nil
}

// ControlPlaneTLSConfig is the TLS configuration of one of the control plane's own clients (its
// connections to the southbound NATS server): a certificate with the control-plane role for name,
// each valid for ttl (0 means DefaultLeafTTL) and replaced by a fresh one once it passes RenewAt,
// so that a reconnection after the server closed an expiring connection presents a valid one.
func (ca *CA) ControlPlaneTLSConfig(name string, ttl time.Duration) (*tls.Config, error) {
	r := &rotator{ca: ca, issue: func() (tls.Certificate, error) { return ca.ClientCert(name, ttl) }}
	if _, err := r.get(); err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:           tls.VersionTLS12,
		RootCAs:              ca.Pool(),
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return r.get() },
		Time:                 ca.now,
	}, nil
}

// rotator holds a certificate and replaces it when it is due for renewal.
type rotator struct {
	ca    *CA
	issue func() (tls.Certificate, error)

	mu   sync.Mutex
	cert *tls.Certificate
}

func (r *rotator) get() (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cert != nil && !NeedsRenewal(r.cert.Leaf, r.ca.now()) {
		return r.cert, nil
	}
	c, err := r.issue()
	if err != nil {
		if r.cert != nil && r.ca.now().Before(r.cert.Leaf.NotAfter) {
			// Keep serving the old certificate while it is valid; the next handshake retries.
			return r.cert, nil
		}
		return nil, err
	}
	r.cert = &c
	return r.cert, nil
}

// LoadServerTLSConfig is a TLS configuration serving a given certificate chain and key (PEM
// files), for a northbound API that presents an operator's certificate instead of one from this
// CA.
func LoadServerTLSConfig(certFile, keyFile string) (*tls.Config, error) {
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("%w: server certificate: %v", ErrInvalid, err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{c}}, nil
}
