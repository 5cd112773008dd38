package natsauth

import (
	"bytes"
	"context"
	"crypto/tls"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/pki"
	"github.com/dsnscale/dsnscale/controlplane/wire"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

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

type env struct {
	ca  *pki.CA
	clk *fakeClock
	srv *server.Server
}

// start runs a real nats-server with JetStream, configured by Apply.
func start(t *testing.T) *env {
	t.Helper()
	clk := &fakeClock{t: time.Now()}
	ca, err := pki.OpenCA(t.TempDir(), clk.Now)
	require.NoError(t, err)
	auth, err := New(Config{CA: ca})
	require.NoError(t, err)
	opts := &server.Options{
		ServerName: "natsauth-test",
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		JetStream:  true,
		StoreDir:   t.TempDir(),
		NoSigs:     true,
		NoLog:      true,
	}
	require.NoError(t, auth.Apply(opts))
	s, err := server.NewServer(opts)
	require.NoError(t, err)
	go s.Start()
	require.True(t, s.ReadyForConnections(10*time.Second))
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return &env{ca: ca, clk: clk, srv: s}
}

// violations collects the asynchronous errors the server sends a client.
type violations struct {
	mu   sync.Mutex
	errs []string
}

func (v *violations) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.errs = append(v.errs, err.Error())
}

func (v *violations) waitFor(t *testing.T, substr string) {
	t.Helper()
	require.Eventually(t, func() bool {
		v.mu.Lock()
		defer v.mu.Unlock()
		for _, e := range v.errs {
			if strings.Contains(e, substr) {
				return true
			}
		}
		return false
	}, 5*time.Second, 10*time.Millisecond, "no error containing %q", substr)
}

func (e *env) connectCP(t *testing.T) *nats.Conn {
	t.Helper()
	tc, err := e.ca.ControlPlaneTLSConfig("test-cp", time.Hour)
	require.NoError(t, err)
	nc, err := nats.Connect(e.srv.ClientURL(), nats.Secure(tc))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc
}

// dsnTLS admits a DSN: its own key, a CSR, the CA's signature.
func (e *env) dsnTLS(t *testing.T, id string) (*tls.Config, []byte) {
	t.Helper()
	key, err := pki.NewKey()
	require.NoError(t, err)
	csr, err := pki.NewCSR(key, id)
	require.NoError(t, err)
	certPEM, err := e.ca.SignCSR(csr, id, time.Hour)
	require.NoError(t, err)
	tc, err := pki.ClientTLSConfig(certPEM, key, e.ca.CertPEM())
	require.NoError(t, err)
	return tc, certPEM
}

func (e *env) connectDSN(t *testing.T, id string, tc *tls.Config, v *violations, extra ...nats.Option) (*nats.Conn, error) {
	opts := append([]nats.Option{
		nats.Secure(tc),
		nats.CustomInboxPrefix(InboxPrefix(id)),
		nats.ErrorHandler(v.handler),
		nats.MaxReconnects(0),
		nats.Timeout(3 * time.Second),
	}, extra...)
	nc, err := nats.Connect(e.srv.ClientURL(), opts...)
	if err == nil {
		t.Cleanup(nc.Close)
	}
	return nc, err
}

