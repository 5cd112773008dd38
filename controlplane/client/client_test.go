package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/api"
	"github.com/dsnscale/dsnscale/controlplane/client"
	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/store"
	"github.com/dsnscale/dsnscale/internal/natsserver"
)

// env is the reference API on a real store on a real embedded NATS server, and a client for it.
type env struct {
	c       *client.Client
	store   *store.KV
	fleet   *fleet
	srv     *httptest.Server
	headers chan http.Header // every request's headers, when set
}

func newEnv(t *testing.T, opts ...client.Option) *env {
	t.Helper()
	ns, err := natsserver.Start(natsserver.Config{StoreDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(ns.Stop)
	nc, err := nats.Connect(ns.URL(), nats.MaxReconnects(0))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(30*time.Second))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := store.Open(ctx, js, store.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	e := &env{store: st, fleet: &fleet{dsns: map[string]*model.Object{}}}
	h, err := api.New(api.Config{Store: st, Fleet: e.fleet, Registry: prometheus.NewRegistry(), HeartbeatInterval: 50 * time.Millisecond})
	require.NoError(t, err)
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e.headers != nil {
			e.headers <- r.Header.Clone()
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(e.srv.Close)
	e.c = client.New(e.srv.URL+"/", nil, opts...)
	return e
}

func tenantObj(name string) *model.Object {
	return &model.Object{APIVersion: model.APIVersion, Kind: model.KindTenant, Metadata: model.Metadata{Name: name}}
}

func networkObj(t *testing.T, tenant, name string, vlan int, labels map[string]string) *model.Object {
	o := &model.Object{APIVersion: model.APIVersion, Kind: model.KindNetwork, Metadata: model.Metadata{Name: name, Tenant: tenant, Labels: labels}}
	require.NoError(t, o.EncodeSpec(model.NetworkSpec{CIDR: fmt.Sprintf("10.%d.0.0/16", vlan%256), VLAN: vlan}))
	return o
}

func policyObj(t *testing.T, tenant, name, from string) *model.Object {
	o := &model.Object{APIVersion: model.APIVersion, Kind: model.KindPolicy, Metadata: model.Metadata{Name: name, Tenant: tenant}}
	require.NoError(t, o.EncodeSpec(model.PolicySpec{Rules: []model.Rule{{Action: model.ActionAllow, From: model.Peer{Network: from}}}}))
	return o
}

func TestObjects(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.c.Create(ctx, tenantObj("acme"))
	require.NoError(t, err)
	for i := range 5 {
		tier := map[string]string{"tier": []string{"web", "db"}[i%2]}
		n, err := e.c.Create(ctx, networkObj(t, "acme", fmt.Sprintf("n%d", i), i+1, tier))
		require.NoError(t, err)
		assert.NotEmpty(t, n.Metadata.ResourceVersion)
	}
	got, err := e.c.Get(ctx, model.Key{Kind: model.KindNetwork, Tenant: "acme", Name: "n1"})
	require.NoError(t, err)
	assert.Equal(t, "db", got.Metadata.Labels["tier"])

	page, err := e.c.List(ctx, model.KindNetwork, client.ListOptions{Tenant: "acme", Limit: 2})
	require.NoError(t, err)
	assert.Equal(t, "NetworkList", page.Kind)
	assert.Len(t, page.Items, 2)
	assert.NotEmpty(t, page.Continue)
	assert.NotZero(t, page.Revision)
	all, err := e.c.ListAll(ctx, model.KindNetwork, client.ListOptions{Tenant: "acme"}, 2)
	require.NoError(t, err)
	assert.Len(t, all, 5)
	dbs, err := e.c.ListAll(ctx, model.KindNetwork, client.ListOptions{Selector: map[string]string{"tier": "db"}}, 0)
	require.NoError(t, err)
	assert.Len(t, dbs, 2)

	// Compare-and-swap.
	upd := networkObj(t, "acme", "n1", 42, nil)
	upd.Metadata.ResourceVersion = got.Metadata.ResourceVersion
	after, err := e.c.Update(ctx, upd)
	require.NoError(t, err)
	_, err = e.c.Update(ctx, upd)
	require.True(t, client.IsConflict(err), "%v", err)
	var ae *client.APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, "Conflict", ae.Reason)
	assert.Equal(t, "metadata.resourceVersion", ae.Field)

	// Field paths of invalid objects, with every problem in Details.
	bad := networkObj(t, "acme", "n9", 0, nil)
	bad.Spec = json.RawMessage(`{"cidr":"10.0.0.1/8","vlan":0}`)
	_, err = e.c.Create(ctx, bad)
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, http.StatusUnprocessableEntity, ae.Code)
	assert.Equal(t, "spec.cidr", ae.Field)
	assert.Equal(t, []client.FieldError{{Field: "spec.cidr", Message: ae.Details[0].Message}, {Field: "spec.vlan", Message: ae.Details[1].Message}}, ae.Details)

	// Relations.
	_, err = e.c.Create(ctx, policyObj(t, "acme", "p", "nope"))
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, "spec.rules[0].from.network", ae.Field)
	_, err = e.c.Create(ctx, policyObj(t, "acme", "p", "n1"))
	require.NoError(t, err)
	_, err = e.c.Delete(ctx, model.Key{Kind: model.KindNetwork, Tenant: "acme", Name: "n1"})
	assert.True(t, client.IsConflict(err))

	// Dry runs store nothing.
	rev, err := e.c.Revision(ctx)
	require.NoError(t, err)
	_, err = e.c.Create(ctx, tenantObj("dry"), client.DryRun())
	require.NoError(t, err)
	_, err = e.c.Get(ctx, model.Key{Kind: model.KindTenant, Name: "dry"})
	assert.True(t, client.IsNotFound(err), "%v", err)
	rev2, err := e.c.Revision(ctx)
	require.NoError(t, err)
	assert.Equal(t, rev, rev2)

	// Conditional delete.
	key := model.Key{Kind: model.KindNetwork, Tenant: "acme", Name: "n4"}
	_, err = e.c.Delete(ctx, key, client.IfResourceVersion("1"))
	assert.True(t, client.IsConflict(err))
	n4, err := e.c.Get(ctx, key)
	require.NoError(t, err)
	last, err := e.c.Delete(ctx, key, client.IfResourceVersion(n4.Metadata.ResourceVersion))
	require.NoError(t, err)
	assert.Equal(t, "n4", last.Metadata.Name)
	_ = after

	// Calls that cannot name a URL fail before sending.
	_, err = e.c.Get(ctx, model.Key{Kind: model.KindNetwork, Name: "x"})
	assert.ErrorIs(t, err, client.ErrBadRequest)
	_, err = e.c.Get(ctx, model.Key{Kind: model.KindTenant})
	assert.ErrorIs(t, err, client.ErrBadRequest)
}

