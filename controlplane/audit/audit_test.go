package audit

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/dsnscale/dsnscale/controlplane/authn"
	"github.com/dsnscale/dsnscale/controlplane/rbac"
	"github.com/dsnscale/dsnscale/internal/natsserver"
	"github.com/dsnscale/dsnscale/search"
)

// chain is the northbound middleware stack the control plane uses, around a stub API, with
// real token verification, a real authorizer and a real bleve index.
type chain struct {
	srv    *httptest.Server
	rec    *Recorder
	store  *SearchStore
	idx    *search.Bleve
	tokens *authn.Tokens
	start  time.Time
}

func newChain(t *testing.T) *chain {
	t.Helper()
	ctx := context.Background()
	ns, err := natsserver.Start(natsserver.Config{StoreDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(ns.Stop)
	nc, err := nats.Connect(ns.URL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(30*time.Second))
	require.NoError(t, err)

	users, err := authn.OpenUsers(ctx, js, "", nil)
	require.NoError(t, err)
	hash, err := bcrypt.GenerateFromPassword([]byte("correct horse battery"), bcrypt.MinCost)
	require.NoError(t, err)
	require.NoError(t, users.Create(ctx, authn.User{Name: "alice", PasswordHash: string(hash)}))
	tokens, err := authn.OpenTokens(ctx, authn.TokensConfig{JS: js})
	require.NoError(t, err)
	t.Cleanup(tokens.Close)

	az := rbac.NewAuthorizer()
	az.Set([]rbac.Role{{Name: "acme-editor", Rules: []rbac.Rule{{
		Verbs: []rbac.Verb{rbac.Any}, Kinds: []string{"Network"}, Tenants: []string{"acme"},
	}}}}, []rbac.Binding{{Name: "acme-editors", Role: "acme-editor", Subjects: []rbac.Subject{{Kind: rbac.SubjectUser, Name: "alice"}}}})

	idx, err := search.OpenBleve(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { idx.Close() })
	store := NewSearchStore(idx)
	rec, err := NewRecorder(RecorderConfig{Sink: store, FlushEvery: 10 * time.Millisecond})
	require.NoError(t, err)

	mux := http.NewServeMux()
	mux.Handle("/api/v1/login", authn.LoginHandler(&authn.LocalProvider{Users: users, Cost: bcrypt.MinCost}, tokens, authn.LoginOptions{OnResult: LoginHook}))
	mux.HandleFunc("/api/v1/tenants/", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.Handle("/api/v1/audit", Handler(store))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {})

	h := http.Handler(mux)
	h = rbac.Middleware(az, rbac.Options{OnDecision: RBACHook})(h)
	h = authn.Middleware(tokens, authn.MiddlewareOptions{Public: authn.PublicPaths("/api/v1/login", "/healthz"), OnResult: AuthnHook})(h)
	h = Middleware(rec, MiddlewareOptions{Skip: func(r *http.Request) bool { return r.URL.Path == "/healthz" }})(h)
	c := &chain{srv: httptest.NewServer(h), rec: rec, store: store, idx: idx, tokens: tokens, start: time.Now()}
	t.Cleanup(c.srv.Close)
	return c
}

func (c *chain) do(t *testing.T, method, target, token, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, c.srv.URL+target, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

// flush waits until the recorder has written everything and the index shows it.
func (c *chain) flush(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool {
		st := c.rec.Stats()
		return st.Written+st.Failed == st.Recorded
	}, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, search.Refresh(context.Background(), c.idx))
}

func TestEveryCallIsAuditedAndSearchable(t *testing.T) {
	c := newChain(t)
	code, _ := c.do(t, "GET", "/api/v1/tenants/acme/networks", "", "")
	require.Equal(t, 401, code)
	code, _ = c.do(t, "POST", "/api/v1/login", "", `{"user":"alice","password":"wrong password!"}`)
	require.Equal(t, 401, code)
	code, body := c.do(t, "POST", "/api/v1/login", "", `{"user":"alice","password":"correct horse battery"}`)
	require.Equal(t, 200, code)
	var login authn.LoginResponse
	require.NoError(t, json.Unmarshal(body, &login))
	code, _ = c.do(t, "GET", "/api/v1/tenants/acme/networks/n1", login.Token, "")
	require.Equal(t, 200, code)
	code, _ = c.do(t, "DELETE", "/api/v1/tenants/globex/networks/n2", login.Token, "")
	require.Equal(t, 403, code)
	code, _ = c.do(t, "GET", "/healthz", "", "")
	require.Equal(t, 200, code)
	c.flush(t)

	all, err := c.store.Search(context.Background(), Query{})
	require.NoError(t, err)
	require.Equal(t, 5, all.Total, "every API call but the skipped health check")
	byPath := map[string]Record{}
	for _, r := range all.Items {
		byPath[r.Method+" "+r.Path+" "+r.Verdict] = r
		require.False(t, r.Time.Before(c.start.Add(-time.Second)))
		require.NotEmpty(t, r.Source)
		require.GreaterOrEqual(t, r.DurationMs, 0.0)
	}
	anon := byPath["GET /api/v1/tenants/acme/networks unauthenticated"]
	require.Equal(t, 401, anon.Status)
	require.Equal(t, "", anon.User)
	require.Equal(t, "list", anon.Verb, "what was asked is recorded even when refused before RBAC")
	require.Equal(t, "Network", anon.Kind)
	require.Equal(t, "acme", anon.Tenant)

	failed := byPath["POST /api/v1/login unauthenticated"]
	require.Equal(t, "alice", failed.User)
	require.Contains(t, failed.Reason, "invalid user or password")
	require.Equal(t, VerdictAllowed, byPath["POST /api/v1/login allowed"].Verdict)

	ok := byPath["GET /api/v1/tenants/acme/networks/n1 allowed"]
	require.Equal(t, "alice", ok.User)
	require.Equal(t, "acme-editors", ok.Binding, "which binding permitted it")
	require.Equal(t, "get", ok.Verb)
	require.Equal(t, "n1", ok.Name)

	denied := byPath["DELETE /api/v1/tenants/globex/networks/n2 denied"]
	require.Equal(t, 403, denied.Status)
	require.Equal(t, "", denied.Binding)
	require.Contains(t, denied.Reason, "globex")

	// GET /api/v1/audit, with alice's token: she may not read the audit log.
	code, _ = c.do(t, "GET", "/api/v1/audit", login.Token, "")
	require.Equal(t, 403, code)
	c.flush(t)

	// The searches, through the handler directly (RBAC for it is the route's, tested above).
	search := func(params string) Result {
		t.Helper()
		rr := httptest.NewRecorder()
		Handler(c.store).ServeHTTP(rr, httptest.NewRequest("GET", "/api/v1/audit?"+params, nil))
		require.Equal(t, 200, rr.Code, rr.Body.String())
		var res Result
		require.NoError(t, json.Unmarshal(rr.Body.Bytes(), &res))
		return res
	}
	require.Equal(t, 5, search("user=alice").Total)
	require.Equal(t, 2, search("user=alice&verdict=denied").Total)
	require.Equal(t, 1, search("verb=delete").Total)
	require.Equal(t, 2, search("kind=Network&tenant=acme").Total)
	require.Equal(t, 1, search("text=globex").Total)
	require.Equal(t, 2, search("text=login").Total)
	require.Equal(t, 0, search("from="+url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339))).Total)
	require.Equal(t, 6, search("from="+url.QueryEscape(c.start.Add(-time.Minute).Format(time.RFC3339))+"&to="+url.QueryEscape(time.Now().Add(time.Minute).Format(time.RFC3339))).Total,
		"the refused audit query is itself audited")
	require.Len(t, search("limit=2").Items, 2)
	require.NoError(t, c.rec.Close(context.Background()))
}

