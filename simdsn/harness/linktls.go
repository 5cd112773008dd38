package harness

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// CredentialEnv is the environment variable a unit's child reads its link credential from. It
// travels in the environment rather than on the command line, which any local user can read.
const CredentialEnv = "DSNSCALE_LINK_CREDENTIAL"

// ErrCredential marks a link credential that is malformed or that the other end refused (one
// from another run, say).
var ErrCredential = errors.New("harness: link credential")

// linkCertTTL bounds the life of a run's link certificates: a run is long, but not longer.
const linkCertTTL = 7 * 24 * time.Hour

// linkCA is a run's own certificate authority for the harness link: the harness's server
// certificate and each unit's client certificate are signed by it, so a unit of another run,
// or anything else, cannot join.
type linkCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newLinkCA(now time.Time) (*linkCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "dsnscale harness link CA"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(linkCertTTL),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &linkCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

// issue signs a leaf: a server certificate for hosts, or a client certificate whose common name
// is a unit's name.
func (ca *linkCA) issue(name string, server bool, hosts []string, now time.Time) (tls.Certificate, []byte, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(linkCertTTL),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		for _, h := range hosts {
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else if h != "" {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return tls.Certificate{}, nil, nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return tls.Certificate{}, nil, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	return pair, certPEM, keyPEM, err
}

// serverConfig is the harness end: its own certificate, and a client certificate from the
// run's CA required of every unit.
func (ca *linkCA) serverConfig(hosts []string, now time.Time) (*tls.Config, error) {
	pair, _, _, err := ca.issue("dsnscale harness", true, hosts, now)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	return &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13}, nil
}

// credential is a unit's credential, encoded for CredentialEnv.
func (ca *linkCA) credential(unit string, now time.Time) (string, error) {
	_, certPEM, keyPEM, err := ca.issue(unit, false, nil, now)
	if err != nil {
		return "", err
	}
	bundle := append(append(append([]byte{}, ca.pem...), certPEM...), keyPEM...)
	return base64.StdEncoding.EncodeToString(bundle), nil
}

// unitTLS is the unit's end of the link, from its encoded credential: its certificate, and the
// run's CA as the only root it trusts for the harness.
func unitTLS(encoded string) (*tls.Config, error) {
	if encoded == "" {
		return nil, fmt.Errorf("%w: none given (set %s)", ErrCredential, CredentialEnv)
	}
	bundle, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return nil, fmt.Errorf("%w: not base64: %v", ErrCredential, err)
	}
	var certs [][]byte
	var keyPEM []byte
	for rest := bundle; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch b.Type {
		case "CERTIFICATE":
			certs = append(certs, pem.EncodeToMemory(b))
		case "EC PRIVATE KEY":
			keyPEM = pem.EncodeToMemory(b)
		}
	}
	if len(certs) != 2 || keyPEM == nil {
		return nil, fmt.Errorf("%w: want the CA, a certificate and a key, got %d certificates and key %t", ErrCredential, len(certs), keyPEM != nil)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(certs[0]) {
		return nil, fmt.Errorf("%w: bad CA certificate", ErrCredential)
	}
	pair, err := tls.X509KeyPair(certs[1], keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCredential, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, MinVersion: tls.VersionTLS13}, nil
}

// peerUnit is the unit name a link's client certificate was issued to.
func peerUnit(c *tls.Conn) (string, bool) {
	st := c.ConnectionState()
	if len(st.PeerCertificates) == 0 {
		return "", false
	}
	return st.PeerCertificates[0].Subject.CommonName, true
}

// NewCredentials makes a CA of its own and a link credential for each unit, for manifests
// written to be applied by hand. No harness accepts them yet: a harness makes its own CA when
// its run starts.
func NewCredentials(units []string) (map[string]string, error) {
	now := time.Now()
	ca, err := newLinkCA(now)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(units))
	for _, u := range units {
		if out[u], err = ca.credential(u, now); err != nil {
			return nil, err
		}
	}
	return out, nil
}
