package audit

import (
	"context"
	"net/http"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/authn"
	"github.com/dsnscale/dsnscale/controlplane/rbac"
)

// note collects, while a request is served, what the middlewares inside the audit middleware
// learn about it (they cannot change the outer request's context, so they write here).
type note struct {
	user       string
	attrs      rbac.Attributes
	haveAttrs  bool
	denied     bool
	binding    string
	reason     string
	authFailed bool
}

type noteKey struct{}

func noteFrom(ctx context.Context) *note {
	n, _ := ctx.Value(noteKey{}).(*note)
	return n
}

// AuthnHook is an authn.MiddlewareOptions.OnResult that tells the audit record who called.
func AuthnHook(r *http.Request, p *authn.Principal, err error) {
	n := noteFrom(r.Context())
	if n == nil {
		return
	}
	if p != nil {
		n.user = p.User
	}
	if err != nil {
		n.authFailed = true
		n.reason = err.Error()
	}
}

// LoginHook is an authn.LoginOptions.OnResult that tells the audit record who tried to log in.
func LoginHook(r *http.Request, user string, err error) {
	n := noteFrom(r.Context())
	if n == nil {
		return
	}
	n.user = user
	if err != nil {
		n.authFailed = true
		n.reason = err.Error()
	}
}

// RBACHook is an rbac.Options.OnDecision that tells the audit record what was decided and which
// binding allowed it. Of several decisions (a transaction's items), a denial wins; otherwise the
// first allowing binding is kept.
func RBACHook(r *http.Request, attrs rbac.Attributes, d rbac.Decision) {
	n := noteFrom(r.Context())
	if n == nil || n.denied {
		return
	}
	if !n.haveAttrs {
		n.attrs, n.haveAttrs = attrs, true
	}
	if !d.Allowed {
		n.denied, n.attrs, n.binding, n.reason = true, attrs, "", d.Reason
		return
	}
	if n.binding == "" {
		n.binding = d.Binding
	}
}

// MiddlewareOptions configures Middleware.
type MiddlewareOptions struct {
	// Resolve tells what a request asks, for records RBAC did not decide (refused before it, or
	// deferred); nil means rbac.APIResolver.
	Resolve rbac.Resolver
	// Skip, if set, exempts requests from auditing (health checks, metrics scrapes).
	Skip func(r *http.Request) bool
	// Source names where a request came from; nil means its RemoteAddr.
	Source func(r *http.Request) string
	// Clock reads the time; nil means time.Now.
	Clock func() time.Time
	// Context, if set, adds values to each request's context along with the audit's own, so
	// that the request is copied once for all of them (authn.WithSlot, rbac.WithSlot).
	Context func(context.Context) context.Context
}

// Middleware records every request it serves into rec once it is answered (a watch when its
// stream ends). Put it outside authentication, rate limits and RBAC so that their refusals are
// recorded too, and give authn and rbac the hooks (AuthnHook, LoginHook, RBACHook).
func Middleware(rec *Recorder, opts MiddlewareOptions) func(http.Handler) http.Handler {
	resolve := opts.Resolve
	if resolve == nil {
		resolve = rbac.APIResolver
	}
	now := opts.Clock
	if now == nil {
		now = time.Now
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if opts.Skip != nil && opts.Skip(r) {
				next.ServeHTTP(w, r)
				return
			}
			start := now()
			n := &note{}
			sw := &statusWriter{ResponseWriter: w}
			defer func() {
				status := sw.status
				if status == 0 {
					status = http.StatusOK
				}
				source := r.RemoteAddr
				if opts.Source != nil {
					source = opts.Source(r)
				}
				attrs := n.attrs
				if !n.haveAttrs {
					attrs, _ = resolve(r)
				}
				record := Record{
					Time: start.UTC(), User: n.user, Source: source, Method: r.Method, Path: r.URL.Path,
					Verb: string(attrs.Verb), Kind: attrs.Kind, Tenant: attrs.Tenant, Name: attrs.Name,
					Status: status, Binding: n.binding, DurationMs: float64(now().Sub(start).Microseconds()) / 1000,
				}
				switch {
				case n.denied || status == http.StatusForbidden:
					record.Verdict, record.Binding, record.Reason = VerdictDenied, "", n.reason
				case status == http.StatusUnauthorized:
					record.Verdict, record.Reason = VerdictUnauthenticated, n.reason
				case status == http.StatusTooManyRequests:
					record.Verdict = VerdictLimited
				default:
					record.Verdict = VerdictAllowed
				}
				rec.Record(record)
			}()
			ctx := context.WithValue(r.Context(), noteKey{}, n)
			if opts.Context != nil {
				ctx = opts.Context(ctx)
			}
			next.ServeHTTP(sw, r.WithContext(ctx))
		})
	}
}

// statusWriter remembers the status of the answer.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (flushes, deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush sends buffered data, for streams.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
