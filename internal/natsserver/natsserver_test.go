package natsserver

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStartServesJetStream(t *testing.T) {
	s, err := Start(Config{StoreDir: t.TempDir()})
	require.NoError(t, err)
	defer s.Stop()
	nc, err := nats.Connect(s.URL())
	require.NoError(t, err)
	defer nc.Close()
	js, err := nc.JetStream()
	require.NoError(t, err)
	_, err = js.AccountInfo()
	require.NoError(t, err)
}

func TestConfigValidate(t *testing.T) {
	require.Error(t, Config{}.Validate())
	require.Error(t, Config{StoreDir: "x", Listen: "nonsense"}.Validate())
	require.NoError(t, Config{StoreDir: "x", Listen: "127.0.0.1:4222"}.Validate())
}

func TestConfigureHook(t *testing.T) {
	_, err := Start(Config{StoreDir: t.TempDir(), Configure: func(*server.Options) error { return errors.New("refused") }})
	require.ErrorContains(t, err, "refused")

	s, err := Start(Config{StoreDir: t.TempDir(), Configure: func(o *server.Options) error {
		o.ServerName = "configured"
		return nil
	}})
	require.NoError(t, err)
	defer s.Stop()
	require.Equal(t, "configured", s.Name())
	require.Contains(t, s.URL(), "nats://", "a server without TLS keeps the nats scheme")
}

func TestStartLocalGivesAJetStreamClient(t *testing.T) {
	l, err := StartLocal(t.TempDir())
	require.NoError(t, err)
	defer l.Close()
	_, err = l.JS.AccountInfo(t.Context())
	require.NoError(t, err)
	require.True(t, l.Conn.IsConnected())
}

func TestStartOnATakenPortFailsAtOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	start := time.Now()
	_, err = Start(Config{StoreDir: t.TempDir(), Listen: ln.Addr().String()})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "address already in use")
	assert.Less(t, time.Since(start), 10*time.Second, "not the 30s readiness wait")
}
