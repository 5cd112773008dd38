package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func csrPEM(t testing.TB, key crypto.Signer, tmpl *x509.CertificateRequest) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func TestSignCSRIssuesTheIdentityAsked(t *testing.T) {
	ca, clk := openCA(t)
	certPEM, key := dsnCert(t, ca, "dsn-7", 2*time.Hour)
	cert, err := ParseCertificatePEM(certPEM)
	require.NoError(t, err)
	require.Equal(t, "dsn-7", cert.Subject.CommonName)
	require.Equal(t, []string{RoleDSN}, cert.Subject.OrganizationalUnit)
	require.Equal(t, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, cert.ExtKeyUsage)
	require.False(t, cert.IsCA)
	require.Equal(t, clk.Now().Add(2*time.Hour).Unix(), cert.NotAfter.Unix())
	require.True(t, key.Public().(*ecdsa.PublicKey).Equal(cert.PublicKey), "the certificate is for the DSN's own key")
	at, ok := issuedAt(cert.SerialNumber)
	require.True(t, ok)
	require.Equal(t, clk.Now().UnixNano(), at.UnixNano())

	id, err := IdentityOf(cert)
	require.NoError(t, err)
	require.Equal(t, Identity{Name: "dsn-7", Role: RoleDSN}, id)
}

func TestSignCSRAcceptsKeyTypes(t *testing.T) {
	ca, _ := openCA(t)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	for _, key := range []crypto.Signer{p384, ed} {
		csr, err := NewCSR(key, "dsn-1")
		require.NoError(t, err)
		_, err = ca.SignCSR(csr, "dsn-1", 0)
		require.NoError(t, err)
	}
}

func TestSignCSRRefuses(t *testing.T) {
	ca, _ := openCA(t)
	key, err := NewKey()
	require.NoError(t, err)
	good, err := NewCSR(key, "dsn-1")
	require.NoError(t, err)
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	require.NoError(t, err)
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	uri := func(s string) *url.URL { u, _ := url.Parse(s); return u }

	tampered := func() []byte {
		b, _ := pem.Decode(good)
		der := append([]byte(nil), b.Bytes...)
		// Flip a bit inside the signed part (the subject's CN), not the signature.
		i := strings.Index(string(der), "dsn-1")
		der[i] ^= 0x01
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	}()

	tests := []struct {
		name     string
		csr      []byte
		identity string
		ttl      time.Duration
		want     error
	}{
		{"someone else's identity", good, "dsn-2", 0, ErrIdentity},
		{"extra DNS name", csrPEM(t, key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "dsn-1"}, DNSNames: []string{"cp.example.com"}}), "dsn-1", 0, ErrIdentity},
		{"extra IP address", csrPEM(t, key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "dsn-1"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}), "dsn-1", 0, ErrIdentity},
		{"extra e-mail", csrPEM(t, key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "dsn-1"}, EmailAddresses: []string{"a@b.c"}}), "dsn-1", 0, ErrIdentity},
		{"control-plane URI", csrPEM(t, key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "dsn-1"}, URIs: []*url.URL{uri("urn:dsnscale:control-plane:dsn-1")}}), "dsn-1", 0, ErrIdentity},
		{"another DSN's URI", csrPEM(t, key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "dsn-1"}, URIs: []*url.URL{uri("urn:dsnscale:dsn:dsn-2")}}), "dsn-1", 0, ErrIdentity},
		{"tampered request", tampered, "dsn-1", 0, ErrInvalidCSR},
		{"garbage", []byte("hello"), "dsn-1", 0, ErrInvalidCSR},
		{"certificate instead of CSR", ca.CertPEM(), "dsn-1", 0, ErrInvalidCSR},
		{"trailing data", append(append([]byte(nil), good...), "junk"...), "dsn-1", 0, ErrInvalidCSR},
		{"too large", append(append([]byte(nil), good...), make([]byte, MaxCSRBytes)...), "dsn-1", 0, ErrInvalidCSR},
		{"weak curve", csrPEM(t, p224, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "dsn-1"}}), "dsn-1", 0, ErrInvalidCSR},
		{"short RSA key", csrPEM(t, rsa1024, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "dsn-1"}}), "dsn-1", 0, ErrInvalidCSR},
		{"identity not a NATS token", good, "dsn.1", 0, ErrInvalid},
		{"empty identity", good, "", 0, ErrInvalid},
		{"ttl too short", good, "dsn-1", time.Second, ErrInvalid},
		{"ttl too long", good, "dsn-1", MaxLeafTTL + time.Hour, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert, err := ca.SignCSR(tt.csr, tt.identity, tt.ttl)
			require.ErrorIs(t, err, tt.want)
			require.Nil(t, cert)
		})
	}
}

