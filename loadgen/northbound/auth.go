package northbound

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/client"
)

// renewBefore is how long before its expiry the workload's token is replaced.
const renewBefore = time.Minute

// login keeps the bearer token of a workload that logs in with credentials: every request
// reads it without a lock; the first request to see it due for renewal logs in again while the
// others go on with the old one until it has expired.
type login struct {
	api            *client.Client
	user, password string

	header  atomic.Pointer[string] // "Bearer <token>"
	renewAt atomic.Int64           // unix nanoseconds
	expires atomic.Int64
	mu      sync.Mutex
}

// get returns the Authorization header to send, logging in when the token is due.
func (l *login) get(ctx context.Context) (string, error) {
	now := time.Now().UnixNano()
	h := l.header.Load()
	if h != nil && now < l.renewAt.Load() {
		return *h, nil
	}
	if h != nil && now < l.expires.Load() {
		if !l.mu.TryLock() {
			return *h, nil // someone else is renewing
		}
	} else {
		l.mu.Lock()
	}
	defer l.mu.Unlock()
	if h := l.header.Load(); h != nil && time.Now().UnixNano() < l.renewAt.Load() {
		return *h, nil
	}
	res, err := l.api.Login(ctx, l.user, l.password)
	if err != nil {
		if h != nil && time.Now().UnixNano() < l.expires.Load() {
			return *h, nil
		}
		return "", fmt.Errorf("northbound: login as %s: %w", l.user, err)
	}
	header := "Bearer " + res.Token
	l.header.Store(&header)
	l.expires.Store(res.ExpiresAt.UnixNano())
	l.renewAt.Store(res.ExpiresAt.Add(-renewBefore).UnixNano())
	return header, nil
}

// authorization returns the Authorization header of the workload's requests ("" for none).
func (w *Workload) authorization(ctx context.Context) (string, error) {
	if w.login != nil {
		return w.login.get(ctx)
	}
	return w.auth, nil
}

// tlsConfig is the client TLS configuration of a workload given a CA.
func tlsConfig(caPEM []byte) (*tls.Config, error) {
	tc, err := client.TLSConfig(caPEM)
	if err != nil {
		return nil, fmt.Errorf("%w: ca: %w", ErrConfig, err)
	}
	return tc, nil
}

// trusted holds the CAs registered with TrustTarget, by target URL.
var trusted sync.Map // string -> []byte

// TrustTarget records that the control plane at target (its base URL) presents a certificate
// from the CA in caPEM, for workloads that name neither a CA nor a Client of their own: a
// harness that started the control plane tells the loads it builds later where to find it, as
// an SSH client's known hosts do. A nil caPEM forgets the target.
func TrustTarget(target string, caPEM []byte) {
	key := strings.TrimRight(target, "/")
	if caPEM == nil {
		trusted.Delete(key)
		return
	}
	trusted.Store(key, append([]byte(nil), caPEM...))
}

// trustedCA returns the CA registered for target, if any.
func trustedCA(target string) []byte {
	if v, ok := trusted.Load(strings.TrimRight(target, "/")); ok {
		return v.([]byte)
	}
	return nil
}
