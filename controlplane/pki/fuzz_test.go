package pki

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// FuzzSignCSR feeds arbitrary bytes and identities to SignCSR: it must never panic, and whatever
// it signs must carry exactly the identity asked for and the DSN role.
func FuzzSignCSR(f *testing.F) {
	ca, _ := openCA(f)
	key, err := NewKey()
	require.NoError(f, err)
	good, err := NewCSR(key, "dsn-1")
	require.NoError(f, err)
	f.Add(good, "dsn-1")
	f.Add(good, "dsn-2")
	f.Add(good[:len(good)/2], "dsn-1")
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"), "x")
	f.Add(ca.CertPEM(), "dsn-1")
	f.Add([]byte{}, "")
	f.Fuzz(func(t *testing.T, csr []byte, identity string) {
		certPEM, err := ca.SignCSR(csr, identity, time.Hour)
		if err != nil {
			require.Nil(t, certPEM)
			return
		}
		cert, err := ParseCertificatePEM(certPEM)
		require.NoError(t, err)
		id, err := ca.Verify([]*x509.Certificate{cert})
		require.NoError(t, err)
		require.Equal(t, Identity{Name: identity, Role: RoleDSN}, id)
	})
}

// FuzzParseCertificatePEM checks that decoding outside certificates never panics.
func FuzzParseCertificatePEM(f *testing.F) {
	ca, _ := openCA(f)
	f.Add(ca.CertPEM())
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cert, err := ParseCertificatePEM(data)
		if err == nil {
			_, _ = IdentityOf(cert)
			_, _ = ca.Verify([]*x509.Certificate{cert})
		}
	})
}
