// Package pki is the control plane's certificate authority: a root key and certificate kept under
// the data directory, short-lived leaf certificates for DSNs (signed from their certificate
// signing requests, so that a DSN's private key never leaves it) and for the control plane's own
// servers and clients, and a persisted revocation list.
//
// Every leaf carries its role and name twice: in the subject (CN = name, O = "dsnscale",
// OU = role) and as a URI SAN ("urn:dsnscale:<role>:<name>"). The CA writes the subject of every
// certificate it issues; a CSR can only ask for the identity it is signed for.
//
// A leaf's serial number starts with the time it was issued (nanoseconds since 1970, 8 bytes)
// followed by 8 random bytes. That lets RevokeIdentity refuse every certificate issued for an
// identity before a moment without keeping a record of every certificate issued.
package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Roles a certificate can carry (its OU).
const (
	// RoleDSN is the role of certificates signed from a DSN's CSR.
	RoleDSN = "dsn"
	// RoleControlPlane is the role of the control plane's own server and client certificates.
	RoleControlPlane = "control-plane"
	// RoleGateway is the role of a fleet gateway: one connection that carries the sessions of
	// many simulated DSNs (a simulation-only trust level, see docs/PROTOCOL.md). Its certificate
	// is signed from its own CSR, like a DSN's.
	RoleGateway = "gateway"
)

// Organization is the O of every certificate the CA issues.
const Organization = "dsnscale"

// Lifetimes and limits.
const (
	// DefaultLeafTTL is the lifetime of a leaf when none is asked for.
	DefaultLeafTTL = 24 * time.Hour
	// MinLeafTTL and MaxLeafTTL bound the lifetime of a leaf.
	MinLeafTTL = time.Minute
	MaxLeafTTL = 30 * 24 * time.Hour
	// RootTTL is the lifetime of a new root certificate.
	RootTTL = 10 * 365 * 24 * time.Hour
	// MaxCSRBytes bounds a PEM certificate signing request.
	MaxCSRBytes = 16 << 10
	// ClockSkew is how far back a leaf's NotBefore is set, so that a peer whose clock is a little
	// behind still accepts it.
	ClockSkew = 5 * time.Minute
)

// File names under the CA directory.
const (
	KeyFile         = "ca.key"
	CertFile        = "ca.crt"
	RevocationsFile = "revocations.json"
)

// Sentinel errors. Errors returned by this package wrap one of them.
var (
	// ErrInvalid marks a bad argument: an identity, a lifetime, a host name.
	ErrInvalid = errors.New("pki: invalid argument")
	// ErrInvalidCSR marks a certificate signing request that cannot be parsed, whose signature
	// does not verify or whose key is not accepted.
	ErrInvalidCSR = errors.New("pki: invalid certificate signing request")
	// ErrIdentity marks a CSR or certificate that names another identity than the one expected.
	ErrIdentity = errors.New("pki: identity mismatch")
	// ErrUntrusted marks a certificate that does not chain to this CA, has expired or is not for
	// the use asked.
	ErrUntrusted = errors.New("pki: certificate not trusted")
	// ErrRevoked marks a revoked certificate.
	ErrRevoked = errors.New("pki: certificate revoked")
	// ErrStorage marks a CA directory that cannot be read or written, or whose content is wrong.
	ErrStorage = errors.New("pki: storage")
)

// CA is the control plane's certificate authority. It is safe for concurrent use.
type CA struct {
	dir     string
	now     func() time.Time
	key     *ecdsa.PrivateKey
	cert    *x509.Certificate
	certPEM []byte
	pool    *x509.CertPool

	mu  sync.RWMutex // guards rev and writes of the revocations file
	rev revocations
}

