package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/internal/natsserver"
)

// tb is what the helpers need of *testing.T, *testing.B and *rapid.T.
type tb interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// env is a store on a real embedded NATS server that can be restarted on the same data.
type env struct {
	t   tb
	dir string
	cfg Config
	srv *natsserver.Server
	nc  *nats.Conn
	js  jetstream.JetStream
	st  *KV
}

func newEnv(t testing.TB, cfg Config) *env {
	t.Helper()
	return startEnv(t, t.TempDir(), cfg)
}

// startEnv starts a server on dir and opens a store; Cleanup stops both.
func startEnv(t tb, dir string, cfg Config) *env {
	t.Helper()
	e := &env{t: t, dir: dir, cfg: cfg}
	e.start()
	t.Cleanup(e.stop)
	return e
}

// tempDir makes a directory that Cleanup removes, for *rapid.T which has no TempDir.
func tempDir(t tb) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "store-test-")
	if err != nil {
		t.Fatalf("temp dir: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func (e *env) start() {
	e.t.Helper()
	srv, err := natsserver.Start(natsserver.Config{StoreDir: e.dir})
	if err != nil {
		e.t.Fatalf("start nats: %v", err)
	}
	e.srv = srv
	nc, err := nats.Connect(srv.URL(), nats.MaxReconnects(0))
	if err != nil {
		e.t.Fatalf("connect: %v", err)
	}
	e.nc = nc
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(30*time.Second))
	if err != nil {
		e.t.Fatalf("jetstream: %v", err)
	}
	e.js = js
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := Open(ctx, js, e.cfg)
	if err != nil {
		e.t.Fatalf("open store: %v", err)
	}
	e.st = st
}

func (e *env) stop() {
	if e.st != nil {
		_ = e.st.Close()
		e.st = nil
	}
	if e.nc != nil {
		e.nc.Close()
		e.nc = nil
	}
	if e.srv != nil {
		e.srv.Stop()
		e.srv = nil
	}
}

// restart stops the store and the server and starts both again on the same data.
func (e *env) restart() {
	e.t.Helper()
	e.stop()
	e.start()
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// obj builds an object; spec is any JSON-encodable value.
func obj(kind model.Kind, tenant, name string, labels map[string]string, spec any) *model.Object {
	o := &model.Object{APIVersion: model.APIVersion, Kind: kind, Metadata: model.Metadata{Name: name, Tenant: tenant, Labels: labels}}
	if spec != nil {
		b, err := json.Marshal(spec)
		if err != nil {
			panic(err)
		}
		o.Spec = b
	}
	return o
}

func network(tenant, name string, vlan int) *model.Object {
	return obj(model.KindNetwork, tenant, name, nil, model.NetworkSpec{CIDR: "10.0.0.0/24", VLAN: vlan})
}

func create(o *model.Object) Op { return Op{Type: OpCreate, Object: o} }
func update(o *model.Object) Op { return Op{Type: OpUpdate, Object: o} }
func del(o *model.Object) Op    { return Op{Type: OpDelete, Object: o} }

// mustCommit commits ops and returns the stored objects and revision.
func mustCommit(t testing.TB, s *KV, ops ...Op) ([]*model.Object, Revision) {
	t.Helper()
	objs, rev, err := s.Commit(ctxT(t), ops, nil, false)
	require.NoError(t, err)
	return objs, rev
}

// rv renders a revision as a resourceVersion.
func rv(r Revision) string { return fmt.Sprint(r) }

// collect reads n events from w, failing after a timeout.
func collect(t testing.TB, w Watcher, n int) []Event {
	t.Helper()
	var out []Event
	timeout := time.After(10 * time.Second)
	for len(out) < n {
		select {
		case ev, ok := <-w.Events():
			if !ok {
				t.Fatalf("watch closed after %d of %d events: %v", len(out), n, w.Err())
			}
			out = append(out, ev)
		case <-timeout:
			t.Fatalf("watch delivered %d of %d events in 10s", len(out), n)
		}
	}
	return out
}

// encodeContinueRaw makes a continue token of any string, valid key or not.
func encodeContinueRaw(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
