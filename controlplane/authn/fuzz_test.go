package authn

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzVerify feeds arbitrary strings to Verify: it must never panic, and it may accept only a
// token this control plane issued (the only subject issued here is "alice").
func FuzzVerify(f *testing.F) {
	clk := newClock()
	tk := openTokens(f, startJS(f), clk)
	good, _, err := tk.Issue(Principal{User: "alice", Groups: []string{"ops"}})
	require.NoError(f, err)
	parts := strings.Split(good, ".")
	f.Add(good)
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add("eyJhbGciOiJub25lIn0." + parts[1] + ".")
	f.Add(strings.Repeat(".", 100))
	f.Add("")
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := tk.Verify(context.Background(), raw)
		if err != nil {
			require.Nil(t, p)
			return
		}
		require.Equal(t, "alice", p.User)
		require.Equal(t, []string{"ops"}, p.Groups)
	})
}

// FuzzLoginBody feeds arbitrary bodies to the login handler: the answer is 200 only for the
// right credentials, and never a server error.
func FuzzLoginBody(f *testing.F) {
	ctx := context.Background()
	users, err := OpenUsers(ctx, startJS(f), "", nil)
	require.NoError(f, err)
	require.NoError(f, users.Create(ctx, User{Name: "alice", PasswordHash: mustHash(f, "correct horse battery")}))
	clk := newClock()
	h := LoginHandler(&LocalProvider{Users: users, Cost: testCost}, openTokens(f, startJS(f), clk), LoginOptions{})
	f.Add(`{"user":"alice","password":"correct horse battery"}`)
	f.Add(`{"user":"alice","password":"x"}`)
	f.Add(`{"user":"alice","user":"bob","password":"correct horse battery"}`)
	f.Add(`[]`)
	f.Add(`{"user":"\u0000","password":null}`)
	f.Fuzz(func(t *testing.T, body string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/v1/login", strings.NewReader(body)))
		require.Less(t, rec.Code, 500, rec.Body.String())
		if rec.Code == http.StatusOK {
			require.Contains(t, body, "correct horse battery")
		}
	})
}
