package store

import (
	"context"
	"flag"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/internal/natsserver"
)

// clusterChecks is how many random sequences TestStorePropertiesR3 runs unless -rapid.checks
// says otherwise: each starts a three-node cluster.
const clusterChecks = "3"

// TestStorePropertiesR3 runs random commits through two stores of one R3 bucket on a cluster of
// three embedded servers, each store connected to a different node and following the other's
// writes, and shuts one node down part way. Both stores must agree with the model: every
// acknowledged commit survives the loss of a node, each store's view and watch reach every
// change, and a commit through either is judged against the whole bucket.
func TestStorePropertiesR3(t *testing.T) {
	if f := flag.Lookup("rapid.checks"); f != nil && f.Value.String() == f.DefValue {
		require.NoError(t, flag.Set("rapid.checks", clusterChecks))
		t.Cleanup(func() { _ = flag.Set("rapid.checks", f.DefValue) })
	}
	var iter atomic.Int64
	rapid.Check(t, func(t *rapid.T) {
		servers, err := natsserver.StartCluster(tempDir(t), "props", 3)
		if err != nil {
			t.Fatalf("start cluster: %v", err)
		}
		down := -1
		t.Cleanup(func() {
			for i, s := range servers {
				if i != down {
					s.Stop()
				}
			}
		})
		bucket := fmt.Sprintf("intent-%d", iter.Add(1))
		open := func(first int) *KV {
			// Each store prefers its own node and fails over to the others.
			urls := []string{servers[first].URL()}
			for i, s := range servers {
				if i != first {
					urls = append(urls, s.URL())
				}
			}
			nc, err := nats.Connect(strings.Join(urls, ","), nats.DontRandomize(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			t.Cleanup(nc.Close)
			js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(10*time.Second))
			if err != nil {
				t.Fatalf("jetstream: %v", err)
			}
			// A new cluster may drop a request or answer "no responders" while its routes and
			// the new bucket's replicas settle: each attempt gets a few seconds.
			var st *KV
			deadline := time.Now().Add(30 * time.Second)
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				st, err = Open(ctx, replicas3{js}, Config{Bucket: bucket})
				cancel()
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("open store: %v", err)
				}
				time.Sleep(50 * time.Millisecond)
			}
			t.Cleanup(func() { _ = st.Close() })
			if err := st.Follow(context.Background()); err != nil {
				t.Fatalf("follow: %v", err)
			}
			return st
		}
		stores := []*KV{open(0), open(1)}
		m := &propModel{objs: map[model.Key]*model.Object{}}
		lw := startLiveWatch(t, stores[1], 0)
		t.Cleanup(func() { lw.stop() })

		t.Repeat(map[string]func(*rapid.T){
			"commit": func(t *rapid.T) {
				s := stores[rapid.IntRange(0, 1).Draw(t, "through")]
				waitRevision(t, s, m.rev)
				ops := rapid.SliceOfN(genPropOp, 1, 4).Draw(t, "ops")
				refuse := rapid.IntRange(0, 5).Draw(t, "refuse") == 0
				propCommit(t, s, m, ops, false, refuse)
			},
			"shutdown": func(t *rapid.T) {
				if down >= 0 {
					t.Skip("one node is down already")
				}
				down = rapid.IntRange(0, 2).Draw(t, "node")
				servers[down].Stop()
				// The bucket's stream elects a leader among the two nodes left before it takes
				// writes again.
				waitWritable(t, stores[0], servers[down].Name())
			},
			"": func(t *rapid.T) {
				for i, s := range stores {
					waitRevision(t, s, m.rev)
					for _, key := range propKeys {
						got, err := s.Get(context.Background(), key)
						if want := m.objs[key]; want != nil {
							require.NoError(t, err, "store %d: Get %s", i, key)
							// Fatalf, not require: rapid keeps a Fatalf's message when a failure
							// does not repeat, and this one depends on timing.
							if !reflect.DeepEqual(want, got) {
								t.Fatalf("store %d at revision %d: Get %s = %+v (metadata %+v), want %+v (metadata %+v)",
									i, s.Revision(), key, got, got.Metadata, want, want.Metadata)
							}
						} else {
							require.ErrorIs(t, err, ErrNotFound, "store %d: Get %s", i, key)
						}
					}
				}
			},
		})
		lw.verify(t, m)
	})
}

// waitRevision waits until s has read the stream up to rev.
func waitRevision(t *rapid.T, s *KV, rev Revision) {
	deadline := time.Now().Add(15 * time.Second)
	for s.Revision() < rev {
		if time.Now().After(deadline) {
			t.Fatalf("store at revision %d, not %d, after 15s", s.Revision(), rev)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if s.Revision() != rev {
		t.Fatalf("store at revision %d, beyond the model's %d", s.Revision(), rev)
	}
}

// waitWritable waits until the bucket's stream has a leader other than the node that went down.
func waitWritable(t *rapid.T, s *KV, gone string) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		info, err := s.stream.Info(ctx)
		cancel()
		if err == nil && info.Cluster != nil && info.Cluster.Leader != "" && info.Cluster.Leader != gone {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("bucket not writable 20s after %s went down: %v", gone, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// replicas3 creates the buckets it is asked for with three replicas.
type replicas3 struct{ jetstream.JetStream }

func (r replicas3) CreateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	cfg.Replicas = 3
	return r.JetStream.CreateKeyValue(ctx, cfg)
}

func (r replicas3) CreateOrUpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	cfg.Replicas = 3
	return r.JetStream.CreateOrUpdateKeyValue(ctx, cfg)
}
