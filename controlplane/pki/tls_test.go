package pki

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// serveTLS accepts connections on loopback with cfg, answers "ok" to each client that completes
// the handshake, and reports handshake errors on errs.
func serveTLS(t *testing.T, cfg *tls.Config) (addr string, errs <-chan error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	ch := make(chan error, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				if err := c.(*tls.Conn).Handshake(); err != nil {
					ch <- err
					return
				}
				_, _ = c.Write([]byte("ok"))
			}()
		}
	}()
	return ln.Addr().String(), ch
}

// dial connects with cfg and reads the server's greeting.
func dial(addr string, cfg *tls.Config) (*x509.Certificate, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 2)
	if _, err := io.ReadFull(c, b); err != nil {
		return nil, err
	}
	if string(b) != "ok" {
		return nil, errors.New("unexpected greeting")
	}
	return c.ConnectionState().PeerCertificates[0], nil
}

func TestMutualTLSAcceptsIdentitiesAndRefusesRevokedOnes(t *testing.T) {
	ca, _ := openCA(t)
	srv, err := ca.ServerTLSConfig([]string{"127.0.0.1"}, time.Hour, true)
	require.NoError(t, err)
	addr, handshakeErrs := serveTLS(t, srv)

	certPEM, key := dsnCert(t, ca, "dsn-1", time.Hour)
	client, err := ClientTLSConfig(certPEM, key, ca.CertPEM())
	require.NoError(t, err)
	client.ServerName = "127.0.0.1"
	_, err = dial(addr, client)
	require.NoError(t, err)

	// No client certificate: refused.
	anon := &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"}
	_, err = dial(addr, anon)
	require.Error(t, err)
	require.Error(t, <-handshakeErrs)

	// A certificate from another CA: refused.
	other, _ := openCA(t)
	otherPEM, otherKey := dsnCert(t, other, "dsn-1", time.Hour)
	foreign, err := ClientTLSConfig(otherPEM, otherKey, ca.CertPEM())
	require.NoError(t, err)
	foreign.ServerName = "127.0.0.1"
	_, err = dial(addr, foreign)
	require.Error(t, err)
	require.Error(t, <-handshakeErrs)

	// Revoked: refused in the handshake from then on.
	cert, err := ParseCertificatePEM(certPEM)
	require.NoError(t, err)
	require.NoError(t, ca.Revoke(cert.SerialNumber, "test"))
	_, err = dial(addr, client)
	require.Error(t, err)
	require.ErrorIs(t, <-handshakeErrs, ErrRevoked)
}

func TestServerTLSConfigRotatesItsCertificate(t *testing.T) {
	ca, clk := openCA(t)
	srv, err := ca.ServerTLSConfig([]string{"127.0.0.1"}, time.Hour, false)
	require.NoError(t, err)
	addr, _ := serveTLS(t, srv)
	client := &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", Time: clk.Now}

	first, err := dial(addr, client)
	require.NoError(t, err)
	again, err := dial(addr, client)
	require.NoError(t, err)
	require.Equal(t, first.SerialNumber, again.SerialNumber, "no rotation before RenewAt")

	clk.Add(RenewAt(first).Sub(clk.Now()) + time.Second)
	rotated, err := dial(addr, client)
	require.NoError(t, err)
	require.NotEqual(t, first.SerialNumber, rotated.SerialNumber)
	require.True(t, rotated.NotAfter.After(first.NotAfter))
}

func TestClientTLSConfigRefusesMismatchedKey(t *testing.T) {
	ca, _ := openCA(t)
	certPEM, _ := dsnCert(t, ca, "dsn-1", time.Hour)
	otherKey, err := NewKey()
	require.NoError(t, err)
	_, err = ClientTLSConfig(certPEM, otherKey, ca.CertPEM())
	require.ErrorIs(t, err, ErrInvalid)
	_, err = ClientTLSConfig(certPEM, otherKey, []byte("no root"))
	require.ErrorIs(t, err, ErrInvalid)

	keyPEM, err := EncodeKeyPEM(otherKey)
	require.NoError(t, err)
	back, err := ParseKeyPEM(keyPEM)
	require.NoError(t, err)
	require.True(t, otherKey.PublicKey.Equal(back.Public()))
	_, err = ParseKeyPEM(certPEM)
	require.ErrorIs(t, err, ErrInvalid)
}

