package authn

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/model"
)

// Verifier checks a bearer token and returns whom it names. *Tokens is one.
type Verifier interface {
	Verify(ctx context.Context, token string) (*Principal, error)
}

// Issuer signs a token for a principal. *Tokens is one.
type Issuer interface {
	Issue(p Principal) (token string, expiresAt time.Time, err error)
}

// Revoker revokes the token a principal came from. *Tokens is one.
type Revoker interface {
	Revoke(ctx context.Context, p *Principal) error
}

// MiddlewareOptions configures Middleware.
type MiddlewareOptions struct {
	// Public says which requests are served without a token (login, health); nil means none.
	// A public request that carries a token is still authenticated, so that logout works.
	Public func(r *http.Request) bool
	// OnResult, if set, is called once per request with the principal or the error, before the
	// request is answered or passed on (for audit records).
	OnResult func(r *http.Request, p *Principal, err error)
	// Logger logs failures of the token store; nil discards.
	Logger *slog.Logger
}

// PublicPaths returns a Public function matching requests to exactly these paths.
func PublicPaths(paths ...string) func(*http.Request) bool {
	set := make(map[string]bool, len(paths))
	for _, p := range paths {
		set[p] = true
	}
	return func(r *http.Request) bool { return set[r.URL.Path] }
}

// Middleware authenticates each request by its "Authorization: Bearer <token>" header with v
// and puts the Principal in the request's context (FromContext). Requests without a valid token
// get 401 with the API's JSON error body, unless opts.Public admits them.
func Middleware(v Verifier, opts MiddlewareOptions) func(http.Handler) http.Handler {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			public := opts.Public != nil && opts.Public(r)
			raw, err := bearer(r)
			var p *Principal
			if err == nil {
				p, err = v.Verify(r.Context(), raw)
			}
			if opts.OnResult != nil && !(public && errors.Is(err, ErrUnauthenticated)) {
				opts.OnResult(r, p, err)
			}
			switch {
			case err == nil:
				if s, ok := r.Context().Value(slotKey{}).(*slot); ok {
					s.p = p
					next.ServeHTTP(w, r)
					return
				}
				next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), p)))
			case public:
				next.ServeHTTP(w, r)
			case errors.Is(err, ErrUnavailable):
				log.Warn("token verification failed", "err", err)
				writeError(w, http.StatusServiceUnavailable, ReasonUnavailable, "", "authentication is unavailable; retry")
			default:
				writeError(w, http.StatusUnauthorized, ReasonUnauthorized, "", unauthorizedMessage(err))
			}
		})
	}
}

// bearer extracts the token of an Authorization header.
func bearer(r *http.Request) (string, error) {
	h := r.Header.Values("Authorization")
	switch {
	case len(h) == 0:
		return "", ErrUnauthenticated
	case len(h) > 1:
		return "", errors.Join(ErrInvalidToken, errors.New("more than one Authorization header"))
	}
	scheme, token, ok := strings.Cut(h[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", errors.Join(ErrInvalidToken, errors.New(`the Authorization header is not "Bearer <token>"`))
	}
	return strings.TrimSpace(token), nil
}

// unauthorizedMessage says what was wrong without echoing the token.
func unauthorizedMessage(err error) string {
	switch {
	case errors.Is(err, ErrUnauthenticated):
		return "authentication required: send Authorization: Bearer <token> (POST /api/v1/login gives one)"
	case errors.Is(err, ErrExpired):
		return "the token has expired; log in again"
	case errors.Is(err, ErrRevoked):
		return "the token has been revoked; log in again"
	}
	return "the token is not valid: " + strings.TrimPrefix(err.Error(), ErrInvalidToken.Error()+": ")
}

// MaxLoginBodyBytes bounds a login request's body.
const MaxLoginBodyBytes = 4 << 10

// LoginRequest is the body of POST /api/v1/login.
type LoginRequest struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

// LoginResponse is the answer to a successful login.
type LoginResponse struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// LoginOptions configures LoginHandler.
type LoginOptions struct {
	// OnResult, if set, is called with the outcome of each login attempt (for audit records).
	OnResult func(r *http.Request, user string, err error)
	// Logger logs failures of the identity provider; nil discards.
	Logger *slog.Logger
}

// LoginHandler serves POST /api/v1/login: {"user", "password"} in, {"token", "expiresAt"} out,
// 401 for wrong credentials (never saying which part was wrong), 400 for a malformed body.
func LoginHandler(idp IdentityProvider, iss Issuer, opts LoginOptions) http.Handler {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, http.StatusMethodNotAllowed, ReasonMethod, "", "use POST")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxLoginBodyBytes))
		if err != nil {
			writeError(w, http.StatusRequestEntityTooLarge, ReasonTooLarge, "", "the login body is over 4 KiB")
			return
		}
		var req LoginRequest
		if err := model.DecodeStrict(body, &req, ""); err != nil {
			field := ""
			var fe *model.FieldErrors
			if errors.As(err, &fe) && len(fe.Errors) > 0 {
				field = fe.Errors[0].Field
			}
			writeError(w, http.StatusBadRequest, ReasonBadRequest, field, err.Error())
			return
		}
		switch {
		case req.User == "":
			writeError(w, http.StatusBadRequest, ReasonBadRequest, "user", "required")
			return
		case req.Password == "":
			writeError(w, http.StatusBadRequest, ReasonBadRequest, "password", "required")
			return
		}
		p, err := idp.Authenticate(r.Context(), req.User, req.Password)
		if opts.OnResult != nil {
			opts.OnResult(r, req.User, err)
		}
		if err != nil {
			if errors.Is(err, ErrBadCredentials) {
				writeError(w, http.StatusUnauthorized, ReasonUnauthorized, "", "invalid user or password")
				return
			}
			log.Warn("login failed", "err", err)
			writeError(w, http.StatusServiceUnavailable, ReasonUnavailable, "", "authentication is unavailable; retry")
			return
		}
		tok, exp, err := iss.Issue(p)
		if err != nil {
			log.Error("issuing a token failed", "err", err)
			writeError(w, http.StatusInternalServerError, ReasonInternal, "", "issuing the token failed")
			return
		}
		writeJSON(w, http.StatusOK, LoginResponse{Token: tok, ExpiresAt: exp.UTC()})
	})
}

// LogoutHandler serves POST /api/v1/logout behind Middleware: it revokes the token the request
// carries, with effect at once, and answers 204.
func LogoutHandler(rev Revoker) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, http.StatusMethodNotAllowed, ReasonMethod, "", "use POST")
			return
		}
		p, ok := FromContext(r.Context())
		if !ok {
			writeError(w, http.StatusUnauthorized, ReasonUnauthorized, "", unauthorizedMessage(ErrUnauthenticated))
			return
		}
		if err := rev.Revoke(r.Context(), p); err != nil {
			if errors.Is(err, ErrInvalid) {
				writeError(w, http.StatusBadRequest, ReasonBadRequest, "", err.Error())
				return
			}
			writeError(w, http.StatusServiceUnavailable, ReasonUnavailable, "", "revoking the token failed; retry")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
