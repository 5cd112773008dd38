package securitytest

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane"
	"github.com/dsnscale/dsnscale/controlplane/agent"
	"github.com/dsnscale/dsnscale/controlplane/client"
	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/pki"
	"github.com/dsnscale/dsnscale/controlplane/wire"
)

// TestTenantIsolation runs the southbound attacks across tenants against one control plane
// with its real bus: a DSN's tenant and labels are what admission fixed, it sees its own
// tenant's objects only, and the bus refuses it other tenants' snapshots.
func TestTenantIsolation(t *testing.T) {
	e := start(t, nil, controlplane.RateLimits{})
	ctx := e.ctx()

	// Two tenants, each with a network and a policy selecting role=web.
	policy := func(tenant, net string) *model.Object {
		return obj(model.KindPolicy, tenant, "web-in", model.PolicySpec{
			Selector: model.Selector{MatchLabels: map[string]string{"role": "web"}},
			Rules:    []model.Rule{{Action: model.ActionAllow, To: model.Peer{Network: net}, Protocol: "tcp", Ports: []string{"443"}}},
		})
	}
	for _, o := range []*model.Object{obj(model.KindTenant, "", "acme", model.TenantSpec{}), obj(model.KindTenant, "", "other", model.TenantSpec{}),
		network("acme", "web", 10), network("other", "secret", 11), policy("acme", "web"), policy("other", "secret")} {
		_, err := e.admin.Create(ctx, o)
		require.NoError(t, err)
	}
	// A Hello is answered at the distributed revision, which trails the store by up to the
	// coalescing window: the snapshots below must hold every object just created.
	rev, err := e.admin.Revision(ctx)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return e.srv.DistributedRevision() >= rev }, 10*time.Second, 5*time.Millisecond)

	acmeConn, _ := e.admitInto(t, "acme-1", "acme", map[string]string{"role": "web", "site": "lon1"})
	othConn, othViol := e.admitInto(t, "other-1", "other", map[string]string{"site": "lon1"})

	t.Run("label escalation in Hello", func(t *testing.T) {
		for _, labels := range []map[string]string{
			{"site": "par1"},                // another value of an admitted label
			{"role": "web", "site": "lon1"}, // a label it was not admitted with
		} {
			adm := hello(t, othConn, "other-1", labels)
			assert.Equal(t, wire.Rejected, adm.Status, "labels %v", labels)
			assert.Contains(t, adm.Reason, "labels.", "the reason names the label")
			assert.Nil(t, adm.Snapshot)
		}
		d, err := e.admin.DSN(ctx, "other-1")
		if err == nil {
			assert.Equal(t, map[string]string{"site": "lon1"}, d.Metadata.Labels, "the refused Hellos changed nothing")
		} else {
			require.True(t, client.IsNotFound(err), "%v", err)
		}
	})

	t.Run("labels wiped by an empty Hello", func(t *testing.T) {
		adm := hello(t, othConn, "other-1", map[string]string{"site": "lon1"})
		require.Equal(t, wire.Admitted, adm.Status, adm.Reason)
		adm = hello(t, othConn, "other-1", nil)
		require.Equal(t, wire.Admitted, adm.Status, adm.Reason)
		d, err := e.admin.DSN(ctx, "other-1")
		require.NoError(t, err)
		assert.Equal(t, map[string]string{"site": "lon1"}, d.Metadata.Labels)
		assert.Equal(t, "other", d.Metadata.Tenant)
	})

	var acmeSnap *wire.SnapshotRef
	t.Run("cross-tenant view", func(t *testing.T) {
		pushes := make(chan *nats.Msg, 64)
		sub, err := acmeConn.ChanSubscribe(wire.PushSubject("acme-1"), pushes)
		require.NoError(t, err)
		defer func() { _ = sub.Unsubscribe() }()
		adm := hello(t, acmeConn, "acme-1", nil)
		require.Equal(t, wire.Admitted, adm.Status, adm.Reason)
		require.NotNil(t, adm.Snapshot, "acme-1 has a policy to receive")
		acmeSnap = adm.Snapshot
		assert.Equal(t, wire.SnapshotBucketFor("acme"), adm.Snapshot.Bucket)
		snap := fetchSnapshot(t, acmeConn, adm.Snapshot)
		assert.ElementsMatch(t, []model.Key{
			{Kind: model.KindNetwork, Tenant: "acme", Name: "web"}, {Kind: model.KindPolicy, Tenant: "acme", Name: "web-in"},
		}, keysOf(snap.Objects), "acme-1 (role=web) gets acme's policy and network, none of other's")
		ack, err := json.Marshal(wire.Ack{DSN: "acme-1", SessionID: adm.SessionID, Revision: snap.Revision})
		require.NoError(t, err)
		require.NoError(t, acmeConn.Publish(wire.AckSubject("acme-1"), ack))

		// A DSN of other with the same labels gets other's objects only.
		other2, _ := e.admitInto(t, "other-2", "other", map[string]string{"role": "web", "site": "lon1"})
		adm2 := hello(t, other2, "other-2", nil)
		require.Equal(t, wire.Admitted, adm2.Status, adm2.Reason)
		require.NotNil(t, adm2.Snapshot)
		assert.Equal(t, wire.SnapshotBucketFor("other"), adm2.Snapshot.Bucket)
		assert.ElementsMatch(t, []model.Key{
			{Kind: model.KindNetwork, Tenant: "other", Name: "secret"}, {Kind: model.KindPolicy, Tenant: "other", Name: "web-in"},
		}, keysOf(fetchSnapshot(t, other2, adm2.Snapshot).Objects))

		// A policy of other created now is not pushed to acme-1; an acme policy created after
		// it is, and its push ends the wait.
		late := policy("other", "secret")
		late.Metadata.Name = "late"
		_, err = e.admin.Create(ctx, late)
		require.NoError(t, err)
		mark := policy("acme", "web")
		mark.Metadata.Name = "mark"
		created, err := e.admin.Create(ctx, mark)
		require.NoError(t, err)
		rev, err := strconv.ParseUint(created.Metadata.ResourceVersion, 10, 64)
		require.NoError(t, err)
		sawMark := false
		for !sawMark {
			select {
			case m := <-pushes:
				var p wire.Push
				require.NoError(t, json.Unmarshal(m.Data, &p))
				for _, c := range p.Changes {
					assert.Equal(t, "acme", c.Tenant, "change %s reached acme-1", c.Key())
					sawMark = sawMark || c.Name == "mark"
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("acme-1 got no push of revision %d", rev)
			}
		}
	})

	t.Run("cross-tenant snapshot list and get", func(t *testing.T) {
		require.NotNil(t, acmeSnap, "the cross-tenant view ran first")
		js, err := jetstream.New(othConn)
		require.NoError(t, err)
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err = js.ObjectStore(cctx, acmeSnap.Bucket)
		assert.Error(t, err, "other-1 opened acme's snapshot bucket")
		othViol.waitFor(t, `Permissions Violation for Publish to "$JS.API.STREAM.INFO.OBJ_`+acmeSnap.Bucket)
		// Reading the object's chunks directly is refused too.
		_, err = othConn.Request("$JS.API.DIRECT.GET.OBJ_"+acmeSnap.Bucket, []byte(`{"last_by_subj":"$O.`+acmeSnap.Bucket+`.M.>"}`), time.Second)
		assert.Error(t, err)
		othViol.waitFor(t, `Permissions Violation for Publish to "$JS.API.DIRECT.GET.OBJ_`+acmeSnap.Bucket)
		_, err = othConn.Request("$JS.API.CONSUMER.CREATE.OBJ_"+acmeSnap.Bucket, []byte(`{}`), time.Second)
		assert.Error(t, err)
		othViol.waitFor(t, `Permissions Violation for Publish to "$JS.API.CONSUMER.CREATE.OBJ_`+acmeSnap.Bucket)
		// Nor may it list the streams to find them.
		_, err = othConn.Request("$JS.API.STREAM.NAMES", []byte(`{}`), time.Second)
		assert.Error(t, err)
		othViol.waitFor(t, `Permissions Violation for Publish to "$JS.API.STREAM.NAMES"`)
	})

	t.Run("labels change through the API by an allowed user only", func(t *testing.T) {
		reader := e.user("dsn-reader", []string{"get", "list"}, []string{"DSN"}, []string{"*"})
		e.waitAuthorized(reader, "/api/v1/dsns/other-1")
		body := []byte(`{"labels":{"site":"par1","role":"web"}}`)
		code, msg := e.call("PUT", "/api/v1/dsns/other-1", reader, body)
		assert.Equal(t, http.StatusForbidden, code, msg)
		adm := hello(t, othConn, "other-1", map[string]string{"site": "par1"})
		assert.Equal(t, wire.Rejected, adm.Status, "the refused change changed nothing")

		admin, err := e.admin.Token(ctx)
		require.NoError(t, err)
		code, msg = e.call("PUT", "/api/v1/dsns/other-1", admin, body)
		require.Equal(t, http.StatusOK, code, msg)
		adm = hello(t, othConn, "other-1", map[string]string{"site": "par1"})
		require.Equal(t, wire.Admitted, adm.Status, adm.Reason)
		d, err := e.admin.DSN(ctx, "other-1")
		require.NoError(t, err)
		assert.Equal(t, map[string]string{"site": "par1", "role": "web"}, d.Metadata.Labels)
		assert.Equal(t, "other", d.Metadata.Tenant, "the tenant stays")
		// Its new view (a snapshot, or a delta from nothing) is other's role=web objects.
		var got []model.Key
		switch {
		case adm.Snapshot != nil:
			assert.Equal(t, wire.SnapshotBucketFor("other"), adm.Snapshot.Bucket)
			got = keysOf(fetchSnapshot(t, othConn, adm.Snapshot).Objects)
		case adm.Delta != nil:
			for _, c := range adm.Delta.Changes {
				got = append(got, c.Key())
			}
		}
		assert.ElementsMatch(t, []model.Key{
			{Kind: model.KindNetwork, Tenant: "other", Name: "secret"}, {Kind: model.KindPolicy, Tenant: "other", Name: "late"},
			{Kind: model.KindPolicy, Tenant: "other", Name: "web-in"},
		}, got)
	})
}