func TestLoadServerTLSConfig(t *testing.T) {
	ca, _ := openCA(t)
	c, err := ca.ServerCert([]string{"127.0.0.1"}, time.Hour)
	require.NoError(t, err)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), 0o600))
	keyPEM, err := EncodeKeyPEM(c.PrivateKey.(crypto.Signer))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(keyFile, keyPEM, 0o600))

	cfg, err := LoadServerTLSConfig(certFile, keyFile)
	require.NoError(t, err)
	addr, _ := serveTLS(t, cfg)
	got, err := dial(addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"})
	require.NoError(t, err)
	require.Equal(t, c.Leaf.SerialNumber, got.SerialNumber)

	_, err = LoadServerTLSConfig(keyFile, certFile)
	require.ErrorIs(t, err, ErrInvalid)
}

func TestControlPlaneTLSConfigRotatesItsCertificate(t *testing.T) {
	ca, clk := openCA(t)
	srv, err := ca.ServerTLSConfig([]string{"127.0.0.1"}, time.Hour, true)
	require.NoError(t, err)
	var mu sync.Mutex
	var seen []*x509.Certificate
	verify := srv.VerifyPeerCertificate
	srv.VerifyPeerCertificate = func(raw [][]byte, chains [][]*x509.Certificate) error {
		c, err := x509.ParseCertificate(raw[0])
		if err != nil {
			return err
		}
		mu.Lock()
		seen = append(seen, c)
		mu.Unlock()
		return verify(raw, chains)
	}
	addr, _ := serveTLS(t, srv)
	client, err := ca.ControlPlaneTLSConfig("distrib", time.Hour)
	require.NoError(t, err)
	client.ServerName = "127.0.0.1"

	_, err = dial(addr, client)
	require.NoError(t, err)
	clk.Add(50 * time.Minute) // past RenewAt, before expiry
	_, err = dial(addr, client)
	require.NoError(t, err)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, seen, 2)
	require.NotEqual(t, seen[0].SerialNumber, seen[1].SerialNumber, "a fresh certificate after RenewAt")
	id, err := IdentityOf(seen[1])
	require.NoError(t, err)
	require.Equal(t, Identity{Name: "distrib", Role: RoleControlPlane}, id)
}

// TestVerifyConnectionTrustsOnlyItsOwnVerifiedChains checks that a chain the handshake verified
// is taken only when it ends in this CA's root and starts with the presented leaf; anything else
// is verified in full, and revocation is checked either way.
func TestVerifyConnectionTrustsOnlyItsOwnVerifiedChains(t *testing.T) {
	ca, _ := openCA(t)
	parse := func(certPEM []byte) *x509.Certificate {
		c, err := ParseCertificatePEM(certPEM)
		require.NoError(t, err)
		return c
	}
	pem1, _ := dsnCert(t, ca, "dsn-1", time.Hour)
	leaf := parse(pem1)
	id, err := ca.VerifyConnection(&tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf},
		VerifiedChains: [][]*x509.Certificate{{leaf, ca.cert}}})
	require.NoError(t, err)
	require.Equal(t, "dsn-1", id.Name)
	// No verified chain: verified here.
	id, err = ca.VerifyConnection(&tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}})
	require.NoError(t, err)
	require.Equal(t, "dsn-1", id.Name)

	// Another CA's certificate, with a chain "verified" to that CA's root: verified in full, refused.
	other, _ := openCA(t)
	foreign := parse(func() []byte { p, _ := dsnCert(t, other, "dsn-2", time.Hour); return p }())
	_, err = ca.VerifyConnection(&tls.ConnectionState{PeerCertificates: []*x509.Certificate{foreign},
		VerifiedChains: [][]*x509.Certificate{{foreign, other.cert}}})
	require.ErrorIs(t, err, ErrUntrusted)
	// A verified chain of another leaf than the one presented: the presented one is verified.
	_, err = ca.VerifyConnection(&tls.ConnectionState{PeerCertificates: []*x509.Certificate{foreign},
		VerifiedChains: [][]*x509.Certificate{{leaf, ca.cert}}})
	require.ErrorIs(t, err, ErrUntrusted)
	require.ErrorIs(t, ca.VerifyPeerCertificate([][]byte{foreign.Raw}, [][]*x509.Certificate{{foreign, other.cert}}), ErrUntrusted)

	// Revoked: refused even with a verified chain.
	require.NoError(t, ca.Revoke(leaf.SerialNumber, "test"))
	_, err = ca.VerifyConnection(&tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf},
		VerifiedChains: [][]*x509.Certificate{{leaf, ca.cert}}})
	require.ErrorIs(t, err, ErrRevoked)
	require.ErrorIs(t, ca.VerifyPeerCertificate([][]byte{leaf.Raw}, [][]*x509.Certificate{{leaf, ca.cert}}), ErrRevoked)
	_, err = ca.VerifyConnection(nil)
	require.ErrorIs(t, err, ErrUntrusted)
}
