package natsserver

import (
	"testing"

	"github.com/nats-io/nats.go"
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
