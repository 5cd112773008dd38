package admission

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/authn"
	"github.com/dsnscale/dsnscale/controlplane/rbac"
)

// serve puts Handler behind rbac.Middleware, with the principal named by X-User / X-Groups.
func serve(t *testing.T, e *env) *httptest.Server {
	t.Helper()
	a := rbac.NewAuthorizer()
	a.Set([]rbac.Role{{Name: "acme-tokens", Rules: []rbac.Rule{{
		Verbs: []rbac.Verb{rbac.Any}, Kinds: []string{rbac.KindBootstrapToken}, Tenants: []string{"acme"},
	}}}}, []rbac.Binding{{Name: "acme-ops", Role: "acme-tokens", Subjects: []rbac.Subject{{Kind: rbac.SubjectUser, Name: "alice"}}}})
	h := Handler(e.tokens, HandlerOptions{
		Clock:        e.clk.Now,
		TenantExists: func(_ context.Context, tenant string) (bool, error) { return tenant != "ghost", nil },
	})
	mux := http.NewServeMux()
	mux.Handle("/api/v1/bootstraptokens", h)
	mux.Handle("/api/v1/bootstraptokens/", h)
	withUser := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u := r.Header.Get("X-User"); u != "" {
				p := &authn.Principal{User: u}
				if g := r.Header.Get("X-Groups"); g != "" {
					p.Groups = strings.Split(g, ",")
				}
				r = r.WithContext(authn.NewContext(r.Context(), p))
			}
			next.ServeHTTP(w, r)
		})
	}
	srv := httptest.NewServer(withUser(rbac.Middleware(a, rbac.Options{})(mux)))
	t.Cleanup(srv.Close)
	return srv
}

func request(t *testing.T, srv *httptest.Server, user, method, target, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+target, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("X-User", user)
	if user == "root" {
		req.Header.Set("X-Groups", rbac.AdminGroup)
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m), string(b))
	return resp.StatusCode, m
}

func TestHandler(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	srv := serve(t, e)

	code, body := request(t, srv, "alice", "POST", "/api/v1/bootstraptokens", `{"tenant":"acme","labels":{"site":"par1"},"uses":2,"ttlSeconds":600}`)
	require.Equal(t, http.StatusCreated, code, body)
	secret := body["token"].(string)
	view := body["bootstrapToken"].(map[string]any)
	require.Equal(t, "alice", view["createdBy"])
	require.Equal(t, StateActive, view["state"])
	require.NotContains(t, view, "keyHash", "the hash never leaves the store")
	acmeID := view["id"].(string)
	_, err := e.tokens.Consume(ctx, secret, "dsn-1", nil)
	require.NoError(t, err, "the secret shown works")

	code, body = request(t, srv, "root", "POST", "/api/v1/bootstraptokens", `{"tenant":"globex"}`)
	require.Equal(t, http.StatusCreated, code, body)
	globexID := body["bootstrapToken"].(map[string]any)["id"].(string)

	tests := []struct {
		name, user, method, target, body string
		code                             int
		field                            string
	}{
		{"another tenant's token: create", "alice", "POST", "/api/v1/bootstraptokens", `{"tenant":"globex"}`, 403, ""},
		{"another tenant's token: get", "alice", "GET", "/api/v1/bootstraptokens/" + globexID, "", 404, ""},
		{"another tenant's token: revoke", "alice", "DELETE", "/api/v1/bootstraptokens/" + globexID, "", 404, ""},
		{"another tenant's tokens: list", "alice", "GET", "/api/v1/bootstraptokens?tenant=globex", "", 403, ""},
		{"nobody", "mallory", "POST", "/api/v1/bootstraptokens", `{"tenant":"acme"}`, 403, ""},
		{"unknown tenant", "root", "POST", "/api/v1/bootstraptokens", `{"tenant":"ghost"}`, 422, "tenant"},
		{"invalid spec", "root", "POST", "/api/v1/bootstraptokens", `{"tenant":"acme","uses":-1}`, 422, "uses"},
		{"unknown field", "root", "POST", "/api/v1/bootstraptokens", `{"tenant":"acme","admin":true}`, 400, "admin"},
		{"unknown token", "root", "GET", "/api/v1/bootstraptokens/0123456789abcdef", "", 404, ""},
		{"not an id", "root", "GET", "/api/v1/bootstraptokens/NOT-HEX", "", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := request(t, srv, tt.user, tt.method, tt.target, tt.body)
			require.Equal(t, tt.code, code, body)
			if tt.field != "" {
				require.Equal(t, tt.field, body["field"])
			}
		})
	}

	// Alice's list shows her tenant's token only; the admin's shows both.
	code, body = request(t, srv, "alice", "GET", "/api/v1/bootstraptokens", "")
	require.Equal(t, http.StatusOK, code)
	items := body["items"].([]any)
	require.Len(t, items, 1)
	require.Equal(t, acmeID, items[0].(map[string]any)["id"])
	code, body = request(t, srv, "root", "GET", "/api/v1/bootstraptokens", "")
	require.Equal(t, http.StatusOK, code)
	require.Len(t, body["items"].([]any), 2)

	// Revocation takes effect at once.
	code, body = request(t, srv, "alice", "DELETE", "/api/v1/bootstraptokens/"+acmeID, "")
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, StateRevoked, body["state"])
	_, err = e.tokens.Consume(ctx, secret, "dsn-2", nil)
	require.ErrorIs(t, err, ErrRevoked)
}
