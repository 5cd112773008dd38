package authn

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type testAPI struct {
	srv     *httptest.Server
	tokens  *Tokens
	clk     *fakeClock
	mu      sync.Mutex
	results []string
}

// newTestAPI serves login, logout and a protected route behind Middleware, as the API will.
func newTestAPI(t *testing.T) *testAPI {
	t.Helper()
	ctx := context.Background()
	clk := newClock()
	js := startJS(t)
	users, err := OpenUsers(ctx, js, "", clk.Now)
	require.NoError(t, err)
	require.NoError(t, users.Create(ctx, User{Name: "alice", Groups: []string{"ops"}, PasswordHash: mustHash(t, "correct horse battery")}))
	a := &testAPI{tokens: openTokens(t, js, clk), clk: clk}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/login", LoginHandler(&LocalProvider{Users: users, Cost: testCost}, a.tokens, LoginOptions{}))
	mux.Handle("/api/v1/logout", LogoutHandler(a.tokens))
	mux.HandleFunc("/api/v1/whoami", func(w http.ResponseWriter, r *http.Request) {
		p, ok := FromContext(r.Context())
		require.True(t, ok)
		writeJSON(w, http.StatusOK, p)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	mw := Middleware(a.tokens, MiddlewareOptions{
		Public: PublicPaths("/api/v1/login", "/healthz"),
		OnResult: func(r *http.Request, p *Principal, err error) {
			a.mu.Lock()
			defer a.mu.Unlock()
			if err != nil {
				a.results = append(a.results, r.URL.Path+" error")
			} else {
				a.results = append(a.results, r.URL.Path+" "+p.User)
			}
		},
	})
	a.srv = httptest.NewServer(mw(mux))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *testAPI) do(t *testing.T, method, path, token, body string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, a.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := a.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var m map[string]any
	if len(b) > 0 {
		require.NoError(t, json.Unmarshal(b, &m), string(b))
	}
	return resp.StatusCode, resp.Header, m
}

func (a *testAPI) login(t *testing.T) string {
	t.Helper()
	code, _, body := a.do(t, http.MethodPost, "/api/v1/login", "", `{"user":"alice","password":"correct horse battery"}`)
	require.Equal(t, http.StatusOK, code, body)
	exp, err := time.Parse(time.RFC3339, body["expiresAt"].(string))
	require.NoError(t, err)
	require.Equal(t, a.clk.Now().Add(DefaultTokenTTL).UTC(), exp)
	return body["token"].(string)
}

func TestLoginUseLogout(t *testing.T) {
	a := newTestAPI(t)
	tok := a.login(t)

	code, _, body := a.do(t, http.MethodGet, "/api/v1/whoami", tok, "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "alice", body["user"])

	code, _, _ = a.do(t, http.MethodPost, "/api/v1/logout", tok, "")
	require.Equal(t, http.StatusNoContent, code)
	code, hdr, body := a.do(t, http.MethodGet, "/api/v1/whoami", tok, "")
	require.Equal(t, http.StatusUnauthorized, code, "logout takes effect at once")
	require.Equal(t, "Unauthorized", body["reason"])
	require.Contains(t, body["message"], "revoked")
	require.Contains(t, hdr.Get("WWW-Authenticate"), "Bearer")

	a.mu.Lock()
	defer a.mu.Unlock()
	require.Equal(t, []string{"/api/v1/whoami alice", "/api/v1/logout alice", "/api/v1/whoami error"}, a.results)
}

func TestUnauthenticatedRequests(t *testing.T) {
	a := newTestAPI(t)
	tok := a.login(t)
	tests := []struct {
		name   string
		header string
		want   string
	}{
		{"no header", "", "authentication required"},
		{"basic auth", "Basic YWxpY2U6cGFzcw==", "not \"Bearer <token>\""},
		{"empty bearer", "Bearer ", "not \"Bearer <token>\""},
		{"garbage bearer", "Bearer xyz", "not valid"},
		{"bearer with a tampered token", "Bearer " + tok[:len(tok)-4] + "AAAA", "not valid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, a.srv.URL+"/api/v1/whoami", nil)
			require.NoError(t, err)
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			resp, err := a.srv.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			var body errorBody
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
			require.Equal(t, 401, body.Code)
			require.Equal(t, "Unauthorized", body.Reason)
			require.Contains(t, body.Message, tt.want)
		})
	}
	code, _, _ := a.do(t, http.MethodGet, "/healthz", "", "")
	require.Equal(t, http.StatusOK, code, "public paths need no token")
	code, _, _ = a.do(t, http.MethodPost, "/api/v1/logout", "", "")
	require.Equal(t, http.StatusUnauthorized, code)
}

func TestLoginRefuses(t *testing.T) {
	a := newTestAPI(t)
	tests := []struct {
		name   string
		method string
		body   string
		code   int
		field  string
	}{
		{"wrong password", http.MethodPost, `{"user":"alice","password":"wrong password!"}`, 401, ""},
		{"unknown user", http.MethodPost, `{"user":"nobody","password":"correct horse battery"}`, 401, ""},
		{"missing password", http.MethodPost, `{"user":"alice"}`, 400, "password"},
		{"missing user", http.MethodPost, `{"password":"x"}`, 400, "user"},
		{"unknown field", http.MethodPost, `{"user":"alice","password":"x","admin":true}`, 400, "admin"},
		{"wrong type", http.MethodPost, `{"user":1,"password":"x"}`, 400, "user"},
		{"not JSON", http.MethodPost, `user=alice`, 400, ""},
		{"too large", http.MethodPost, `{"user":"` + strings.Repeat("a", MaxLoginBodyBytes) + `"}`, 413, ""},
		{"GET", http.MethodGet, ``, 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, body := a.do(t, tt.method, "/api/v1/login", "", tt.body)
			require.Equal(t, tt.code, code, body)
			require.EqualValues(t, tt.code, body["code"])
			if tt.field != "" {
				require.Equal(t, tt.field, body["field"])
			}
			require.NotContains(t, body, "token")
		})
	}
}

type verifierFunc func(ctx context.Context, token string) (*Principal, error)

func (f verifierFunc) Verify(ctx context.Context, token string) (*Principal, error) {
	return f(ctx, token)
}

// With a slot in the request's context, Middleware fills it in and passes the request on as it
// is; a refused or anonymous request leaves it empty.
func TestMiddlewareFillsASlot(t *testing.T) {
	v := verifierFunc(func(_ context.Context, token string) (*Principal, error) {
		if token == "good" {
			return &Principal{User: "alice"}, nil
		}
		return nil, ErrInvalidToken
	})
	var seen *http.Request
	var who *Principal
	var known bool
	h := Middleware(v, MiddlewareOptions{Public: PublicPaths("/public")})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r
		who, known = FromContext(r.Context())
	}))
	serve := func(path, token string, slot bool) *http.Request {
		seen, who, known = nil, nil, false
		r := httptest.NewRequest(http.MethodGet, path, nil)
		if slot {
			r = r.WithContext(WithSlot(r.Context()))
		}
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
		return r
	}

	r := serve("/x", "good", true)
	require.Same(t, r, seen, "not copied")
	require.True(t, known)
	assert.Equal(t, "alice", who.User)

	serve("/public", "bad", true)
	require.NotNil(t, seen)
	assert.False(t, known, "a refused token on a public path leaves the slot empty")

	serve("/x", "bad", true)
	assert.Nil(t, seen, "refused")

	r = serve("/x", "good", false)
	require.NotNil(t, seen)
	assert.NotSame(t, r, seen, "without a slot the principal comes in a copy")
	require.True(t, known)
	assert.Equal(t, "alice", who.User)
}
