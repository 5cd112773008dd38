package backendurl

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var errBad = errors.New("bad test URL")

var role = Role{
	Schemes: []Scheme{
		{Name: "db", Kind: "db"},
		{Name: "db+https", Kind: "db", HTTPS: true},
		{Name: "http", Kind: "db"},
	},
	Secrets: []string{"token"},
	Err:     errBad,
}

func TestParse(t *testing.T) {
	u, err := role.Parse("db+https://u:pw@h:9000/base/?x=1")
	require.NoError(t, err)
	assert.Equal(t, Scheme{Name: "db+https", Kind: "db", HTTPS: true}, u.Scheme)
	assert.Equal(t, "https://h:9000/base", u.BaseURL)
	assert.Equal(t, "u", u.Username())
	assert.Equal(t, "pw", u.Password())
	assert.Equal(t, url.Values{"x": {"1"}}, u.Query)

	u, err = role.Parse("http://h:1")
	require.NoError(t, err)
	assert.Equal(t, "http://h:1", u.BaseURL)
	assert.Empty(t, u.Username()+u.Password())

	tests := []struct{ url, want string }{
		{"h:9000", `bad test URL: "h:9000": no scheme; want db:// or http://`},
		{"://h:9000", "no scheme"},
		{"ftp://h:21", `scheme "ftp": want db, db+https or http`},
		{"db:opaque", "no scheme"},
		{"db://h", `host "h": want host:port`},
		{"db://:9000", `host ":9000": want host:port`},
		{"db://h:0", `port "0": want 1-65535`},
		{"db://h:65536", `port "65536"`},
		{"db://h:9000#x", `unexpected fragment "x"`},
		{"db://u:s3cr3t@[::1", `bad test URL: "<unparsable URL>": missing ']' in host`},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			_, err := role.Parse(tt.url)
			require.ErrorIs(t, err, errBad)
			assert.Contains(t, err.Error(), tt.want)
			assert.NotContains(t, err.Error(), "s3cr3t")
		})
	}
}

func TestParams(t *testing.T) {
	q := url.Values{"org": {"o"}, "token": {"t"}}
	require.NoError(t, role.Params("", q, "org", "bucket", "token"))
	err := role.Params("db://h:1?org=o&x=1&token=s3cr3t", url.Values{"org": {"o"}, "x": {"1"}, "token": {"s3cr3t"}}, "org", "token")
	require.ErrorIs(t, err, errBad)
	assert.Equal(t, `bad test URL: "db://h:1?org=o&token=xxxxx&x=1": unknown parameter "x"; want org, token`, err.Error())
	err = role.Params("db://h:1?org=o&org=p", url.Values{"org": {"o", "p"}}, "org")
	assert.ErrorContains(t, err, `parameter "org": want exactly one non-empty value`)
	err = role.Params("db://h:1?org=", url.Values{"org": {""}}, "org")
	assert.ErrorContains(t, err, `parameter "org": want exactly one non-empty value`)
}

func TestRedact(t *testing.T) {
	assert.Equal(t, "db://u:xxxxx@h:1?token=xxxxx", role.Redact("db://u:pw@h:1?token=abc"))
	assert.Equal(t, "db://u@h:1", role.Redact("db://u@h:1"), "a user without a password is shown")
	assert.Equal(t, "db://h:1?a=1", role.Redact("db://h:1?a=1"), "a URL without secrets is unchanged")
	assert.Equal(t, "<unparsable URL>", role.Redact("db://h:1%zz?token=abc"))
	assert.Equal(t, "db://h:1%zz", role.Redact("db://h:1%zz"))
}

// FuzzParse: whatever the URL, parsing does not panic, every error wraps the role's sentinel
// and never shows the password, and a URL that parses has an http(s) base URL.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"db://h:1", "http://h:9000/a/b/?x=1", "db+https://h:1#f", "[::1", "db://h:99999", "db:opaque", "%zz"} {
		f.Add(s)
	}
	const secret = "S3CRETPW"
	f.Fuzz(func(t *testing.T, rest string) {
		for _, raw := range []string{rest, "db://u:" + secret + "@" + rest} {
			u, err := role.Parse(raw)
			if err != nil {
				if !errors.Is(err, errBad) {
					t.Fatalf("error does not wrap the sentinel: %v", err)
				}
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("error shows the password: %v", err)
				}
				continue
			}
			if !strings.HasPrefix(u.BaseURL, "http://") && !strings.HasPrefix(u.BaseURL, "https://") {
				t.Fatalf("base URL %q of %q", u.BaseURL, raw)
			}
		}
	})
}