func TestDSNMayUseOnlyItsOwnSubjects(t *testing.T) {
	e := start(t)
	cp := e.connectCP(t)
	acks := make(chan *nats.Msg, 16)
	_, err := cp.ChanSubscribe(wire.AllAcks, acks)
	require.NoError(t, err)
	replies := make(chan string, 4)
	_, err = cp.Subscribe(wire.AllHellos, func(m *nats.Msg) {
		replies <- m.Reply
		_ = m.Respond([]byte(`{"status":"admitted"}`))
	})
	require.NoError(t, err)
	require.NoError(t, cp.Flush())

	va, vb := &violations{}, &violations{}
	tcA, _ := e.dsnTLS(t, "dsn-a")
	tcB, _ := e.dsnTLS(t, "dsn-b")
	a, err := e.connectDSN(t, "dsn-a", tcA, va)
	require.NoError(t, err)
	b, err := e.connectDSN(t, "dsn-b", tcB, vb)
	require.NoError(t, err)
	pushesB := make(chan *nats.Msg, 16)
	_, err = b.ChanSubscribe(wire.PushSubject("dsn-b"), pushesB)
	require.NoError(t, err)
	require.NoError(t, b.Flush())

	// Its own subjects work: an ack reaches the control plane, a hello gets its answer.
	require.NoError(t, a.Publish(wire.AckSubject("dsn-a"), []byte("own")))
	reply, err := a.Request(wire.HelloSubject("dsn-a"), []byte(`{}`), 3*time.Second)
	require.NoError(t, err)
	require.Contains(t, string(reply.Data), "admitted")
	require.True(t, IsInboxOf("dsn-a", <-replies), "the hello's reply subject is one of the sender's inboxes")

	// Attack: publish on another DSN's subjects.
	require.NoError(t, a.Publish(wire.AckSubject("dsn-b"), []byte("forged ack")))
	va.waitFor(t, `Permissions Violation for Publish to "dsn.v1.dsn.dsn-b.ack"`)
	require.NoError(t, a.Publish(wire.PushSubject("dsn-b"), []byte("forged push")))
	va.waitFor(t, `Permissions Violation for Publish to "dsn.v1.dsn.dsn-b.push"`)
	// Attack: publish a push to itself (only the control plane pushes).
	require.NoError(t, a.Publish(wire.PushSubject("dsn-a"), []byte("self push")))
	va.waitFor(t, `Permissions Violation for Publish to "dsn.v1.dsn.dsn-a.push"`)

	// A marker sent after the forgeries arrives; the forgeries never did.
	require.NoError(t, a.Publish(wire.AckSubject("dsn-a"), []byte("marker")))
	got := []string{}
	for len(got) < 2 {
		select {
		case m := <-acks:
			got = append(got, m.Subject+"="+string(m.Data))
		case <-time.After(5 * time.Second):
			t.Fatalf("acks: got only %v", got)
		}
	}
	require.Equal(t, []string{"dsn.v1.dsn.dsn-a.ack=own", "dsn.v1.dsn.dsn-a.ack=marker"}, got)
	require.NoError(t, cp.Publish(wire.PushSubject("dsn-b"), []byte("real push")))
	select {
	case m := <-pushesB:
		require.Equal(t, "real push", string(m.Data), "dsn-b must not see dsn-a's forged push")
	case <-time.After(5 * time.Second):
		t.Fatal("dsn-b got no push")
	}

	// Attack: eavesdrop on another DSN's pushes, or on everything.
	for _, subj := range []string{wire.PushSubject("dsn-b"), "dsn.v1.dsn.>", ">", "_INBOX.>", InboxPrefix("dsn-b") + ".>"} {
		sub, err := a.SubscribeSync(subj)
		require.NoError(t, err)
		va.waitFor(t, `Permissions Violation for Subscription to "`+subj+`"`)
		require.NoError(t, sub.Unsubscribe())
	}
	require.Empty(t, vb.errs, "dsn-b did nothing wrong")
}

func TestDSNReadsSnapshotsButWritesNothingInJetStream(t *testing.T) {
	e := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cp := e.connectCP(t)
	cpJS, err := jetstream.New(cp, jetstream.WithDefaultTimeout(30*time.Second))
	require.NoError(t, err)
	obs, err := cpJS.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: wire.SnapshotBucket})
	require.NoError(t, err)
	payload := bytes.Repeat([]byte("snapshot "), 50000) // several chunks
	_, err = obs.PutBytes(ctx, "group-1", payload)
	require.NoError(t, err)
	kv, err := cpJS.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "secrets"})
	require.NoError(t, err)
	_, err = kv.Put(ctx, "k", []byte("v"))
	require.NoError(t, err)

	v := &violations{}
	tc, _ := e.dsnTLS(t, "dsn-a")
	a, err := e.connectDSN(t, "dsn-a", tc, v)
	require.NoError(t, err)
	js, err := jetstream.New(a, jetstream.WithDefaultTimeout(30*time.Second))
	require.NoError(t, err)
	dsnObs, err := js.ObjectStore(ctx, wire.SnapshotBucket)
	require.NoError(t, err)
	got, err := dsnObs.GetBytes(ctx, "group-1")
	require.NoError(t, err)
	require.Equal(t, payload, got)

	short, cancelShort := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancelShort()
	_, err = dsnObs.PutBytes(short, "group-1", []byte("poisoned"))
	require.Error(t, err, "a DSN must not write snapshots")
	short2, cancel2 := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel2()
	_, err = js.KeyValue(short2, "secrets")
	require.Error(t, err, "a DSN must not reach other streams")
	again, err := obs.GetBytes(ctx, "group-1")
	require.NoError(t, err)
	require.Equal(t, payload, again)
}

func TestRefusedConnections(t *testing.T) {
	e := start(t)
	other, err := pki.OpenCA(t.TempDir(), e.clk.Now)
	require.NoError(t, err)
	key, err := pki.NewKey()
	require.NoError(t, err)
	csr, err := pki.NewCSR(key, "dsn-x")
	require.NoError(t, err)
	foreignPEM, err := other.SignCSR(csr, "dsn-x", time.Hour)
	require.NoError(t, err)
	foreign, err := pki.ClientTLSConfig(foreignPEM, key, e.ca.CertPEM())
	require.NoError(t, err)

	tests := []struct {
		name string
		tc   *tls.Config
		opts []nats.Option
	}{
		{"no client certificate", &tls.Config{RootCAs: e.ca.Pool(), MinVersion: tls.VersionTLS12}, nil},
		{"certificate from another CA", foreign, nil},
		{"user and password without certificate", &tls.Config{RootCAs: e.ca.Pool(), MinVersion: tls.VersionTLS12},
			[]nats.Option{nats.UserInfo("dsn:dsn-x", "secret")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.connectDSN(t, "dsn-x", tt.tc, &violations{}, tt.opts...)
			require.Error(t, err)
		})
	}
	t.Run("no TLS options", func(t *testing.T) {
		_, err := nats.Connect(e.srv.ClientURL(), nats.Timeout(2*time.Second))
		require.Error(t, err)
	})
	t.Run("expired certificate", func(t *testing.T) {
		tc, _ := e.dsnTLS(t, "dsn-old")
		_, err := e.connectDSN(t, "dsn-old", tc, &violations{})
		require.NoError(t, err)
		e.clk.Add(2 * time.Hour)
		defer e.clk.Add(-2 * time.Hour)
		_, err = e.connectDSN(t, "dsn-old", tc, &violations{})
		require.Error(t, err)
	})
}

