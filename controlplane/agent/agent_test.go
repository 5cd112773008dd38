package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/pki"
	"github.com/dsnscale/dsnscale/controlplane/wire"
	"github.com/dsnscale/dsnscale/internal/natsserver"
)

// script plays the control plane's side of the protocol by hand, on a real NATS server, so
// that each rule of the agent can be checked in isolation.
type script struct {
	t      *testing.T
	dir    string
	listen string
	srv    *natsserver.Server
	nc     *nats.Conn
	js     jetstream.JetStream
	hellos chan *nats.Msg
	acks   chan wire.Ack
}

func newScript(t *testing.T) *script {
	s := &script{t: t, dir: t.TempDir(), hellos: make(chan *nats.Msg, 16), acks: make(chan wire.Ack, 64)}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *script) start() {
	srv, err := natsserver.Start(natsserver.Config{StoreDir: s.dir, Listen: s.listen})
	require.NoError(s.t, err)
	s.srv = srv
	s.listen = srv.Addr().(*net.TCPAddr).String()
	s.nc, err = nats.Connect(srv.URL())
	require.NoError(s.t, err)
	s.js, err = jetstream.New(s.nc, jetstream.WithDefaultTimeout(30*time.Second))
	require.NoError(s.t, err)
	_, err = s.nc.ChanSubscribe(wire.AllHellos, s.hellos)
	require.NoError(s.t, err)
	_, err = s.nc.Subscribe(wire.AllAcks, func(m *nats.Msg) {
		var a wire.Ack
		if json.Unmarshal(m.Data, &a) == nil {
			s.acks <- a
		}
	})
	require.NoError(s.t, err)
	require.NoError(s.t, s.nc.Flush())
}

func (s *script) stop() {
	s.nc.Close()
	s.srv.Stop()
}

// hello waits for the agent's next Hello.
func (s *script) hello() (*nats.Msg, wire.Hello) {
	s.t.Helper()
	select {
	case m := <-s.hellos:
		var h wire.Hello
		require.NoError(s.t, wire.Unmarshal(m.Data, &h))
		return m, h
	case <-time.After(10 * time.Second):
		s.t.Fatal("no hello")
		return nil, wire.Hello{}
	}
}

func (s *script) answer(m *nats.Msg, adm wire.Admission) {
	s.t.Helper()
	if adm.Status == wire.Admitted {
		adm.HeartbeatIntervalMs = 100
		adm.SessionID = "s-" + strconv.FormatUint(adm.Revision, 10)
	}
	b, err := json.Marshal(adm)
	require.NoError(s.t, err)
	require.NoError(s.t, m.Respond(b))
}

func (s *script) push(id string, p wire.Push) {
	s.t.Helper()
	b, err := json.Marshal(p)
	require.NoError(s.t, err)
	require.NoError(s.t, s.nc.Publish(wire.PushSubject(id), b))
}

func (s *script) ack() wire.Ack {
	s.t.Helper()
	select {
	case a := <-s.acks:
		return a
	case <-time.After(10 * time.Second):
		s.t.Fatal("no ack")
		return wire.Ack{}
	}
}

func netObj(name string, rev uint64) *model.Object {
	o := &model.Object{APIVersion: model.APIVersion, Kind: model.KindNetwork,
		Metadata: model.Metadata{Name: name, Tenant: "t", ResourceVersion: strconv.FormatUint(rev, 10)}}
	_ = o.EncodeSpec(model.NetworkSpec{CIDR: "10.0.0.0/24"})
	return o
}

func putNet(name string, rev uint64) wire.Change {
	return wire.Change{Op: wire.OpPut, Kind: model.KindNetwork, Tenant: "t", Name: name, Revision: rev, Object: netObj(name, rev)}
}

func names(a *Agent) []string {
	_, objs := a.Config()
	out := []string{}
	for _, o := range objs {
		out = append(out, o.Metadata.Name+"@"+o.Metadata.ResourceVersion)
	}
	return out
}

func run(t *testing.T, cfg Config) (*Agent, chan error) {
	a, err := New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return a, done
}

