// Package authn authenticates the callers of the northbound API: users in a local store with
// bcrypt password hashes (or an external IdentityProvider), short-lived JWTs signed with Ed25519
// keys that rotate, revocation that takes effect at once, the first admin user, and the HTTP
// middleware and handlers (login, logout) that put a Principal in each request's context.
//
// Signing keys, users and revocations live in JetStream key-value buckets, so that every
// control-plane replica sharing the bus verifies the same tokens and sees a logout at once.
package authn

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"time"
)

// Sentinel errors. Errors returned by this package wrap one of them.
var (
	// ErrUnauthenticated marks a request without credentials.
	ErrUnauthenticated = errors.New("authn: no credentials")
	// ErrInvalidToken marks a token that is malformed, signed by an unknown key or with another
	// algorithm, or whose claims are wrong.
	ErrInvalidToken = errors.New("authn: invalid token")
	// ErrExpired marks a token past its expiry.
	ErrExpired = errors.New("authn: token expired")
	// ErrRevoked marks a revoked token.
	ErrRevoked = errors.New("authn: token revoked")
	// ErrBadCredentials marks a failed login; it never says whether the user exists.
	ErrBadCredentials = errors.New("authn: invalid user or password")
	// ErrNotFound marks a user that does not exist.
	ErrNotFound = errors.New("authn: not found")
	// ErrExists marks a user that already exists.
	ErrExists = errors.New("authn: already exists")
	// ErrInvalid marks a bad user name, group, password or request.
	ErrInvalid = errors.New("authn: invalid input")
	// ErrConfig marks an invalid configuration.
	ErrConfig = errors.New("authn: invalid config")
	// ErrUnavailable marks a store that did not answer.
	ErrUnavailable = errors.New("authn: store unavailable")
)

// Principal is an authenticated caller.
type Principal struct {
	// User is the user name.
	User string `json:"user"`
	// Groups are the groups the user belongs to, which role bindings may name.
	Groups []string `json:"groups,omitempty"`
	// TokenID is the id (jti) of the token the request carried; empty for a principal that did
	// not come from a token.
	TokenID string `json:"-"`
	// IssuedAt and ExpiresAt bound the token's validity.
	IssuedAt  time.Time `json:"-"`
	ExpiresAt time.Time `json:"-"`
}

// InGroup reports whether the principal belongs to group.
func (p *Principal) InGroup(group string) bool { return slices.Contains(p.Groups, group) }

type ctxKey struct{}

// NewContext returns ctx carrying p.
func NewContext(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the principal ctx carries, if any.
func FromContext(ctx context.Context) (*Principal, bool) {
	if p, ok := ctx.Value(ctxKey{}).(*Principal); ok && p != nil {
		return p, true
	}
	if s, ok := ctx.Value(slotKey{}).(*slot); ok && s.p != nil {
		return s.p, true
	}
	return nil, false
}

type slotKey struct{}

// slot is room for a request's principal, made in its context before Middleware runs.
type slot struct{ p *Principal }

// WithSlot returns ctx with room for the principal that Middleware finds. A server that adds
// other values to its requests' contexts first can add this one with them, and Middleware then
// fills it in instead of copying each request to add the principal.
func WithSlot(ctx context.Context) context.Context {
	return context.WithValue(ctx, slotKey{}, &slot{})
}

// UserOf returns the user name of the request's principal, or "" for an anonymous request. It
// fits the key functions of per-user rate limits.
func UserOf(r *http.Request) string {
	if p, ok := FromContext(r.Context()); ok {
		return p.User
	}
	return ""
}

// Reasons in error bodies, as the API's.
const (
	ReasonUnauthorized = "Unauthorized"
	ReasonBadRequest   = "BadRequest"
	ReasonUnavailable  = "ServiceUnavailable"
	ReasonTooLarge     = "RequestEntityTooLarge"
	ReasonMethod       = "MethodNotAllowed"
	ReasonInternal     = "InternalError"
)

// errorBody is the API's JSON error.
type errorBody struct {
	Code    int    `json:"code"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func writeError(w http.ResponseWriter, status int, reason, field, message string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="dsnscale"`)
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, errorBody{Code: status, Reason: reason, Message: message, Field: field})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(errorBody{Code: status, Reason: ReasonInternal, Message: "encoding the answer: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
