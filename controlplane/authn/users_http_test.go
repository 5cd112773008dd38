package authn

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestUsersHandler(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	js := startJS(t)
	users, err := OpenUsers(ctx, js, "", clk.Now)
	require.NoError(t, err)
	tokens := openTokens(t, js, clk)
	srv := httptest.NewServer(UsersHandler(users, tokens, UsersOptions{Cost: testCost}))
	t.Cleanup(srv.Close)

	call := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		return resp.StatusCode, m
	}

	for _, c := range []struct {
		name, body, field string
		status            int
	}{
		{"no password", `{"name":"bob"}`, "password", 422},
		{"short password", `{"name":"bob","password":"short"}`, "password", 422},
		{"bad name", `{"name":"-bob","password":"long enough password"}`, "name", 422},
		{"bad group", `{"name":"bob","password":"long enough password","groups":["a b"]}`, "groups[0]", 422},
		{"unknown field", `{"name":"bob","password":"long enough password","admin":true}`, "admin", 400},
	} {
		status, m := call("POST", "/api/v1/users", c.body)
		require.Equal(t, c.status, status, c.name)
		require.Equal(t, c.field, m["field"], c.name)
	}
	status, m := call("POST", "/api/v1/users", `{"name":"bob","password":"long enough password","groups":["ops"]}`)
	require.Equal(t, 201, status)
	require.Equal(t, "bob", m["name"])
	require.NotContains(t, m, "passwordHash")
	status, _ = call("POST", "/api/v1/users", `{"name":"bob","password":"long enough password"}`)
	require.Equal(t, 409, status)

	p, err := (&LocalProvider{Users: users, Cost: testCost}).Authenticate(ctx, "bob", "long enough password")
	require.NoError(t, err)
	tok, _, err := tokens.Issue(p)
	require.NoError(t, err)
	clk.Add(1) // the revocation below must come after the issue
	status, m = call("PUT", "/api/v1/users/bob", `{"groups":["ops","dev"]}`)
	require.Equal(t, 200, status)
	require.Equal(t, []any{"ops", "dev"}, m["groups"])
	_, err = tokens.Verify(ctx, tok)
	require.ErrorIs(t, err, ErrRevoked, "a change of groups revokes the user's tokens")
	_, err = (&LocalProvider{Users: users, Cost: testCost}).Authenticate(ctx, "bob", "long enough password")
	require.NoError(t, err, "the password is kept when none is given")
	status, _ = call("PUT", "/api/v1/users/bob", `{"name":"carol"}`)
	require.Equal(t, 422, status)

	status, m = call("GET", "/api/v1/users", "")
	require.Equal(t, 200, status)
	require.Len(t, m["items"], 1)
	status, _ = call("DELETE", "/api/v1/users/bob", "")
	require.Equal(t, 204, status)
	status, _ = call("GET", "/api/v1/users/bob", "")
	require.Equal(t, 404, status)
}