func TestTransaction(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	res, err := e.c.Transaction(ctx, []client.Operation{
		{Op: client.OpCreate, Object: tenantObj("acme")},
		{Op: client.OpCreate, Object: networkObj(t, "acme", "web", 1, nil)},
		{Op: client.OpCreate, Object: policyObj(t, "acme", "p", "web")},
	})
	require.NoError(t, err)
	require.Len(t, res.Results, 3)
	rev, err := e.c.Revision(ctx)
	require.NoError(t, err)
	assert.Equal(t, rev, res.Revision)

	_, err = e.c.Transaction(ctx, []client.Operation{
		{Op: client.OpCreate, Object: networkObj(t, "acme", "db", 2, nil)},
		{Op: client.OpDelete, Object: &model.Object{Kind: model.KindNetwork, Metadata: model.Metadata{Name: "web", Tenant: "acme"}}},
	})
	var ae *client.APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, http.StatusConflict, ae.Code)
	assert.Equal(t, "operations[1].object.metadata.name", ae.Field)
	_, err = e.c.Get(ctx, model.Key{Kind: model.KindNetwork, Tenant: "acme", Name: "db"})
	assert.True(t, client.IsNotFound(err), "all or nothing")

	dry, err := e.c.Transaction(ctx, []client.Operation{{Op: client.OpCreate, Object: tenantObj("x")}}, client.DryRun())
	require.NoError(t, err)
	assert.True(t, dry.DryRun)
}

