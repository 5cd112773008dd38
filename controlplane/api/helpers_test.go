package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/store"
	"github.com/dsnscale/dsnscale/internal/natsserver"
)

// testEnv is the API over HTTP on a real store on a real embedded NATS server.
type testEnv struct {
	t     *testing.T
	url   string
	srv   *httptest.Server
	store *store.KV
	js    jetstream.JetStream // the store's, to open another writer of its bucket
	fleet *fakeFleet
	reg   *prometheus.Registry
}

func newTestEnv(t *testing.T, mods ...func(*Config)) *testEnv {
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

	e := &testEnv{t: t, store: st, js: js, fleet: newFakeFleet(), reg: prometheus.NewRegistry()}
	cfg := Config{Store: st, Fleet: e.fleet, Registry: e.reg, HeartbeatInterval: time.Hour}
	for _, m := range mods {
		m(&cfg)
	}
	h, err := New(cfg)
	require.NoError(t, err)
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	e.url = e.srv.URL
	return e
}

// response is a finished HTTP exchange.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal(r.body, v), "body: %s", r.body)
}

func (r response) object(t *testing.T) *model.Object {
	t.Helper()
	var o model.Object
	r.json(t, &o)
	return &o
}

func (r response) err(t *testing.T) errorBody {
	t.Helper()
	var e errorBody
	r.json(t, &e)
	require.Equal(t, r.status, e.Code, "code in body matches status: %s", r.body)
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	return e
}

// do sends a request with a JSON body (a string sent as is, anything else encoded).
func (e *testEnv) do(method, path string, body any) response {
	e.t.Helper()
	return e.doWith(method, path, body, "application/json", nil)
}

func (e *testEnv) doWith(method, path string, body any, contentType string, header http.Header) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = strings.NewReader(string(b))
	default:
		enc, err := json.Marshal(b)
		require.NoError(e.t, err)
		rd = strings.NewReader(string(enc))
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	require.NoError(e.t, err)
	if rd != nil && contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// must sends a request and requires the status.
func (e *testEnv) must(status int, method, path string, body any) response {
	e.t.Helper()
	r := e.do(method, path, body)
	require.Equal(e.t, status, r.status, "%s %s: %s", method, path, r.body)
	return r
}

func tenant(name string) string {
	return fmt.Sprintf(`{"apiVersion":"dsnscale/v1","kind":"Tenant","metadata":{"name":%q}}`, name)
}

func network(tenant, name, cidr string, vlan int, labels map[string]string) string {
	l, _ := json.Marshal(labels)
	return fmt.Sprintf(`{"apiVersion":"dsnscale/v1","kind":"Network","metadata":{"name":%q,"tenant":%q,"labels":%s},"spec":{"cidr":%q,"vlan":%d}}`,
		name, tenant, l, cidr, vlan)
}

// policy names networks in its rules: from[i] -> to[i] (an empty name is "any").
func policy(tenant, name string, pairs ...[2]string) string {
	rules := make([]string, len(pairs))
	for i, p := range pairs {
		rules[i] = fmt.Sprintf(`{"action":"allow","from":{"network":%q},"to":{"network":%q},"protocol":"tcp","ports":["443"]}`, p[0], p[1])
	}
	return fmt.Sprintf(`{"apiVersion":"dsnscale/v1","kind":"Policy","metadata":{"name":%q,"tenant":%q},"spec":{"selector":{"matchLabels":{"site":"a"}},"rules":[%s]}}`,
		name, tenant, strings.Join(rules, ","))
}

// fakeFleet is a Fleet over a map, for the API's own unit tests of the DSN routes.
type fakeFleet struct {
	mu     sync.Mutex
	dsns   map[string]*model.Object
	gone   []string
	block  chan struct{} // when set, DSN waits on it
	inside chan struct{} // DSN signals here when it starts waiting
}

func newFakeFleet() *fakeFleet { return &fakeFleet{dsns: map[string]*model.Object{}} }

func (f *fakeFleet) add(id string, labels map[string]string, applied uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o := &model.Object{APIVersion: model.APIVersion, Kind: model.KindDSN, Metadata: model.Metadata{Name: id, Labels: labels}}
	_ = o.EncodeSpec(model.DSNSpec{SoftwareVersion: "1.0"})
	st, _ := json.Marshal(model.DSNStatus{State: model.DSNStateInSync, DesiredRevision: applied, AppliedRevision: applied})
	o.Status = st
	f.dsns[id] = o
}

func (f *fakeFleet) DSN(ctx context.Context, id string) (*model.Object, error) {
	if f.block != nil {
		f.inside <- struct{}{}
		select {
		case <-f.block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.dsns[id]
	if !ok {
		return nil, fmt.Errorf("dsn %s: %w", id, ErrUnknownDSN)
	}
	return o, nil
}

func (f *fakeFleet) DSNs(ctx context.Context, sel map[string]string, limit int, after string) ([]*model.Object, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := make([]string, 0, len(f.dsns))
	for id := range f.dsns {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var out []*model.Object
	for _, id := range ids {
		o := f.dsns[id]
		if id <= after || !model.Selector(model.Selector{MatchLabels: sel}).Matches(o.Metadata.Labels) {
			continue
		}
		if limit > 0 && len(out) == limit {
			return out, out[len(out)-1].Metadata.Name, nil
		}
		out = append(out, o)
	}
	return out, "", nil
}

func (f *fakeFleet) Decommission(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.dsns[id]; !ok {
		return ErrUnknownDSN
	}
	delete(f.dsns, id)
	f.gone = append(f.gone, id)
	return nil
}

func (f *fakeFleet) Convergence(ctx context.Context, rev uint64) (model.Convergence, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := model.Convergence{Revision: rev, Total: len(f.dsns)}
	for id, o := range f.dsns {
		var st model.DSNStatus
		_ = json.Unmarshal(o.Status, &st)
		if st.AppliedRevision >= rev {
			c.AtOrPast++
		} else {
			c.Behind++
			c.BehindDSNs = append(c.BehindDSNs, id)
		}
	}
	sort.Strings(c.BehindDSNs)
	return c, nil
}

// sseEvent is one parsed server-sent event.
type sseEvent struct {
	id, event, data string
	comment         string
}

// sseReader reads server-sent events from a stream.
type sseReader struct{ r *bufio.Reader }

func (s *sseReader) next() (sseEvent, error) {
	var ev sseEvent
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return ev, err
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "":
			if ev != (sseEvent{}) {
				return ev, nil
			}
		case strings.HasPrefix(line, ":"):
			ev.comment = strings.TrimSpace(line[1:])
		case strings.HasPrefix(line, "id: "):
			ev.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			ev.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			ev.data = line[6:]
		}
	}
}