func TestParseQuery(t *testing.T) {
	q, err := ParseQuery(url.Values{"user": {"alice"}, "verb": {"get"}, "from": {"2026-01-01T00:00:00Z"}, "limit": {"10"}})
	require.NoError(t, err)
	require.Equal(t, "alice", q.User)
	require.Equal(t, 10, q.Limit)
	require.Equal(t, 2026, q.From.Year())

	tests := []struct {
		name   string
		values url.Values
		field  string
	}{
		{"unknown parameter", url.Values{"usr": {"a"}}, "usr"},
		{"twice", url.Values{"user": {"a", "b"}}, "user"},
		{"bad verb", url.Values{"verb": {"fly"}}, "verb"},
		{"bad verdict", url.Values{"verdict": {"maybe"}}, "verdict"},
		{"bad time", url.Values{"from": {"yesterday"}}, "from"},
		{"to before from", url.Values{"from": {"2026-01-02T00:00:00Z"}, "to": {"2026-01-01T00:00:00Z"}}, "to"},
		{"limit zero", url.Values{"limit": {"0"}}, "limit"},
		{"limit huge", url.Values{"limit": {"1000000"}}, "limit"},
		{"text too long", url.Values{"text": {strings.Repeat("a", search.MaxQueryTextSize+1)}}, "text"},
		{"invalid UTF-8", url.Values{"user": {"\xff"}}, "user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseQuery(tt.values)
			var fe *FieldError
			require.ErrorAs(t, err, &fe)
			require.Equal(t, tt.field, fe.Field)
		})
	}
	rr := httptest.NewRecorder()
	Handler(nil).ServeHTTP(rr, httptest.NewRequest("GET", "/api/v1/audit?limit=x", nil))
	require.Equal(t, 400, rr.Code)
	require.Contains(t, rr.Body.String(), `"field":"limit"`)
}

func TestLongFieldsAreTruncated(t *testing.T) {
	docs, err := newBlocker().toBlocks([]Record{{ID: "x", Time: time.Now(), Method: "GET", Path: "/" + strings.Repeat("é", 2000) + "\xff", Status: 404, Verdict: VerdictAllowed, User: strings.Repeat("u", 3000)}})
	require.NoError(t, err)
	require.Len(t, docs, 1)
	require.NoError(t, docs[0].Validate())
	require.LessOrEqual(t, len(docs[0].Fields["user"]), search.MaxFieldValue)
	records, err := fromBlock(docs[0])
	require.NoError(t, err)
	require.LessOrEqual(t, len(records[0].Path), search.MaxFieldValue)
	require.True(t, utf8.ValidString(records[0].Path))
}
