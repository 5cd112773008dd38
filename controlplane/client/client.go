// Package client talks to a control plane's northbound API (the reference one in package api, or
// any control plane that speaks the same REST/JSON API): typed calls for objects, lists,
// transactions, the watch stream, DSNs, convergence and the current revision.
//
// Every failure the server reports comes back as an *APIError carrying the HTTP status and the
// server's JSON error (reason, message, field path).
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxErrorBody bounds how much of a non-JSON error answer is kept in the message.
const maxErrorBody = 512

// Client calls one control plane. It is safe for concurrent use.
type Client struct {
	base      string
	hc        *http.Client
	token     string
	userAgent string
	login     *session // set by WithCredentials
}

// Option configures a Client.
type Option func(*Client)

// WithToken sends token as a bearer token (Authorization: Bearer <token>) on every request.
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// New returns a client for the control plane at baseURL ("http://127.0.0.1:8080"; the API lives
// under /api/v1 of it). A nil httpClient uses http.DefaultClient; give one with a Transport to
// tune connection reuse, TLS or timeouts (a Timeout also bounds watch streams, so prefer contexts).
func New(baseURL string, httpClient *http.Client, opts ...Option) *Client {
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	c := &Client{base: strings.TrimRight(baseURL, "/"), hc: httpClient, userAgent: "dsnscale-client"}
	for _, o := range opts {
		o(c)
	}
	return c
}

// BaseURL returns the URL the client was made for, without a trailing slash.
func (c *Client) BaseURL() string { return c.base }

// FieldError is one problem with one field, as the server lists them in an error's details.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// APIError is an error answer from the server.
type APIError struct {
	// Code is the HTTP status.
	Code int `json:"code"`
	// Reason is a machine-readable word: NotFound, Conflict, AlreadyExists, Invalid, BadRequest,
	// Gone, TooManyRequests, ServiceUnavailable, ...
	Reason  string `json:"reason"`
	Message string `json:"message"`
	// Field is the path of the first field at fault, if any ("spec.rules[2].from.network").
	Field   string       `json:"field,omitempty"`
	Details []FieldError `json:"details,omitempty"`
	// RetryAfter is the server's Retry-After hint (429 and 503), zero if none.
	RetryAfter time.Duration `json:"-"`
}

// Error renders the error as "404 NotFound: field: message".
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s: ", e.Code, e.Reason)
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// StatusCode returns the HTTP status of an *APIError in err's chain, or 0.
func StatusCode(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return 0
}

// IsNotFound reports whether err is a 404 answer.
func IsNotFound(err error) bool { return StatusCode(err) == http.StatusNotFound }

// IsConflict reports whether err is a 409 answer (a stale resourceVersion, an object that
// already exists, or a delete of an object still referred to).
func IsConflict(err error) bool { return StatusCode(err) == http.StatusConflict }

// IsRetryable reports whether err is an answer worth retrying later: 429 or 503.
func IsRetryable(err error) bool {
	code := StatusCode(err)
	return code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable
}

// newRequest builds a request for path (under the base URL) with query and an optional JSON body.
func (c *Client) newRequest(ctx context.Context, method, path string, query url.Values, body any) (*http.Request, error) {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("client: encoding the %s %s body: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	if tok, err := c.bearer(ctx); err != nil {
		return nil, err
	} else if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return req, nil
}

// do sends a request and decodes a 2xx JSON answer into out (if non-nil). A client with
// credentials that gets 401 (its token expired or was revoked) logs in again and retries once.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	for attempt := 0; ; attempt++ {
		req, err := c.newRequest(ctx, method, path, query, body)
		if err != nil {
			return err
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			return fmt.Errorf("client: %s %s: %w", method, path, err)
		}
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 && c.login != nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			c.login.invalidate(req.Header.Get("Authorization"))
			continue
		}
		defer resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return readAPIError(resp)
		}
		if out == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			return nil
		}
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return fmt.Errorf("client: %s %s: decoding the answer: %w", method, path, err)
		}
		return nil
	}
}

// readAPIError turns an error answer into an *APIError, whether or not its body is the API's
// JSON error (a proxy in between may answer in plain text).
func readAPIError(resp *http.Response) *APIError {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	ae := &APIError{}
	if err := json.Unmarshal(b, ae); err != nil || ae.Code == 0 {
		msg := strings.TrimSpace(string(b))
		if len(msg) > maxErrorBody {
			msg = msg[:maxErrorBody] + "..."
		}
		if msg == "" {
			msg = http.StatusText(resp.StatusCode)
		}
		ae = &APIError{Reason: strings.ReplaceAll(http.StatusText(resp.StatusCode), " ", ""), Message: msg}
	}
	ae.Code = resp.StatusCode
	if s := resp.Header.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			ae.RetryAfter = time.Duration(n) * time.Second
		}
	}
	return ae
}
