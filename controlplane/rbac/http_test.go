package rbac

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/authn"
	"github.com/dsnscale/dsnscale/controlplane/model"
)

func TestAPIResolver(t *testing.T) {
	tests := []struct {
		method, target string
		want           Attributes
		subject        bool
	}{
		{"GET", "/api/v1/tenants", Attributes{Verb: VerbList, Kind: "Tenant", Filtered: true}, true},
		{"POST", "/api/v1/tenants", Attributes{Verb: VerbCreate, Kind: "Tenant"}, true},
		{"GET", "/api/v1/tenants/acme", Attributes{Verb: VerbGet, Kind: "Tenant", Tenant: "acme", Name: "acme"}, true},
		{"DELETE", "/api/v1/tenants/acme", Attributes{Verb: VerbDelete, Kind: "Tenant", Tenant: "acme", Name: "acme"}, true},
		{"GET", "/api/v1/tenants/acme/networks", Attributes{Verb: VerbList, Kind: "Network", Tenant: "acme"}, true},
		{"POST", "/api/v1/tenants/acme/policies", Attributes{Verb: VerbCreate, Kind: "Policy", Tenant: "acme"}, true},
		{"PUT", "/api/v1/tenants/acme/policies/p", Attributes{Verb: VerbUpdate, Kind: "Policy", Tenant: "acme", Name: "p"}, true},
		{"HEAD", "/api/v1/tenants/acme/networks/n", Attributes{Verb: VerbGet, Kind: "Network", Tenant: "acme", Name: "n"}, true},
		{"GET", "/api/v1/networks", Attributes{Verb: VerbList, Kind: "Network", Filtered: true}, true},
		{"GET", "/api/v1/policies", Attributes{Verb: VerbList, Kind: "Policy", Filtered: true}, true},
		{"GET", "/api/v1/dsns", Attributes{Verb: VerbList, Kind: "DSN"}, true},
		{"DELETE", "/api/v1/dsns/dsn-1", Attributes{Verb: VerbDelete, Kind: "DSN", Name: "dsn-1"}, true},
		{"GET", "/api/v1/convergence", Attributes{Verb: VerbList, Kind: "DSN"}, true},
		{"GET", "/api/v1/cluster", Attributes{Verb: VerbList, Kind: "DSN"}, true},
		{"POST", "/api/v1/cluster", Attributes{Deferred: true}, true},
		{"GET", "/api/v1/events?q=boot", Attributes{Verb: VerbList, Kind: "DSN"}, true},
		{"GET", "/api/v1/metrics/query?match=x_y", Attributes{Verb: VerbList, Kind: "DSN"}, true},
		{"GET", "/api/v1/inventory/dsns/dsn-1", Attributes{Verb: VerbList, Kind: "DSN"}, true},
		{"POST", "/api/v1/events", Attributes{Deferred: true}, true},
		{"GET", "/api/v1/watch", Attributes{Verb: VerbWatch, Filtered: true}, true},
		{"GET", "/api/v1/watch?kind=Network&tenant=acme", Attributes{Verb: VerbWatch, Kind: "Network", Tenant: "acme"}, true},
		{"PUT", "/api/v1/roles/r", Attributes{Verb: VerbUpdate, Kind: KindRole, Name: "r"}, true},
		{"POST", "/api/v1/rolebindings", Attributes{Verb: VerbCreate, Kind: KindRoleBinding}, true},
		{"GET", "/api/v1/audit?user=x", Attributes{Verb: VerbList, Kind: KindAuditRecord}, true},
		{"GET", "/api/v1/bootstraptokens?tenant=acme", Attributes{Verb: VerbList, Kind: KindBootstrapToken, Tenant: "acme"}, true},
		{"POST", "/api/v1/bootstraptokens", Attributes{Deferred: true}, true},
		{"POST", "/api/v1/transactions", Attributes{Deferred: true}, true},
		{"GET", "/api/v1/revision", Attributes{Deferred: true}, true},
		{"GET", "/api/v1/dsns/a/b/c", Attributes{Deferred: true}, true},
		{"GET", "/api/v1/tenants/acme/secrets", Attributes{Deferred: true}, true},
		{"POST", "/api/v1/login", Attributes{}, false},
		{"POST", "/api/v1/admission", Attributes{}, false},
		{"POST", "/api/v1/admission/x", Attributes{Deferred: true}, true},
		{"GET", "/healthz", Attributes{}, false},
		{"GET", "/metrics", Attributes{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			got, ok := APIResolver(httptest.NewRequest(tt.method, tt.target, nil))
			require.Equal(t, tt.subject, ok)
			require.Equal(t, tt.want, got)
		})
	}
}