func TestSignCSRWritesTheSubjectItself(t *testing.T) {
	ca, _ := openCA(t)
	key, err := NewKey()
	require.NoError(t, err)
	// A DSN asking to be a control-plane component through O and OU gets a DSN certificate.
	csr := csrPEM(t, key, &x509.CertificateRequest{Subject: pkix.Name{
		CommonName: "dsn-1", Organization: []string{"evil"}, OrganizationalUnit: []string{RoleControlPlane},
	}})
	certPEM, err := ca.SignCSR(csr, "dsn-1", 0)
	require.NoError(t, err)
	cert, err := ParseCertificatePEM(certPEM)
	require.NoError(t, err)
	require.Equal(t, []string{Organization}, cert.Subject.Organization)
	require.Equal(t, []string{RoleDSN}, cert.Subject.OrganizationalUnit)
}

func TestVerifyRefuses(t *testing.T) {
	ca, clk := openCA(t)
	other, _ := openCA(t)
	parse := func(b []byte) *x509.Certificate {
		c, err := ParseCertificatePEM(b)
		require.NoError(t, err)
		return c
	}
	foreign := parse(first(dsnCert(t, other, "dsn-1", time.Hour)))
	server, err := ca.ServerCert([]string{"127.0.0.1"}, time.Hour)
	require.NoError(t, err)
	short := parse(first(dsnCert(t, ca, "dsn-1", time.Hour)))

	_, err = ca.Verify([]*x509.Certificate{foreign})
	require.ErrorIs(t, err, ErrUntrusted, "another CA's certificate")
	_, err = ca.Verify([]*x509.Certificate{server.Leaf})
	require.ErrorIs(t, err, ErrUntrusted, "a server certificate is not a client identity")
	_, err = ca.Verify(nil)
	require.ErrorIs(t, err, ErrUntrusted)
	_, err = ca.Verify([]*x509.Certificate{short})
	require.NoError(t, err)
	clk.Add(time.Hour + time.Second)
	_, err = ca.Verify([]*x509.Certificate{short})
	require.ErrorIs(t, err, ErrUntrusted, "expired")
}

func TestControlPlaneCertificates(t *testing.T) {
	ca, _ := openCA(t)
	c, err := ca.ClientCert("api", time.Hour)
	require.NoError(t, err)
	id, err := ca.Verify([]*x509.Certificate{c.Leaf})
	require.NoError(t, err)
	require.Equal(t, Identity{Name: "api", Role: RoleControlPlane}, id)

	s, err := ca.ServerCert([]string{"localhost", "127.0.0.1", "cp.example.com"}, time.Hour)
	require.NoError(t, err)
	require.Equal(t, []string{"localhost", "cp.example.com"}, s.Leaf.DNSNames)
	require.Len(t, s.Leaf.IPAddresses, 1)
	_, err = s.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "cp.example.com"})
	require.NoError(t, err)

	_, err = ca.ServerCert(nil, time.Hour)
	require.ErrorIs(t, err, ErrInvalid)
	_, err = ca.ServerCert([]string{"bad host!"}, time.Hour)
	require.ErrorIs(t, err, ErrInvalid)
	_, err = ca.ClientCert("a.b", time.Hour)
	require.ErrorIs(t, err, ErrInvalid)
}

func TestRenewAt(t *testing.T) {
	ca, clk := openCA(t)
	cert, err := ParseCertificatePEM(first(dsnCert(t, ca, "dsn-1", 3*time.Hour)))
	require.NoError(t, err)
	// The lifetime includes the clock-skew allowance before issue.
	life := 3*time.Hour + ClockSkew
	require.Equal(t, cert.NotBefore.Add(life*2/3), RenewAt(cert))
	require.False(t, NeedsRenewal(cert, clk.Now()))
	require.True(t, NeedsRenewal(cert, RenewAt(cert)))
}

// TestTenantIsInTheCertificate checks that a DSN's tenant is written by the CA as a second URI
// SAN and read back, and that a tenant URI that is not one is refused.
func TestTenantIsInTheCertificate(t *testing.T) {
	ca, _ := openCA(t)
	key, err := NewKey()
	require.NoError(t, err)
	csr, err := NewCSR(key, "dsn-8")
	require.NoError(t, err)
	certPEM, err := ca.SignCSRFor(csr, Identity{Name: "dsn-8", Role: RoleDSN, Tenant: "acme"}, time.Hour)
	require.NoError(t, err)
	cert, err := ParseCertificatePEM(certPEM)
	require.NoError(t, err)
	require.Equal(t, []string{"urn:dsnscale:dsn:dsn-8", "urn:dsnscale:tenant:acme"}, []string{cert.URIs[0].String(), cert.URIs[1].String()})
	id, err := ca.Verify([]*x509.Certificate{cert})
	require.NoError(t, err)
	require.Equal(t, Identity{Name: "dsn-8", Role: RoleDSN, Tenant: "acme"}, id)

	_, err = ca.SignCSRFor(csr, Identity{Name: "dsn-8", Role: RoleDSN, Tenant: "Bad Tenant"}, time.Hour)
	require.ErrorIs(t, err, ErrInvalid)
	for _, u := range []string{"urn:dsnscale:role:x", "urn:dsnscale:tenant:Bad_Tenant"} {
		bad := *cert
		second, err := url.Parse(u)
		require.NoError(t, err)
		bad.URIs = []*url.URL{cert.URIs[0], second}
		_, err = IdentityOf(&bad)
		require.ErrorIs(t, err, ErrIdentity, u)
	}
}
