package controlplane

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/internal/natsserver"
)

func TestClusterConfigValidate(t *testing.T) {
	node := func(peers ...string) Config {
		return Config{DataDir: "d", AdminPasswordFile: "pw", Cluster: ClusterConfig{Name: "c1", NodeName: "a", Listen: "127.0.0.1:7101", Peers: peers}}
	}
	ok := node("127.0.0.1:7102", "nats-route://10.0.0.3:7101")
	require.NoError(t, ok.Validate())
	assert.Equal(t, 3, ok.replicas())
	assert.Equal(t, 1, Config{DataDir: "d"}.replicas())
	assert.Equal(t, []string{"nats-route://127.0.0.1:7102", "nats-route://10.0.0.3:7101"}, ok.Cluster.natsCluster().Routes)

	for _, c := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"two nodes for R3", node("127.0.0.1:7102"), "R3 needs at least 3 nodes"},
		{"R5 on three", func() Config { c := node("127.0.0.1:7102", "127.0.0.1:7103"); c.Replicas = 5; return c }(), "R5 needs at least 5 nodes"},
		{"own address", node("127.0.0.1:7102", "127.0.0.1:7101"), `peers[1] "127.0.0.1:7101" is this node's own`},
		{"own address by another loopback name", node("localhost:7101", "127.0.0.1:7102"), `peers[0] "localhost:7101" is this node's own`},
		{"duplicate", node("127.0.0.1:7102", "nats-route://127.0.0.1:7102", "127.0.0.1:7103"), "peers[1]"},
		{"bad scheme", node("http://127.0.0.1:7102", "127.0.0.1:7103"), `scheme "http"`},
		{"no port", node("127.0.0.1", "127.0.0.1:7103"), "peers[0]"},
		{"no node name", func() Config { c := node("127.0.0.1:7102", "127.0.0.1:7103"); c.Cluster.NodeName = ""; return c }(), "node name"},
		{"bad cluster name", func() Config { c := node("127.0.0.1:7102", "127.0.0.1:7103"); c.Cluster.Name = "a b"; return c }(), "cluster name"},
		{"with nats-url", func() Config { c := node("127.0.0.1:7102", "127.0.0.1:7103"); c.NATSURL = "nats://x:1"; return c }(), "exclusive"},
		{"random listen port", func() Config {
			c := node("127.0.0.1:7102", "127.0.0.1:7103")
			c.Cluster.Listen = "127.0.0.1:0"
			return c
		}(), "fixed port"},
		{"no admin password file", func() Config { c := node("127.0.0.1:7102", "127.0.0.1:7103"); c.AdminPasswordFile = ""; return c }(), "admin password file"},
		{"peers without cluster", Config{DataDir: "d", Cluster: ClusterConfig{Peers: []string{"127.0.0.1:7102"}}}, "need a cluster name"},
		{"replicas without cluster", Config{DataDir: "d", Replicas: 3}, "need a cluster"},
		{"too many replicas", Config{DataDir: "d", NATSURL: "nats://x:1", Replicas: 7}, "replicas 7"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.Validate()
			require.ErrorIs(t, err, ErrConfig)
			assert.Contains(t, err.Error(), c.want)
		})
	}
	insecure := node("127.0.0.1:7102", "127.0.0.1:7103")
	insecure.Insecure, insecure.AdminPasswordFile = true, ""
	require.NoError(t, insecure.Validate(), "an insecure cluster has no users")
	external := Config{DataDir: "d", NATSURL: "nats://a:4222,nats://b:4222", Replicas: 3}
	require.NoError(t, external.Validate())
}

// TestExternalClusterURLs runs the control plane on an external three-node NATS cluster given
// as a list of URLs with Replicas 3: it connects, and its buckets and streams have 3 replicas.
func TestExternalClusterURLs(t *testing.T) {
	servers, err := natsserver.StartCluster(t.TempDir(), "ext", 3)
	require.NoError(t, err)
	defer func() {
		for _, s := range servers {
			s.Stop()
		}
	}()
	urls := []string{servers[0].URL(), servers[1].URL(), servers[2].URL()}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Start(ctx, Config{DataDir: t.TempDir(), NATSURL: strings.Join(urls, ","), Replicas: 3, Insecure: true})
	require.NoError(t, err)
	defer s.Stop()
	require.NoError(t, s.WaitReady(ctx))

	st := s.ClusterStatus()
	assert.Equal(t, "external", st.Mode)
	assert.Equal(t, 3, st.Replicas)
	assert.Equal(t, "ext", st.Node.ClusterName)
	assert.Contains(t, []string{"n0", "n1", "n2"}, st.Node.ServerName)

	nc, err := nats.Connect(urls[1])
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	for _, name := range []string{"KV_intent", "KV_dsn-registry"} {
		stream, err := js.Stream(ctx, name)
		require.NoError(t, err, name)
		assert.Equal(t, 3, stream.CachedInfo().Config.Replicas, name)
	}
}