// OpenCA opens the CA kept in dir, creating the directory (mode 0700) and a new root (ECDSA
// P-256, files mode 0600) when there is none. now is the CA's clock; nil means time.Now.
//
// A key file readable by group or others is refused, like ssh does, since whoever reads it can
// mint identities.
func OpenCA(dir string, now func() time.Time) (*CA, error) {
	if dir == "" {
		return nil, fmt.Errorf("%w: CA directory is required", ErrInvalid)
	}
	if now == nil {
		now = time.Now
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrStorage, err)
	}
	ca := &CA{dir: dir, now: now}
	keyPath, certPath := filepath.Join(dir, KeyFile), filepath.Join(dir, CertFile)
	_, kerr := os.Stat(keyPath)
	_, cerr := os.Stat(certPath)
	switch {
	case errors.Is(kerr, fs.ErrNotExist) && errors.Is(cerr, fs.ErrNotExist):
		if err := ca.create(keyPath, certPath); err != nil {
			return nil, err
		}
	case kerr == nil && cerr == nil:
		if err := ca.load(keyPath, certPath); err != nil {
			return nil, err
		}
	case kerr != nil && !errors.Is(kerr, fs.ErrNotExist):
		return nil, fmt.Errorf("%w: %v", ErrStorage, kerr)
	case cerr != nil && !errors.Is(cerr, fs.ErrNotExist):
		return nil, fmt.Errorf("%w: %v", ErrStorage, cerr)
	default:
		return nil, fmt.Errorf("%w: %s holds only one of %s and %s; restore the other or move the directory aside to create a new CA",
			ErrStorage, dir, KeyFile, CertFile)
	}
	ca.pool = x509.NewCertPool()
	ca.pool.AddCert(ca.cert)
	rev, err := loadRevocations(filepath.Join(dir, RevocationsFile))
	if err != nil {
		return nil, err
	}
	ca.rev = rev
	return ca, nil
}

func (ca *CA) create(keyPath, certPath string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("pki: generating root key: %w", err)
	}
	now := ca.now()
	serial, err := newSerial(now)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "dsnscale control plane CA", Organization: []string{Organization}},
		NotBefore:             now.Add(-ClockSkew),
		NotAfter:              now.Add(RootTTL),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("pki: creating root certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("pki: parsing new root certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("pki: encoding root key: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	// The certificate is written last: a crash in between leaves a key without a certificate,
	// which OpenCA reports rather than silently replacing.
	if err := writeFileAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})); err != nil {
		return err
	}
	if err := writeFileAtomic(certPath, certPEM); err != nil {
		return err
	}
	ca.key, ca.cert, ca.certPEM = key, cert, certPEM
	return nil
}

func (ca *CA) load(keyPath, certPath string) error {
	info, err := os.Stat(keyPath)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrStorage, err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%w: %s has mode %04o: the root key must be readable by its owner only (chmod 600)",
			ErrStorage, keyPath, info.Mode().Perm())
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrStorage, err)
	}
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrStorage, err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil || kb.Type != "PRIVATE KEY" {
		return fmt.Errorf("%w: %s: no PEM \"PRIVATE KEY\" block", ErrStorage, keyPath)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrStorage, keyPath, err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return fmt.Errorf("%w: %s: key is %T, want ECDSA", ErrStorage, keyPath, k)
	}
	cert, err := ParseCertificatePEM(certPEM)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrStorage, certPath, err)
	}
	switch {
	case !cert.IsCA:
		return fmt.Errorf("%w: %s is not a CA certificate", ErrStorage, certPath)
	case !key.PublicKey.Equal(cert.PublicKey):
		return fmt.Errorf("%w: %s does not hold the public key of %s", ErrStorage, certPath, keyPath)
	case !ca.now().Before(cert.NotAfter):
		return fmt.Errorf("%w: the root certificate %s expired at %s; move the directory aside to create a new CA",
			ErrStorage, certPath, cert.NotAfter.UTC().Format(time.RFC3339))
	}
	ca.key, ca.cert, ca.certPEM = key, cert, certPEM
	return nil
}

// Certificate returns the root certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// CertPEM returns the root certificate in PEM, the trust anchor DSNs and API clients are given.
func (ca *CA) CertPEM() []byte { return bytes.Clone(ca.certPEM) }

// Pool returns a new pool holding the root certificate.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// Now reads the CA's clock.
func (ca *CA) Now() time.Time { return ca.now() }

// writeFileAtomic writes data to path with mode 0600 through a temporary file and a rename, so
// that readers never see half a file.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("%w: %v", ErrStorage, err)
	}
	name := tmp.Name()
	defer os.Remove(name) // a no-op after the rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("%w: %v", ErrStorage, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("%w: writing %s: %v", ErrStorage, path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("%w: syncing %s: %v", ErrStorage, path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("%w: %v", ErrStorage, err)
	}
	if err := os.Rename(name, path); err != nil {
		return fmt.Errorf("%w: %v", ErrStorage, err)
	}
	return nil
}
