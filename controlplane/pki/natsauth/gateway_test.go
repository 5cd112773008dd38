package natsauth

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/pki"
	"github.com/dsnscale/dsnscale/controlplane/wire"
)

// TestGatewaySpeaksForDSNsButCannotPushOrRenew checks the fleet gateway's permissions: every
// DSN's subjects but pushes and renewals, every DSN's pushes to read, its own inboxes only.
func TestGatewaySpeaksForDSNsButCannotPushOrRenew(t *testing.T) {
	e := start(t)
	cp := e.connectCP(t)
	acks := make(chan *nats.Msg, 8)
	_, err := cp.ChanSubscribe(wire.AllAcks, acks)
	require.NoError(t, err)
	require.NoError(t, cp.Flush())

	key, err := pki.NewKey()
	require.NoError(t, err)
	csr, err := pki.NewCSRFor(key, pki.Identity{Name: "gw", Role: pki.RoleGateway})
	require.NoError(t, err)
	certPEM, err := e.ca.SignCSRFor(csr, pki.Identity{Name: "gw", Role: pki.RoleGateway}, time.Hour)
	require.NoError(t, err)
	tc, err := pki.ClientTLSConfig(certPEM, key, e.ca.CertPEM())
	require.NoError(t, err)
	v := &violations{}
	gw, err := e.connectDSN(t, "gw", tc, v)
	require.NoError(t, err)

	pushes := make(chan *nats.Msg, 8)
	_, err = gw.ChanSubscribe(wire.PushSubject("dsn-1"), pushes)
	require.NoError(t, err)
	require.NoError(t, gw.Flush())
	require.NoError(t, gw.Publish(wire.AckSubject("dsn-1"), []byte("a1")))
	require.NoError(t, gw.Publish(wire.AckSubject("dsn-2"), []byte("a2")))
	for _, want := range []string{"a1", "a2"} {
		select {
		case m := <-acks:
			require.Equal(t, want, string(m.Data))
		case <-time.After(5 * time.Second):
			t.Fatalf("ack %s never arrived", want)
		}
	}
	require.NoError(t, cp.Publish(wire.PushSubject("dsn-1"), []byte("p")))
	select {
	case m := <-pushes:
		require.Equal(t, "p", string(m.Data))
	case <-time.After(5 * time.Second):
		t.Fatal("the gateway got no push")
	}

	require.NoError(t, gw.Publish(wire.PushSubject("dsn-1"), []byte("forged")))
	v.waitFor(t, `Permissions Violation for Publish to "dsn.v1.dsn.dsn-1.push"`)
	require.NoError(t, gw.Publish(wire.RenewSubject("dsn-1"), []byte("{}")))
	v.waitFor(t, `Permissions Violation for Publish to "dsn.v1.dsn.dsn-1.renew"`)
	_, err = gw.SubscribeSync(InboxPrefix("dsn-1") + ".>")
	require.NoError(t, err)
	v.waitFor(t, `Permissions Violation for Subscription to "_INBOX.dsn-1.>"`)
	_, err = gw.SubscribeSync(wire.AllAcks)
	require.NoError(t, err)
	v.waitFor(t, `Permissions Violation for Subscription to "dsn.v1.dsn.*.ack"`)
}
