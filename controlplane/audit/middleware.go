package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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

// Middleware records every request it serves into trail. Put it outside authentication, rate
// limits and RBAC so that their refusals are recorded too, and give authn and rbac the hooks
// (AuthnHook, LoginHook, RBACHook).
//
// With a durable trail the answer is held (buffered) until the record is stored: a client that
// got an answer knows the call is in the audit trail. If the record cannot be stored the client
// gets 503 instead of the answer (the call itself may have taken effect). A streamed answer (a
// watch) is recorded when it first flushes, and streams from then on. With a trail that is not
// durable, the record is taken once the call is answered (a watch when its stream ends).
func Middleware(trail Trail, opts MiddlewareOptions) func(http.Handler) http.Handler {
	resolve := opts.Resolve
	if resolve == nil {
		resolve = rbac.APIResolver
	}
	now := opts.Clock
	if now == nil {
		now = time.Now
	}
	durable := trail.Durable()
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if opts.Skip != nil && opts.Skip(r) {
				next.ServeHTTP(w, r)
				return
			}
			start := now()
			n := &note{}
			record := func(status int) Record {
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
				rec := Record{
					Time: start.UTC(), User: n.user, Source: source, Method: r.Method, Path: r.URL.Path,
					Verb: string(attrs.Verb), Kind: attrs.Kind, Tenant: attrs.Tenant, Name: attrs.Name,
					Status: status, Binding: n.binding, DurationMs: float64(now().Sub(start).Microseconds()) / 1000,
				}
				switch {
				case n.denied || status == http.StatusForbidden:
					rec.Verdict, rec.Binding, rec.Reason = VerdictDenied, "", n.reason
				case status == http.StatusUnauthorized:
					rec.Verdict, rec.Reason = VerdictUnauthenticated, n.reason
				case status == http.StatusTooManyRequests:
					rec.Verdict = VerdictLimited
				default:
					rec.Verdict = VerdictAllowed
				}
				return rec
			}
			ctx := context.WithValue(r.Context(), noteKey{}, n)
			if opts.Context != nil {
				ctx = opts.Context(ctx)
			}
			if !durable {
				sw := &statusWriter{ResponseWriter: w}
				defer func() { _ = trail.Append(r.Context(), record(sw.status)) }()
				next.ServeHTTP(sw, r.WithContext(ctx))
				return
			}
			hw := &holdWriter{w: w, header: http.Header{}}
			hw.commit = func() bool {
				// The record is stored even if the client has gone: its call happened.
				actx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), appendTimeout)
				defer cancel()
				if err := trail.Append(actx, record(hw.status)); err != nil {
					writeUnavailable(w, err)
					return false
				}
				return true
			}
			next.ServeHTTP(hw, r.WithContext(ctx))
			hw.finish()
		})
	}
}

// appendTimeout bounds the wait for a durable trail to store a record.
const appendTimeout = 10 * time.Second

// writeUnavailable answers a call whose record could not be stored.
func writeUnavailable(w http.ResponseWriter, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Retry-After", "1")
	w.WriteHeader(http.StatusServiceUnavailable)
	b, _ := json.Marshal(map[string]any{"code": http.StatusServiceUnavailable, "reason": "ServiceUnavailable",
		"message": "the audit trail could not store the record of this call (" + err.Error() + "); it may have taken effect: check before retrying"})
	_, _ = w.Write(b)
}

// holdWriter holds an answer until its audit record is stored (commit), then writes it. A
// Flush (a stream) commits and switches to writing through.
type holdWriter struct {
	w      http.ResponseWriter
	header http.Header
	status int
	body   bytes.Buffer
	commit func() bool
	// through: the record is stored and the held answer written; failed: it could not be, and
	// the 503 was written instead, so the rest of the answer goes nowhere.
	through, failed bool
}

func (h *holdWriter) Header() http.Header {
	if h.through {
		return h.w.Header()
	}
	return h.header
}

func (h *holdWriter) WriteHeader(status int) {
	if h.status == 0 {
		h.status = status
	}
	if h.through {
		h.w.WriteHeader(status)
	}
}

func (h *holdWriter) Write(b []byte) (int, error) {
	if h.status == 0 {
		h.status = http.StatusOK
	}
	switch {
	case h.failed:
		return 0, errAuditUnavailable
	case h.through:
		return h.w.Write(b)
	}
	return h.body.Write(b)
}

var errAuditUnavailable = errors.New("audit: the record of this call could not be stored")

// release stores the record and, if that worked, writes the held answer.
func (h *holdWriter) release() {
	if h.through || h.failed {
		return
	}
	if !h.commit() {
		h.failed = true
		return
	}
	h.through = true
	dst := h.w.Header()
	for k, v := range h.header {
		dst[k] = v
	}
	status := h.status
	if status == 0 {
		status = http.StatusOK
	}
	h.w.WriteHeader(status)
	if h.body.Len() > 0 {
		_, _ = h.w.Write(h.body.Bytes())
	}
}

// finish ends the call: the held answer goes out once its record is stored.
func (h *holdWriter) finish() { h.release() }

// Flush commits the answer so far and sends it: a stream is recorded when it starts.
func (h *holdWriter) Flush() {
	h.release()
	if h.through {
		if f, ok := h.w.(http.Flusher); ok {
			f.Flush()
		}
	}
}

// Unwrap lets http.ResponseController reach the connection (deadlines). Flushes go through
// Flush above, which ResponseController prefers.
func (h *holdWriter) Unwrap() http.ResponseWriter { return h.w }

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