func keysOf(objs []model.Object) []model.Key {
	out := make([]model.Key, len(objs))
	for i := range objs {
		out[i] = objs[i].Key()
	}
	return out
}

// admitInto admits a DSN into tenant with labels through the API and connects it to the bus.
func (e *env) admitInto(t *testing.T, id, tenant string, labels map[string]string) (*nats.Conn, *violations) {
	t.Helper()
	secret := e.dsnToken(client.BootstrapTokenSpec{Tenant: tenant, DSN: id})
	ident, err := agent.Admit(e.ctx(), client.New(e.srv.APIURL(), e.hc), secret, id, pki.RoleDSN, labels)
	require.NoError(t, err)
	v := &violations{}
	nc, err := e.connect(ident, v)
	require.NoError(t, err)
	return nc, v
}

// hello says Hello as dsn with labels and returns the answer.
func hello(t *testing.T, nc *nats.Conn, dsn string, labels map[string]string) wire.Admission {
	t.Helper()
	msg, err := nc.Request(wire.HelloSubject(dsn), mustJSON(t, wire.Hello{Protocol: wire.Version, DSN: dsn, Labels: labels}), 10*time.Second)
	require.NoError(t, err)
	var adm wire.Admission
	require.NoError(t, json.Unmarshal(msg.Data, &adm))
	return adm
}

// fetchSnapshot reads a snapshot as the DSN of nc.
func fetchSnapshot(t *testing.T, nc *nats.Conn, ref *wire.SnapshotRef) wire.Snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	obs, err := js.ObjectStore(ctx, ref.Bucket)
	require.NoError(t, err)
	b, err := obs.GetBytes(ctx, ref.Object)
	require.NoError(t, err)
	var s wire.Snapshot
	require.NoError(t, json.Unmarshal(b, &s))
	return s
}