func TestAgentFollowsTheRules(t *testing.T) {
	s := newScript(t)
	nc, err := nats.Connect(s.srv.URL(), nats.ReconnectWait(20*time.Millisecond), nats.MaxReconnects(-1))
	require.NoError(t, err)
	defer nc.Close()
	var mu sync.Mutex
	var applies, acks []uint64
	a, _ := run(t, Config{ID: "d1", Labels: map[string]string{"role": "web"}, Conn: nc,
		OnAck: func(rev uint64, _ time.Time) {
			mu.Lock()
			acks = append(acks, rev)
			mu.Unlock()
		},
		InitialRevision: 5, InitialObjects: []model.Object{*netObj("a", 4)},
		QuarantineHold: 100 * time.Millisecond, MinBackoff: 10 * time.Millisecond,
		OnApply: func(rev uint64, _ time.Time) {
			mu.Lock()
			applies = append(applies, rev)
			mu.Unlock()
		}})

	// Hello carries the cached revision; up to date needs no ack.
	m, h := s.hello()
	assert.Equal(t, uint64(5), h.AppliedRevision)
	assert.Equal(t, "d1", h.DSN)
	assert.NotEmpty(t, h.BootID)
	s.answer(m, wire.Admission{Status: wire.Admitted, Revision: 5, UpToDate: true})
	require.Eventually(t, func() bool { return a.State() == "serving" }, 5*time.Second, time.Millisecond)
	assert.Equal(t, []string{"a@4"}, names(a))

	// A current push advances the revision and is acked; a duplicate is ignored.
	s.push("d1", wire.Push{Type: wire.PushCurrent, From: 5, To: 6})
	assert.Equal(t, wire.Ack{DSN: "d1", SessionID: "s-5", Revision: 6}, s.ack())
	s.push("d1", wire.Push{Type: wire.PushCurrent, From: 5, To: 6})
	// A delta applies its changes.
	s.push("d1", wire.Push{Type: wire.PushDelta, From: 6, To: 8, Changes: []wire.Change{putNet("b", 7),
		{Op: wire.OpDelete, Kind: model.KindNetwork, Tenant: "t", Name: "a", Revision: 8}}})
	assert.Equal(t, uint64(8), s.ack().Revision)
	assert.Equal(t, []string{"b@7"}, names(a))
	assert.EqualValues(t, 1, a.Stats().Duplicates)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Equal(acks, []uint64{6, 8})
	}, 5*time.Second, time.Millisecond, "OnAck hears of each ack sent")

	// A push that does not follow on is a gap: the agent says Hello with what it has.
	s.push("d1", wire.Push{Type: wire.PushCurrent, From: 9, To: 10})
	m, h = s.hello()
	assert.Equal(t, uint64(8), h.AppliedRevision)
	assert.EqualValues(t, 1, a.Stats().Gaps)
	// Retry is honoured, then an inline delta brings it up to date.
	s.answer(m, wire.Admission{Status: wire.Retry, RetryAfterMs: 30})
	start := time.Now()
	m, _ = s.hello()
	assert.GreaterOrEqual(t, time.Since(start), 25*time.Millisecond)
	s.answer(m, wire.Admission{Status: wire.Admitted, Revision: 10, Delta: &wire.Push{Type: wire.PushDelta, From: 8, To: 10, Changes: []wire.Change{putNet("c", 9)}}})
	assert.Equal(t, wire.Ack{DSN: "d1", SessionID: "s-10", Revision: 10}, s.ack())
	assert.Equal(t, []string{"b@7", "c@9"}, names(a))

	// Rehello: a snapshot admission replaces the config; a push left over from before the
	// admission is ignored and the catch-up after the snapshot applies.
	snap := wire.Snapshot{Group: "g", Revision: 11, Objects: []model.Object{*netObj("z", 11)}}
	data, _ := json.Marshal(snap)
	obs, err := s.js.CreateObjectStore(context.Background(), jetstream.ObjectStoreConfig{Bucket: wire.SnapshotBucket})
	require.NoError(t, err)
	_, err = obs.PutBytes(context.Background(), wire.SnapshotObject("g"), data)
	require.NoError(t, err)
	sum := sha256.Sum256(data)
	s.push("d1", wire.Push{Type: wire.PushRehello})
	m, h = s.hello()
	assert.Equal(t, uint64(10), h.AppliedRevision)
	s.push("d1", wire.Push{Type: wire.PushCurrent, From: 12, To: 12}) // left over
	s.push("d1", wire.Push{Type: wire.PushCurrent, From: 11, To: 12}) // catch-up
	s.answer(m, wire.Admission{Status: wire.Admitted, Revision: 12, Snapshot: &wire.SnapshotRef{Bucket: wire.SnapshotBucket,
		Object: wire.SnapshotObject("g"), Revision: 11, Size: len(data), SHA256: hex.EncodeToString(sum[:])}})
	assert.Equal(t, uint64(11), s.ack().Revision)
	assert.Equal(t, uint64(12), s.ack().Revision)
	assert.Equal(t, []string{"z@11"}, names(a))
	assert.Zero(t, a.Stats().Gaps-1, "the left-over push is not a gap")

	// Quarantine: the agent keeps its config, waits its hold, then says Hello again.
	s.push("d1", wire.Push{Type: wire.PushQuarantine, Reason: "test"})
	require.Eventually(t, func() bool { return a.State() == "quarantined" }, 5*time.Second, time.Millisecond)
	start = time.Now()
	m, h = s.hello()
	assert.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond)
	assert.Equal(t, uint64(12), h.AppliedRevision)
	s.answer(m, wire.Admission{Status: wire.Admitted, Revision: 12, UpToDate: true})
	assert.Equal(t, []string{"z@11"}, names(a))

	// A reconnect makes it say Hello again.
	require.Eventually(t, func() bool { return a.State() == "serving" }, 5*time.Second, time.Millisecond)
	s.stop()
	s.start()
	m, h = s.hello()
	assert.Equal(t, uint64(12), h.AppliedRevision)
	s.answer(m, wire.Admission{Status: wire.Admitted, Revision: 12, UpToDate: true})

	mu.Lock()
	assert.Equal(t, []uint64{6, 8, 10, 11, 12}, applies)
	mu.Unlock()
	st := a.Stats()
	assert.EqualValues(t, 1, st.Snapshots)
	assert.EqualValues(t, 1, st.Deltas)
	assert.EqualValues(t, 1, st.Quarantines)
	assert.GreaterOrEqual(t, st.Rehellos, int64(2))
}

