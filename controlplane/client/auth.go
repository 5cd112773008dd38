package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"
)

// renewBefore is how long before its expiry a token obtained with credentials is replaced.
const renewBefore = time.Minute

// LoginResult is the answer to a login: a bearer token and when it expires.
type LoginResult struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// WithCredentials makes the client log in as user (POST /api/v1/login) before its first call,
// again shortly before the token expires, and again once when a call is refused with 401 (a
// revoked token). It takes precedence over WithToken.
func WithCredentials(user, password string) Option {
	return func(c *Client) { c.login = &session{user: user, password: password, now: time.Now} }
}

// session keeps the token of a client with credentials.
type session struct {
	user, password string
	now            func() time.Time

	mu      sync.Mutex
	token   string
	expires time.Time
}

// bearer returns the token to send: the session's (logging in when it has none or it is about
// to expire), else the fixed one.
func (c *Client) bearer(ctx context.Context) (string, error) {
	s := c.login
	if s == nil {
		return c.token, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token != "" && s.now().Before(s.expires.Add(-renewBefore)) {
		return s.token, nil
	}
	res, err := c.Login(ctx, s.user, s.password)
	if err != nil {
		return "", err
	}
	s.token, s.expires = res.Token, res.ExpiresAt
	return s.token, nil
}

// invalidate forgets the token sent in authorization, if it is still the session's.
func (s *session) invalidate(authorization string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if authorization == "Bearer "+s.token {
		s.token = ""
	}
}

// Token returns the bearer token the client sends (logging in first with credentials).
func (c *Client) Token(ctx context.Context) (string, error) { return c.bearer(ctx) }

// Login exchanges a user's credentials for a token. It does not change the client's own token.
func (c *Client) Login(ctx context.Context, user, password string) (LoginResult, error) {
	body, _ := json.Marshal(map[string]string{"user": user, "password": password})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+apiPrefix+"/login", bytes.NewReader(body))
	if err != nil {
		return LoginResult{}, fmt.Errorf("client: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return LoginResult{}, fmt.Errorf("client: login: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return LoginResult{}, readAPIError(resp)
	}
	var out LoginResult
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil || out.Token == "" {
		return LoginResult{}, fmt.Errorf("client: login: malformed answer: %v", err)
	}
	return out, nil
}

// Logout revokes the client's token at once (POST /api/v1/logout).
func (c *Client) Logout(ctx context.Context) error {
	err := c.do(ctx, http.MethodPost, apiPrefix+"/logout", nil, nil, nil)
	if err == nil && c.login != nil {
		c.login.mu.Lock()
		c.login.token = ""
		c.login.mu.Unlock()
	}
	return err
}

// TLSConfig is a client TLS configuration that trusts the CA certificates in caPEM (the
// control plane's ca.crt) and nothing else.
func TLSConfig(caPEM []byte) (*tls.Config, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("client: no PEM certificate in the CA file")
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}, nil
}

// MaxIdleConnsPerHost is how many idle connections an HTTPClient keeps to the API. Its callers
// talk to one server, often from many goroutines (a fleet admitting its DSNs, a load
// generator): with net/http's default of 2, every request beyond the second in flight would
// close its connection when done, and the next would pay a TLS handshake again.
const MaxIdleConnsPerHost = 64

// HTTPClient is an HTTP client for a control plane whose API certificate is issued by the CA
// in caPEM; a nil caPEM trusts the system's roots. timeout 0 means none (watches need none).
// It keeps up to MaxIdleConnsPerHost connections to the API open between requests.
func HTTPClient(caPEM []byte, timeout time.Duration) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = MaxIdleConnsPerHost
	if caPEM != nil {
		tc, err := TLSConfig(caPEM)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = tc
	}
	return &http.Client{Transport: tr, Timeout: timeout}, nil
}

// ReadCAFile reads a PEM CA certificate file and checks it holds one.
func ReadCAFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("client: CA file: %w", err)
	}
	if _, err := TLSConfig(b); err != nil {
		return nil, fmt.Errorf("client: CA file %s: %w", path, err)
	}
	return b, nil
}

// ReadPasswordFile reads a password file (one line).
func ReadPasswordFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("client: password file: %w", err)
	}
	pw := string(bytes.TrimRight(b, "\r\n"))
	if pw == "" {
		return "", fmt.Errorf("client: password file %s is empty", path)
	}
	return pw, nil
}
