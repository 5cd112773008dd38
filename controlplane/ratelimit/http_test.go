package ratelimit

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestMiddlewareAnswers429WithRetryAfter(t *testing.T) {
	const rate = 50
	l, clk := newLimiter(t, Config{Rate: rate, Burst: rate, PerKeyRate: 10 * rate, PerKeyBurst: 10 * rate})
	var limited []string
	mw := Middleware(l, func(r *http.Request) string { return r.Header.Get("X-User") }, MiddlewareOptions{
		OnLimited: func(r *http.Request, key string, res Result) { limited = append(limited, key) },
	})
	srv := httptest.NewServer(mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })))
	defer srv.Close()

	get := func(user string) *http.Response {
		req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
		require.NoError(t, err)
		if user != "" {
			req.Header.Set("X-User", user)
		}
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		return resp
	}
	// A flood from one user over 2 s of the limiter's clock; another user asks every 100 ms.
	var floodOK, flood429, quietAsked, quietOK int
	for ms := 0; ms < 2000; ms += 5 {
		for range 2 {
			resp := get("flooder")
			switch resp.StatusCode {
			case http.StatusNoContent:
				floodOK++
			case http.StatusTooManyRequests:
				flood429++
				secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
				require.NoError(t, err)
				require.GreaterOrEqual(t, secs, 1)
				var body errorBody
				require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
				require.Equal(t, 429, body.Code)
				require.Equal(t, "TooManyRequests", body.Reason)
			default:
				t.Fatalf("status %d", resp.StatusCode)
			}
			resp.Body.Close()
		}
		if ms >= 500 && ms%100 == 0 {
			quietAsked++
			resp := get("quiet")
			resp.Body.Close()
			if resp.StatusCode == http.StatusNoContent {
				quietOK++
			}
		}
		clk.Add(5 * time.Millisecond)
	}
	require.Greater(t, flood429, 0, "the flood is limited")
	require.Greater(t, floodOK, 0)
	require.Equal(t, quietAsked, quietOK, "the other user's requests still succeed")
	require.NotContains(t, limited, "quiet")

	resp := get("") // no key: exempt
	resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
}

func TestSourceKey(t *testing.T) {
	for addr, want := range map[string]string{
		"192.0.2.7:1234":             "192.0.2.7",
		"[::ffff:192.0.2.7]:1234":    "192.0.2.7",
		"[2001:db8:1:2:3:4:5:6]:443": "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:443": "2001:db8:1:2::/64",
		"[2001:db8:1:3::1]:443":      "2001:db8:1:3::/64",
		"not an address":             "not an address",
		"@unix":                      "@unix",
		"[fe80::1%eth0]:80":          "fe80::/64",
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = addr
		require.Equal(t, want, SourceKey(r), addr)
	}
}

func TestLimitBody(t *testing.T) {
	h := LimitBody(10)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()

	resp, err := http.Post(srv.URL, "text/plain", strings.NewReader("short"))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	resp, err = http.Post(srv.URL, "text/plain", strings.NewReader(strings.Repeat("x", 100)))
	require.NoError(t, err)
	var body errorBody
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	resp.Body.Close()
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	require.Equal(t, "RequestEntityTooLarge", body.Reason)

	// Without a Content-Length (chunked), the read fails past the limit.
	resp, err = http.Post(srv.URL, "text/plain", io.MultiReader(strings.NewReader(strings.Repeat("x", 100))))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
}

func TestServerLimitsRefuseHugeHeaders(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
	limits := DefaultServerLimits()
	limits.MaxHeaderBytes = 4 << 10
	limits.Apply(srv)
	require.Equal(t, 10*time.Second, srv.ReadHeaderTimeout)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	req, err := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+"/", nil)
	require.NoError(t, err)
	req.Header.Set("X-Big", strings.Repeat("a", 64<<10))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)

	req.Header.Set("X-Big", "small")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}
