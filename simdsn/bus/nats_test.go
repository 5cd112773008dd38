package bus

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/wire"
	"github.com/dsnscale/dsnscale/internal/natsserver"
)

type inbox struct {
	mu sync.Mutex
	ds []Delivery
	ch chan Delivery
}

func newInbox() *inbox { return &inbox{ch: make(chan Delivery, 1024)} }

func (i *inbox) deliver(d Delivery) { i.ch <- d }

func (i *inbox) next(t *testing.T, kind Kind) Delivery {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case d := <-i.ch:
			if d.Kind == kind {
				return d
			}
		case <-timeout:
			t.Fatalf("no delivery of kind %d", kind)
		}
	}
}

func TestNATSBus(t *testing.T) {
	for _, mode := range []Mode{Shared, PerDSN} {
		t.Run(string(mode), func(t *testing.T) {
			srv, err := natsserver.Start(natsserver.Config{StoreDir: t.TempDir()})
			require.NoError(t, err)
			defer srv.Stop()

			// A tiny control plane: answers hellos, holds an object.
			cp, err := nats.Connect(srv.URL())
			require.NoError(t, err)
			defer cp.Close()
			js, err := jetstream.New(cp)
			require.NoError(t, err)
			ctx := context.Background()
			obs, err := js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: wire.SnapshotBucket})
			require.NoError(t, err)
			_, err = obs.PutBytes(ctx, "group-x", []byte(`{"group":"x"}`))
			require.NoError(t, err)

			b, err := NewNATS(Config{URL: srv.URL(), Mode: mode, DSNsPerConn: 2, PingInterval: time.Second, MaxPingsOut: 2})
			require.NoError(t, err)
			for i, id := range []string{"a", "b", "c"} {
				b.Register(int32(i), id, "u1", nil)
			}
			in := newInbox()
			require.NoError(t, b.Start(in.deliver))
			defer b.Close()

			// No control plane listening yet: no responders.
			connect(t, b, in, 1)
			require.NoError(t, b.Request(1, wire.HelloSubject("b"), []byte("{}"), 42))
			d := in.next(t, Reply)
			assert.ErrorIs(t, d.Err, ErrNoResponders)
			assert.Equal(t, uint32(42), d.Token)

			sub, err := cp.Subscribe(wire.AllHellos, func(m *nats.Msg) { _ = m.Respond(append([]byte("re:"), m.Data...)) })
			require.NoError(t, err)
			defer sub.Unsubscribe()
			require.NoError(t, cp.Flush())
			require.NoError(t, b.Request(1, wire.HelloSubject("b"), []byte("hi"), 43))
			d = in.next(t, Reply)
			require.NoError(t, d.Err)
			assert.Equal(t, Delivery{DSN: 1, Kind: Reply, Token: 43, Data: []byte("re:hi")}, d)

			// Pushes reach the DSN they are for, and only once connected.
			require.NoError(t, cp.Publish(wire.PushSubject("b"), []byte("p1")))
			require.NoError(t, cp.Publish(wire.PushSubject("c"), []byte("lost")))
			d = in.next(t, Push)
			assert.Equal(t, Delivery{DSN: 1, Kind: Push, Data: []byte("p1")}, d)

			// Publishing needs a connection.
			assert.ErrorIs(t, b.Publish(2, wire.HeartbeatSubject("c"), nil), ErrNotConnected)
			got := make(chan *nats.Msg, 1)
			hb, err := cp.ChanSubscribe(wire.AllHeartbeats, got)
			require.NoError(t, err)
			defer hb.Unsubscribe()
			require.NoError(t, cp.Flush())
			require.NoError(t, b.Publish(1, wire.HeartbeatSubject("b"), []byte("beat")))
			select {
			case m := <-got:
				assert.Equal(t, "beat", string(m.Data))
			case <-time.After(5 * time.Second):
				t.Fatal("heartbeat not received")
			}

			b.Fetch(1, wire.SnapshotBucket, "group-x", 7, 5*time.Second)
			d = in.next(t, Fetched)
			require.NoError(t, d.Err)
			assert.Equal(t, `{"group":"x"}`, string(d.Data))
			b.Fetch(1, wire.SnapshotBucket, "group-missing", 8, 5*time.Second)
			assert.Error(t, in.next(t, Fetched).Err)

			// The server going away is a lost connection.
			connect(t, b, in, 0)
			srv.Stop()
			lost := map[int32]bool{}
			for len(lost) < 2 {
				lost[in.next(t, ConnLost).DSN] = true
			}
			assert.Equal(t, map[int32]bool{0: true, 1: true}, lost)
			b.Connect(0)
			assert.Equal(t, ConnFailed, in.next(t, ConnFailed).Kind)
		})
	}
}

// connect connects DSN n, retrying while a shared connection is still being dialled.
func connect(t *testing.T, b *NATS, in *inbox, n int32) {
	t.Helper()
	for range 100 {
		b.Connect(n)
		select {
		case d := <-in.ch:
			if d.Kind == ConnUp && d.DSN == n {
				return
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no answer to Connect")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("could not connect")
}
