package pki

import (
	"crypto"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Now().Truncate(time.Second)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func openCA(t testing.TB) (*CA, *fakeClock) {
	t.Helper()
	clk := newClock()
	ca, err := OpenCA(t.TempDir(), clk.Now)
	require.NoError(t, err)
	return ca, clk
}

// dsnCert makes a key and a CSR for id and has ca sign it.
func dsnCert(t testing.TB, ca *CA, id string, ttl time.Duration) ([]byte, crypto.Signer) {
	t.Helper()
	key, err := NewKey()
	require.NoError(t, err)
	csr, err := NewCSR(key, id)
	require.NoError(t, err)
	certPEM, err := ca.SignCSR(csr, id, ttl)
	require.NoError(t, err)
	return certPEM, key
}