func TestWatch(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := e.c.Create(ctx, tenantObj("acme"))
	require.NoError(t, err)
	n, err := e.c.Create(ctx, networkObj(t, "acme", "web", 1, nil))
	require.NoError(t, err)
	_, err = e.c.Delete(ctx, n.Key())
	require.NoError(t, err)

	w, err := e.c.Watch(ctx, client.WatchOptions{FromRevision: 0})
	require.NoError(t, err)
	defer w.Close()
	var types []string
	for range 3 {
		ev, err := w.Next()
		require.NoError(t, err)
		types = append(types, ev.Type+" "+ev.Object.Key().String())
		assert.Equal(t, ev.Revision, w.LastRevision())
	}
	assert.Equal(t, []string{"ADDED Tenant/acme", "ADDED Network/acme/web", "DELETED Network/acme/web"}, types)

	nw, err := e.c.Watch(ctx, client.WatchOptions{FromNow: true, Kind: model.KindTenant})
	require.NoError(t, err)
	defer nw.Close()
	_, err = e.c.Create(ctx, networkObj(t, "acme", "db", 2, nil))
	require.NoError(t, err)
	_, err = e.c.Create(ctx, tenantObj("beta"))
	require.NoError(t, err)
	ev, err := nw.Next() // heartbeats in between are skipped
	require.NoError(t, err)
	assert.Equal(t, "beta", ev.Object.Metadata.Name)
	assert.Equal(t, client.EventAdded, ev.Type)

	require.NoError(t, e.store.Compact(ctx, 2))
	_, err = e.c.Watch(ctx, client.WatchOptions{FromRevision: 1})
	var ae *client.APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, http.StatusGone, ae.Code)

	// The store going away ends open streams with the server's reason.
	require.NoError(t, e.store.Close())
	for {
		_, err = w.Next()
		if err != nil {
			break
		}
	}
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, http.StatusServiceUnavailable, ae.Code)
	assert.True(t, client.IsRetryable(err))
}

func TestDSNsConvergenceAndHealth(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.fleet.add("d1", map[string]string{"site": "a"}, 5)
	e.fleet.add("d2", map[string]string{"site": "b"}, 1)
	d, err := e.c.DSN(ctx, "d1")
	require.NoError(t, err)
	assert.Equal(t, model.KindDSN, d.Kind)
	_, err = e.c.DSN(ctx, "d9")
	assert.True(t, client.IsNotFound(err))
	l, err := e.c.DSNs(ctx, client.ListOptions{Selector: map[string]string{"site": "b"}})
	require.NoError(t, err)
	require.Len(t, l.Items, 1)
	assert.Equal(t, "d2", l.Items[0].Metadata.Name)
	l, err = e.c.List(ctx, model.KindDSN, client.ListOptions{Limit: 1})
	require.NoError(t, err)
	assert.Equal(t, "d1", l.Continue)

	for _, name := range []string{"t1", "t2", "t3"} { // revision 3 exists
		_, err = e.c.Create(ctx, tenantObj(name))
		require.NoError(t, err)
	}
	c, err := e.c.Convergence(ctx, 3)
	require.NoError(t, err)
	assert.Equal(t, model.Convergence{Revision: 3, Total: 2, AtOrPast: 1, Behind: 1, BehindDSNs: []string{"d2"}}, c)

	_, err = e.c.Decommission(ctx, "d2")
	require.NoError(t, err)
	_, err = e.c.DSN(ctx, "d2")
	assert.True(t, client.IsNotFound(err))

	require.NoError(t, e.c.Healthy(ctx))
	require.NoError(t, e.c.Ready(ctx))
	doc, err := e.c.OpenAPI(ctx)
	require.NoError(t, err)
	assert.Contains(t, string(doc), `"openapi": "3.0.3"`)
	info, err := e.c.RevisionInfo(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint64(3), info.Revision)
}