func TestAgentHeartbeats(t *testing.T) {
	s := newScript(t)
	hbs := make(chan wire.Heartbeat, 8)
	_, err := s.nc.Subscribe(wire.AllHeartbeats, func(m *nats.Msg) {
		var hb wire.Heartbeat
		if wire.Unmarshal(m.Data, &hb) == nil {
			hbs <- hb
		}
	})
	require.NoError(t, err)
	nc, err := nats.Connect(s.srv.URL())
	require.NoError(t, err)
	defer nc.Close()
	run(t, Config{ID: "d1", Conn: nc, InitialRevision: 3})
	m, _ := s.hello()
	s.answer(m, wire.Admission{Status: wire.Admitted, Revision: 3, UpToDate: true})
	for i := 0; i < 2; i++ {
		select {
		case hb := <-hbs:
			assert.Equal(t, wire.Heartbeat{DSN: "d1", SessionID: "s-3", AppliedRevision: 3, State: wire.StateServing, SentUnixNano: hb.SentUnixNano}, hb)
		case <-time.After(5 * time.Second):
			t.Fatal("no heartbeat")
		}
	}
}

func TestAgentRejected(t *testing.T) {
	s := newScript(t)
	nc, err := nats.Connect(s.srv.URL())
	require.NoError(t, err)
	defer nc.Close()
	_, done := run(t, Config{ID: "d1", Conn: nc})
	m, _ := s.hello()
	s.answer(m, wire.Admission{Status: wire.Rejected, Reason: "no"})
	select {
	case err := <-done:
		require.ErrorIs(t, err, ErrRejected)
		assert.Contains(t, err.Error(), "no")
		done <- nil // for the cleanup
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
}

func TestBackoff(t *testing.T) {
	a, err := New(Config{ID: "d", Conn: &nats.Conn{}, MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second})
	require.NoError(t, err)
	for n, want := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		want *= time.Millisecond
		for i := 0; i < 50; i++ {
			d := a.backoff(n)
			require.GreaterOrEqual(t, d, want/2)
			require.LessOrEqual(t, d, want)
		}
	}
	assert.Equal(t, time.Second, max(a.backoff(1000), time.Second), "no overflow")
}

func TestConfigValidate(t *testing.T) {
	nc := &nats.Conn{}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"ok", Config{ID: "d", Conn: nc}, ""},
		{"bad id", Config{ID: "d.1", Conn: nc}, "ID"},
		{"no conn", Config{ID: "d"}, "Conn"},
		{"bad label", Config{ID: "d", Conn: nc, Labels: map[string]string{"a": "x,y"}}, "Labels"},
		{"backoff order", Config{ID: "d", Conn: nc, MinBackoff: time.Second, MaxBackoff: time.Millisecond}, "MinBackoff"},
		{"negative", Config{ID: "d", Conn: nc, HelloTimeout: -1}, "HelloTimeout"},
		{"initial object", Config{ID: "d", Conn: nc, InitialObjects: []model.Object{{}}}, "InitialObjects[0]"},
		{"identity", Config{ID: "d", Conn: nc, Identity: &Identity{name: "d", role: pki.RoleDSN}}, ""},
		{"identity of another DSN", Config{ID: "d", Conn: nc, Identity: &Identity{name: "e", role: pki.RoleDSN}}, `names "e"`},
		{"gateway identity", Config{ID: "d", Conn: nc, Identity: &Identity{name: "d", role: pki.RoleGateway}}, "not renewed over the bus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrConfig)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	_, err := NewPool(PoolConfig{URL: "nats://127.0.0.1:1", Agents: []Config{{ID: "a"}, {ID: "a"}}})
	require.ErrorIs(t, err, ErrConfig)
	assert.Contains(t, err.Error(), "used twice")
	_, err = NewPool(PoolConfig{})
	assert.True(t, errors.Is(err, ErrConfig))
}

func TestPoolSharesConnections(t *testing.T) {
	s := newScript(t)
	var cfgs []Config
	for i := 0; i < 10; i++ {
		cfgs = append(cfgs, Config{ID: "d" + strconv.Itoa(i)})
	}
	p, err := NewPool(PoolConfig{URL: s.srv.URL(), Connections: 3, Agents: cfgs})
	require.NoError(t, err)
	defer p.Close()
	assert.Len(t, p.Conns(), 3)
	require.Len(t, p.Agents(), 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	for i := 0; i < 10; i++ {
		m, h := s.hello()
		s.answer(m, wire.Admission{Status: wire.Admitted, Revision: 1, UpToDate: true})
		_ = h
	}
	for _, a := range p.Agents() {
		require.Eventually(t, func() bool { return a.Applied() == 1 }, 5*time.Second, time.Millisecond)
	}
	cancel()
	require.NoError(t, <-done)
}
