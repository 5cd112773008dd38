package authn

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/dsnscale/dsnscale/internal/natsserver"
)

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

// startJS runs a real embedded NATS server with JetStream and returns a client for it.
func startJS(t testing.TB) jetstream.JetStream {
	t.Helper()
	s, err := natsserver.Start(natsserver.Config{StoreDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(s.Stop)
	return connectJS(t, s.URL())
}

func connectJS(t testing.TB, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(30*time.Second))
	require.NoError(t, err)
	return js
}

func openTokens(t testing.TB, js jetstream.JetStream, clk *fakeClock) *Tokens {
	t.Helper()
	tk, err := OpenTokens(context.Background(), TokensConfig{JS: js, Clock: clk.Now})
	require.NoError(t, err)
	t.Cleanup(tk.Close)
	return tk
}

// testCost keeps bcrypt cheap in tests.
const testCost = bcrypt.MinCost

func mustHash(t testing.TB, pw string) string {
	t.Helper()
	h, err := HashPassword(pw, testCost)
	require.NoError(t, err)
	return h
}