func TestTokenAndHeaders(t *testing.T) {
	e := newEnv(t, client.WithToken("s3cret"), client.WithUserAgent("loadgen/1"))
	e.headers = make(chan http.Header, 1)
	_, err := e.c.Revision(context.Background())
	require.NoError(t, err)
	h := <-e.headers
	assert.Equal(t, "Bearer s3cret", h.Get("Authorization"))
	assert.Equal(t, "loadgen/1", h.Get("User-Agent"))
	e.headers = nil
}

func TestNonJSONErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, "upstream connect error")
	}))
	defer srv.Close()
	_, err := client.New(srv.URL, srv.Client()).Revision(context.Background())
	var ae *client.APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, http.StatusBadGateway, ae.Code)
	assert.Equal(t, "BadGateway", ae.Reason)
	assert.Equal(t, "upstream connect error", ae.Message)
	assert.Equal(t, 7*time.Second, ae.RetryAfter)
	assert.Equal(t, "502 BadGateway: upstream connect error", ae.Error())

	_, err = client.New("http://127.0.0.1:1", nil).Revision(context.Background())
	require.Error(t, err)
	assert.Zero(t, client.StatusCode(err))
	assert.False(t, errors.As(err, &ae))
}

func TestFormatSelector(t *testing.T) {
	assert.Equal(t, "a=1,b=2,example.com/z=", client.FormatSelector(map[string]string{"b": "2", "a": "1", "example.com/z": ""}))
	assert.Equal(t, "", client.FormatSelector(nil))
}

// fleet is a Fleet over a map: the API's DSN routes need one, and the real one lives in the
// distribution layer.
type fleet struct {
	mu   sync.Mutex
	dsns map[string]*model.Object
}

func (f *fleet) add(id string, labels map[string]string, applied uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, _ := json.Marshal(model.DSNStatus{State: model.DSNStateInSync, DesiredRevision: applied, AppliedRevision: applied})
	f.dsns[id] = &model.Object{APIVersion: model.APIVersion, Kind: model.KindDSN, Metadata: model.Metadata{Name: id, Labels: labels}, Status: st}
}

func (f *fleet) DSN(_ context.Context, id string) (*model.Object, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if o, ok := f.dsns[id]; ok {
		return o, nil
	}
	return nil, api.ErrUnknownDSN
}

func (f *fleet) DSNs(_ context.Context, sel map[string]string, limit int, after string) ([]*model.Object, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := make([]string, 0, len(f.dsns))
	for id := range f.dsns {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var out []*model.Object
	for _, id := range ids {
		if id <= after || !(model.Selector{MatchLabels: sel}).Matches(f.dsns[id].Metadata.Labels) {
			continue
		}
		if limit > 0 && len(out) == limit {
			return out, out[len(out)-1].Metadata.Name, nil
		}
		out = append(out, f.dsns[id])
	}
	return out, "", nil
}

func (f *fleet) Decommission(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.dsns[id]; !ok {
		return api.ErrUnknownDSN
	}
	delete(f.dsns, id)
	return nil
}

func (f *fleet) Convergence(_ context.Context, rev uint64) (model.Convergence, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := make([]string, 0, len(f.dsns))
	for id := range f.dsns {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	c := model.Convergence{Revision: rev, Total: len(ids)}
	for _, id := range ids {
		var st model.DSNStatus
		_ = json.Unmarshal(f.dsns[id].Status, &st)
		if st.AppliedRevision >= rev {
			c.AtOrPast++
		} else {
			c.Behind++
			c.BehindDSNs = append(c.BehindDSNs, id)
		}
	}
	return c, nil
}
