package natsserver

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// TestClusterKeepsR3BucketThroughANodeLoss checks that StartCluster forms one JetStream cluster:
// an R3 bucket is placed on all three nodes and still takes and serves writes with one down.
func TestClusterKeepsR3BucketThroughANodeLoss(t *testing.T) {
	servers, err := StartCluster(t.TempDir(), "c1", 3)
	require.NoError(t, err)
	defer func() {
		for _, s := range servers {
			s.Stop()
		}
	}()
	leader := servers[0].MetaLeader()
	require.NotEmpty(t, leader)
	for _, s := range servers {
		require.Equal(t, "c1", s.ClusterName())
		require.Equal(t, leader, s.MetaLeader(), "all nodes know one meta leader")
	}
	urls := make([]string, len(servers))
	for i, s := range servers {
		urls[i] = s.URL()
	}
	nc, err := nats.Connect(strings.Join(urls, ","), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A request can still be dropped while the routes between the new nodes settle: each
	// attempt gets a few seconds (creating the same bucket again is harmless).
	var kv jetstream.KeyValue
	require.Eventually(t, func() bool {
		actx, acancel := context.WithTimeout(ctx, 5*time.Second)
		defer acancel()
		kv, err = js.CreateKeyValue(actx, jetstream.KeyValueConfig{Bucket: "b", Replicas: 3})
		return err == nil
	}, 25*time.Second, 10*time.Millisecond, "create an R3 bucket: %v", err)
	// A just-created R3 stream may not have its leader yet: "no response from stream" until
	// the nodes have elected one.
	require.Eventually(t, func() bool {
		actx, acancel := context.WithTimeout(ctx, 3*time.Second)
		defer acancel()
		_, err = kv.Put(actx, "k", []byte("1"))
		return err == nil
	}, 25*time.Second, 50*time.Millisecond, "first write to the new bucket: %v", err)
	st, err := js.Stream(ctx, "KV_b")
	require.NoError(t, err)
	require.Len(t, st.CachedInfo().Cluster.Replicas, 2, "two followers besides the leader")

	servers[2].Stop()
	servers = servers[:2]
	// The survivors elect a new leader if the stopped node led the stream; on a loaded machine
	// that takes a while.
	wctx, wcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer wcancel()
	require.Eventually(t, func() bool {
		actx, acancel := context.WithTimeout(wctx, 3*time.Second)
		defer acancel()
		_, err := kv.Put(actx, "k", []byte("2"))
		return err == nil
	}, 50*time.Second, 50*time.Millisecond, "two of three nodes keep the bucket writable")
	e, err := kv.Get(wctx, "k")
	require.NoError(t, err)
	require.Equal(t, "2", string(e.Value()))
}

func TestClusterValidate(t *testing.T) {
	require.Error(t, Config{StoreDir: "x", Cluster: Cluster{Name: "c"}}.Validate(), "node name required")
	require.Error(t, Config{StoreDir: "x", Cluster: Cluster{Name: "c", NodeName: "n", Listen: "bad"}}.Validate())
	require.Error(t, Config{StoreDir: "x", Cluster: Cluster{NodeName: "n"}}.Validate(), "no cluster name")
	require.Error(t, Config{StoreDir: "x", Cluster: Cluster{Name: "c", NodeName: "n", Listen: "127.0.0.1:1", Routes: []string{"::"}}}.Validate())
	require.NoError(t, Config{StoreDir: "x", Cluster: Cluster{Name: "c", NodeName: "n", Listen: "127.0.0.1:1", Routes: []string{"nats-route://127.0.0.1:2"}}}.Validate())
}
