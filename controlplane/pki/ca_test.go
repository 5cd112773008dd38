package pki

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestOpenCACreatesRootWithPrivateFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	clk := newClock()
	ca, err := OpenCA(dir, clk.Now)
	require.NoError(t, err)

	info, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), info.Mode().Perm())
	for _, f := range []string{KeyFile, CertFile} {
		info, err := os.Stat(filepath.Join(dir, f))
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), info.Mode().Perm(), f)
	}
	root := ca.Certificate()
	require.True(t, root.IsCA)
	require.Equal(t, x509.ECDSA, root.PublicKeyAlgorithm)
	require.True(t, root.NotAfter.After(clk.Now().Add(RootTTL-time.Hour)))

	again, err := OpenCA(dir, clk.Now)
	require.NoError(t, err)
	require.Equal(t, root.Raw, again.Certificate().Raw, "reopening loads the same root")

	// A certificate issued by the first instance verifies with the second.
	certPEM, _ := dsnCert(t, ca, "dsn-1", time.Hour)
	cert, err := ParseCertificatePEM(certPEM)
	require.NoError(t, err)
	id, err := again.Verify([]*x509.Certificate{cert})
	require.NoError(t, err)
	require.Equal(t, Identity{Name: "dsn-1", Role: RoleDSN}, id)
}

func TestOpenCARefusesBadDirectories(t *testing.T) {
	clk := newClock()
	good := t.TempDir()
	_, err := OpenCA(good, clk.Now)
	require.NoError(t, err)
	other := t.TempDir()
	_, err = OpenCA(other, clk.Now)
	require.NoError(t, err)

	copyFile := func(t *testing.T, from, to string) {
		b, err := os.ReadFile(from)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(to, b, 0o600))
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  string
	}{
		{"key readable by others", func(t *testing.T, dir string) {
			copyFile(t, filepath.Join(good, KeyFile), filepath.Join(dir, KeyFile))
			copyFile(t, filepath.Join(good, CertFile), filepath.Join(dir, CertFile))
			require.NoError(t, os.Chmod(filepath.Join(dir, KeyFile), 0o644))
		}, "chmod 600"},
		{"key without certificate", func(t *testing.T, dir string) {
			copyFile(t, filepath.Join(good, KeyFile), filepath.Join(dir, KeyFile))
		}, "holds only one of"},
		{"certificate of another key", func(t *testing.T, dir string) {
			copyFile(t, filepath.Join(good, KeyFile), filepath.Join(dir, KeyFile))
			copyFile(t, filepath.Join(other, CertFile), filepath.Join(dir, CertFile))
		}, "does not hold the public key"},
		{"garbage key", func(t *testing.T, dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, KeyFile), []byte("not a key"), 0o600))
			copyFile(t, filepath.Join(good, CertFile), filepath.Join(dir, CertFile))
		}, "PRIVATE KEY"},
		{"garbage revocations", func(t *testing.T, dir string) {
			copyFile(t, filepath.Join(good, KeyFile), filepath.Join(dir, KeyFile))
			copyFile(t, filepath.Join(good, CertFile), filepath.Join(dir, CertFile))
			require.NoError(t, os.WriteFile(filepath.Join(dir, RevocationsFile), []byte(`{"revocations":[{"serial":"zz"}]}`), 0o600))
		}, "is not hex"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.setup(t, dir)
			_, err := OpenCA(dir, clk.Now)
			require.ErrorIs(t, err, ErrStorage)
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestOpenCARefusesExpiredRoot(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	_, err := OpenCA(dir, clk.Now)
	require.NoError(t, err)
	clk.Add(RootTTL + time.Hour)
	_, err = OpenCA(dir, clk.Now)
	require.ErrorIs(t, err, ErrStorage)
	require.ErrorContains(t, err, "expired")
}

func TestRevocationsPersistAndExpire(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	ca, err := OpenCA(dir, clk.Now)
	require.NoError(t, err)
	certPEM, _ := dsnCert(t, ca, "dsn-1", time.Hour)
	cert, err := ParseCertificatePEM(certPEM)
	require.NoError(t, err)
	require.False(t, ca.IsRevoked(cert))
	require.NoError(t, ca.Revoke(cert.SerialNumber, "key compromised"))
	require.True(t, ca.IsRevoked(cert), "revocation takes effect at once")
	_, err = ca.Verify([]*x509.Certificate{cert})
	require.ErrorIs(t, err, ErrRevoked)

	info, err := os.Stat(filepath.Join(dir, RevocationsFile))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	reopened, err := OpenCA(dir, clk.Now)
	require.NoError(t, err)
	require.True(t, reopened.IsRevoked(cert), "revocations survive a restart")
	require.Len(t, reopened.Revocations(), 1)
	require.Equal(t, "key compromised", reopened.Revocations()[0].Reason)

	// Past the longest leaf lifetime the entry is useless and is dropped at the next write.
	clk.Add(MaxLeafTTL + ClockSkew + time.Minute)
	require.NoError(t, reopened.RevokeIdentity("dsn-2", "decommissioned"))
	revs := reopened.Revocations()
	require.Len(t, revs, 1)
	require.Equal(t, "dsn-2", revs[0].Identity)
}

func TestRevokeIdentityCoversEarlierCertificatesOnly(t *testing.T) {
	ca, clk := openCA(t)
	parse := func(b []byte) *x509.Certificate {
		c, err := ParseCertificatePEM(b)
		require.NoError(t, err)
		return c
	}
	old1 := parse(first(dsnCert(t, ca, "dsn-1", time.Hour)))
	clk.Add(time.Second)
	old2 := parse(first(dsnCert(t, ca, "dsn-1", time.Hour))) // a renewal
	other := parse(first(dsnCert(t, ca, "dsn-2", time.Hour)))
	require.NoError(t, ca.RevokeIdentity("dsn-1", "decommissioned"))

	for _, c := range []*x509.Certificate{old1, old2} {
		_, err := ca.Verify([]*x509.Certificate{c})
		require.ErrorIs(t, err, ErrRevoked)
	}
	_, err := ca.Verify([]*x509.Certificate{other})
	require.NoError(t, err, "another DSN is not affected")

	// Re-admitted later, the same id gets a certificate that works.
	clk.Add(time.Nanosecond)
	fresh := parse(first(dsnCert(t, ca, "dsn-1", time.Hour)))
	_, err = ca.Verify([]*x509.Certificate{fresh})
	require.NoError(t, err)

	require.ErrorIs(t, ca.RevokeIdentity("not a valid id", ""), ErrInvalid)
	require.ErrorIs(t, ca.Revoke(nil, ""), ErrInvalid)
}

func first[A, B any](a A, _ B) A { return a }