func TestRevokedDSNIsRefusedAndDisconnected(t *testing.T) {
	e := start(t)
	tcA, certPEM := e.dsnTLS(t, "dsn-a")
	closed := make(chan struct{})
	a, err := e.connectDSN(t, "dsn-a", tcA, &violations{},
		nats.MaxReconnects(5), nats.ReconnectWait(50*time.Millisecond),
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	require.NoError(t, err)
	tcB, _ := e.dsnTLS(t, "dsn-b")
	b, err := e.connectDSN(t, "dsn-b", tcB, &violations{})
	require.NoError(t, err)

	// Decommissioning: revoke the identity, close its connections.
	require.NoError(t, e.ca.RevokeIdentity("dsn-a", "decommissioned"))
	n, err := Disconnect(e.srv, pki.Identity{Name: "dsn-a", Role: pki.RoleDSN})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	select {
	case <-closed: // its reconnects were refused until it gave up
	case <-time.After(10 * time.Second):
		t.Fatal("the revoked DSN's connection is still open")
	}
	_, err = e.connectDSN(t, "dsn-a", tcA, &violations{})
	require.Error(t, err, "a revoked identity cannot connect")
	require.True(t, b.IsConnected(), "another DSN is not affected")

	// Revoking one certificate by serial number refuses it too.
	cert, err := pki.ParseCertificatePEM(certPEM)
	require.NoError(t, err)
	require.NoError(t, e.ca.Revoke(cert.SerialNumber, "test"))
	tcC, certC := e.dsnTLS(t, "dsn-c")
	_, err = e.connectDSN(t, "dsn-c", tcC, &violations{})
	require.NoError(t, err)
	c, err := pki.ParseCertificatePEM(certC)
	require.NoError(t, err)
	require.NoError(t, e.ca.Revoke(c.SerialNumber, "stolen"))
	_, err = e.connectDSN(t, "dsn-c", tcC, &violations{})
	require.Error(t, err)
	_ = a
}

func TestConfigValidate(t *testing.T) {
	_, err := New(Config{})
	require.ErrorIs(t, err, ErrConfig)
	clk := &fakeClock{t: time.Now()}
	ca, err := pki.OpenCA(t.TempDir(), clk.Now)
	require.NoError(t, err)
	_, err = New(Config{CA: ca, ServerCertTTL: time.Second})
	require.ErrorIs(t, err, ErrConfig)
}

func TestIsInboxOf(t *testing.T) {
	require.True(t, IsInboxOf("dsn-a", "_INBOX.dsn-a.abc.1"))
	require.False(t, IsInboxOf("dsn-a", "_INBOX.dsn-ab.abc"))
	require.False(t, IsInboxOf("dsn-a", "_INBOX.dsn-a."))
	require.False(t, IsInboxOf("dsn-a", "_INBOX.dsn-b.abc"))
	require.False(t, IsInboxOf("dsn-a", "_INBOX.abc"))
}

// TestPermissionsFollowTheTenant checks that a DSN may read its own tenant's snapshot bucket
// and no other, and that a DSN with no tenant reads the base bucket.
func TestPermissionsFollowTheTenant(t *testing.T) {
	allowed := func(id pki.Identity) []string { return DefaultPermissions(id, wire.SnapshotBucket).Publish.Allow }
	acme := allowed(pki.Identity{Name: "d1", Role: pki.RoleDSN, Tenant: "acme"})
	require.Contains(t, acme, "$JS.API.STREAM.INFO.OBJ_dsn-snapshots_acme")
	require.Contains(t, acme, "$JS.API.DIRECT.GET.OBJ_dsn-snapshots_acme.>")
	for _, s := range acme {
		require.NotContains(t, s, "OBJ_dsn-snapshots_other")
		require.NotEqual(t, "$JS.API.STREAM.INFO.OBJ_dsn-snapshots", s, "a DSN of a tenant reads its own bucket only")
	}
	none := allowed(pki.Identity{Name: "d2", Role: pki.RoleDSN})
	require.Contains(t, none, "$JS.API.STREAM.INFO.OBJ_dsn-snapshots")
	require.Equal(t, wire.SnapshotBucketFor("acme"), TenantBucket(wire.SnapshotBucket, "acme"))
}
