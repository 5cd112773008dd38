package ratelimit

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"
)

// KeyFunc names the key a request is limited under; "" exempts it (an anonymous request under
// a per-user limit, say).
type KeyFunc func(r *http.Request) string

// SourceKey keys requests by the address they come from: the IPv4 address, or the /64 prefix
// of an IPv6 address (one site usually holds a whole /64, so single addresses would let a
// client rotate through them). Behind a trusted proxy, key on its forwarding header instead.
func SourceKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	addr = addr.Unmap()
	if addr.Is4() {
		return addr.String()
	}
	p, _ := addr.Prefix(64)
	return p.String()
}

// MiddlewareOptions configures Middleware.
type MiddlewareOptions struct {
	// OnLimited, if set, is called for each refused request (for metrics or logs).
	OnLimited func(r *http.Request, key string, res Result)
}

// Middleware limits requests by key with l. A refused request gets 429 with Retry-After (whole
// seconds, at least 1) and the API's JSON error body.
func Middleware(l *Limiter, key KeyFunc, opts MiddlewareOptions) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			k := key(r)
			if k == "" {
				next.ServeHTTP(w, r)
				return
			}
			res := l.Allow(k)
			if res.Allowed {
				next.ServeHTTP(w, r)
				return
			}
			if opts.OnLimited != nil {
				opts.OnLimited(r, k, res)
			}
			secs := int(math.Ceil(res.RetryAfter.Seconds()))
			if secs < 1 {
				secs = 1
			}
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			writeError(w, http.StatusTooManyRequests, "TooManyRequests",
				fmt.Sprintf("too many requests (%s); retry after %d s", res.Reason, secs))
		})
	}
}

// LimitBody refuses request bodies over max bytes: at once with 413 when Content-Length says
// so, and otherwise by making reads past max fail with *http.MaxBytesError (which the handler
// answers with 413).
func LimitBody(max int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > max {
				writeError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge",
					fmt.Sprintf("request body of %d bytes is over the limit of %d bytes", r.ContentLength, max))
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, max)
			next.ServeHTTP(w, r)
		})
	}
}

// ServerLimits are the limits an http.Server enforces itself.
type ServerLimits struct {
	// MaxHeaderBytes bounds the request line and headers; larger requests get 431.
	MaxHeaderBytes int
	// ReadHeaderTimeout bounds the time to read them (slow-header attacks).
	ReadHeaderTimeout time.Duration
	// IdleTimeout bounds idle keep-alive connections.
	IdleTimeout time.Duration
}

// DefaultServerLimits are sensible limits for the API: 64 KiB of headers read within 10 s.
func DefaultServerLimits() ServerLimits {
	return ServerLimits{MaxHeaderBytes: 64 << 10, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
}

// Apply sets the limits on srv. (Read and write timeouts would cut watch streams, so they are
// left to the handlers.)
func (s ServerLimits) Apply(srv *http.Server) {
	srv.MaxHeaderBytes = s.MaxHeaderBytes
	srv.ReadHeaderTimeout = s.ReadHeaderTimeout
	srv.IdleTimeout = s.IdleTimeout
}

type errorBody struct {
	Code    int    `json:"code"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, reason, message string) {
	b, _ := json.Marshal(errorBody{Code: status, Reason: reason, Message: message})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