// objects the test API lists and watches.
var testObjects = []model.Object{
	{Kind: model.KindTenant, Metadata: model.Metadata{Name: "acme"}},
	{Kind: model.KindTenant, Metadata: model.Metadata{Name: "globex"}},
	{Kind: model.KindNetwork, Metadata: model.Metadata{Name: "n1", Tenant: "acme"}},
	{Kind: model.KindNetwork, Metadata: model.Metadata{Name: "n2", Tenant: "globex"}},
	{Kind: model.KindPolicy, Metadata: model.Metadata{Name: "p2", Tenant: "globex"}},
}

type decisionLog struct {
	mu  sync.Mutex
	log []string
}

// newTestAPI serves a fake API behind Middleware: lists and watches filter testObjects with the
// request's Checker; the principal comes from an X-User header (and X-Groups).
// With slots, the requests come with room for the Checker (WithSlot), as the control plane's
// do.
func newTestAPI(t *testing.T, a *Authorizer, extra http.Handler, slots bool) (*httptest.Server, *decisionLog) {
	t.Helper()
	decisions := &decisionLog{}
	mux := http.NewServeMux()
	list := func(verb Verb, kind string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			want := kind
			if want == "" {
				want = r.URL.Query().Get("kind")
			}
			objs := FilterObjects(CheckerFrom(r.Context()).Filter(verb), append([]model.Object(nil), testObjects...))
			var names []string
			for _, o := range objs {
				if want == "" || want == string(o.Kind) {
					names = append(names, string(o.Kind)+"/"+o.Metadata.Name)
				}
			}
			writeJSON(w, http.StatusOK, names)
		}
	}
	mux.HandleFunc("GET /api/v1/networks", list(VerbList, "Network"))
	mux.HandleFunc("GET /api/v1/tenants", list(VerbList, "Tenant"))
	mux.HandleFunc("GET /api/v1/watch", list(VerbWatch, ""))
	mux.HandleFunc("/api/v1/tenants/", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, "ok") })
	if extra != nil {
		mux.Handle("/api/v1/roles", extra)
		mux.Handle("/api/v1/roles/", extra)
		mux.Handle("/api/v1/rolebindings", extra)
		mux.Handle("/api/v1/rolebindings/", extra)
	}
	mw := Middleware(a, Options{OnDecision: func(r *http.Request, attrs Attributes, d Decision) {
		decisions.mu.Lock()
		defer decisions.mu.Unlock()
		decisions.log = append(decisions.log, string(attrs.Verb)+" "+attrs.Kind+" "+d.Binding)
	}})
	withUser := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u := r.Header.Get("X-User"); u != "" {
				var groups []string
				if g := r.Header.Get("X-Groups"); g != "" {
					groups = strings.Split(g, ",")
				}
				r = r.WithContext(authn.NewContext(r.Context(), &authn.Principal{User: u, Groups: groups}))
			}
			next.ServeHTTP(w, r)
		})
	}
	h := withUser(mw(mux))
	if slots {
		inner := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			inner.ServeHTTP(w, r.WithContext(WithSlot(r.Context())))
		})
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, decisions
}

func call(t *testing.T, srv *httptest.Server, user, groups, method, target, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+target, strings.NewReader(body))
	require.NoError(t, err)
	if user != "" {
		req.Header.Set("X-User", user)
	}
	if groups != "" {
		req.Header.Set("X-Groups", groups)
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// TestRequestAttacks is the RBAC part of the table of attacks: each request must be refused, or
// answered with only what the caller may see.
func TestRequestAttacks(t *testing.T) {
	for _, slots := range []bool{false, true} {
		t.Run(fmt.Sprintf("slots=%v", slots), func(t *testing.T) { testRequestAttacks(t, slots) })
	}
}

func testRequestAttacks(t *testing.T, slots bool) {
	srv, decisions := newTestAPI(t, testAuthorizer(), nil, slots)
	tests := []struct {
		name         string
		user, groups string
		method       string
		target       string
		code         int
		body         string
	}{
		{"no principal", "", "", "GET", "/api/v1/tenants/acme/networks", 401, "Unauthorized"},
		{"another tenant's object: get", "alice", "", "GET", "/api/v1/tenants/globex/networks/n2", 403, `may not get Network objects in tenant \"globex\"`},
		{"another tenant's objects: list", "alice", "", "GET", "/api/v1/tenants/globex/networks", 403, "Forbidden"},
		{"another tenant's objects: watch", "alice", "", "GET", "/api/v1/watch?kind=Network&tenant=globex", 403, "Forbidden"},
		{"another tenant: write", "bob", "acme", "PUT", "/api/v1/tenants/globex/policies/p2", 403, "Forbidden"},
		{"wrong role: viewer writes", "vic", "", "POST", "/api/v1/tenants/acme/networks", 403, "Forbidden"},
		{"nobody: deny by default", "nobody", "", "GET", "/api/v1/tenants/acme", 403, "Forbidden"},
		{"list across tenants shows own tenant only", "alice", "", "GET", "/api/v1/networks", 200, `["Network/n1"]`},
		{"tenants list shows own tenant only", "alice", "", "GET", "/api/v1/tenants", 200, `["Tenant/acme"]`},
		{"watch of everything shows own tenant only", "alice", "", "GET", "/api/v1/watch", 200, `["Tenant/acme","Network/n1"]`},
		{"own tenant works", "alice", "", "GET", "/api/v1/tenants/acme/networks/n1", 200, "ok"},
		{"admin sees everything", "root", AdminGroup, "GET", "/api/v1/networks", 200, `["Network/n1","Network/n2"]`},
		{"list a kind nobody granted", "alice", "", "GET", "/api/v1/dsns", 403, "Forbidden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := call(t, srv, tt.user, tt.groups, tt.method, tt.target, "")
			require.Equal(t, tt.code, code, body)
			require.Contains(t, body, tt.body)
			if code >= 400 {
				var e errorBody
				require.NoError(t, json.Unmarshal([]byte(body), &e))
				require.Equal(t, code, e.Code)
			}
		})
	}
	decisions.mu.Lock()
	defer decisions.mu.Unlock()
	require.Contains(t, decisions.log, "get Network acme-editors")
	require.Contains(t, decisions.log, "get Network ")
}

func TestOnlyAdminChangesRBAC(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	js, _ := startJS(t)
	s, err := OpenStore(ctx, js, "")
	require.NoError(t, err)
	a := NewAuthorizer()
	require.NoError(t, s.Follow(ctx, a, nil))
	srv, _ := newTestAPI(t, a, Handler(s), true)

	admin := func(method, target, body string) (int, string) {
		return call(t, srv, "root", AdminGroup, method, target, body)
	}
	code, body := admin("POST", "/api/v1/roles", `{"name":"superuser","rules":[{"verbs":["*"],"kinds":["*"],"tenants":["*"]}]}`)
	require.Equal(t, http.StatusCreated, code, body)
	code, body = admin("PUT", "/api/v1/rolebindings/supers", `{"role":"superuser","subjects":[{"kind":"User","name":"sue"}]}`)
	require.Equal(t, http.StatusCreated, code, body)

	// The custom superuser may read RBAC objects but never change them.
	var sueCanRead bool
	for range 100 {
		if c, _ := call(t, srv, "sue", "", "GET", "/api/v1/roles", ""); c == http.StatusOK {
			sueCanRead = true
			break
		}
	}
	require.True(t, sueCanRead, "the binding reaches the authorizer")
	for _, req := range [][3]string{
		{"PUT", "/api/v1/rolebindings/supers", `{"role":"admin","subjects":[{"kind":"User","name":"sue"}]}`},
		{"POST", "/api/v1/rolebindings", `{"name":"mine","role":"admin","subjects":[{"kind":"User","name":"sue"}]}`},
		{"DELETE", "/api/v1/roles/superuser", ``},
	} {
		code, body := call(t, srv, "sue", "", req[0], req[1], req[2])
		require.Equal(t, http.StatusForbidden, code, "%v: %s", req, body)
	}

	// Validation and conflicts, as the admin.
	tests := []struct {
		method, target, body string
		code                 int
		field                string
	}{
		{"POST", "/api/v1/roles", `{"name":"superuser","rules":[{"verbs":["get"],"kinds":["*"],"tenants":["*"]}]}`, 409, "name"},
		{"POST", "/api/v1/roles", `{"name":"r","rules":[{"verbs":["fly"],"kinds":["*"],"tenants":["*"]}]}`, 422, "rules[0].verbs[0]"},
		{"POST", "/api/v1/roles", `{"name":"r","rules":[],"extra":1}`, 400, "extra"},
		{"PUT", "/api/v1/roles/admin", `{"rules":[{"verbs":["get"],"kinds":["*"],"tenants":["*"]}]}`, 409, "name"},
		{"PUT", "/api/v1/roles/a", `{"name":"b","rules":[{"verbs":["get"],"kinds":["*"],"tenants":["*"]}]}`, 422, "name"},
		{"DELETE", "/api/v1/rolebindings/admin", ``, 409, "name"},
		{"GET", "/api/v1/roles/nope", ``, 404, ""},
	}
	for _, tt := range tests {
		code, body := admin(tt.method, tt.target, tt.body)
		require.Equal(t, tt.code, code, "%s %s: %s", tt.method, tt.target, body)
		var e errorBody
		require.NoError(t, json.Unmarshal([]byte(body), &e))
		require.Equal(t, tt.field, e.Field, body)
	}
	code, body = admin("GET", "/api/v1/rolebindings", "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `"supers"`)
	code, _ = admin("DELETE", "/api/v1/rolebindings/supers", "")
	require.Equal(t, http.StatusNoContent, code)
}
