package controlplane

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dsnscale/dsnscale/controlplane/api"
	"github.com/dsnscale/dsnscale/controlplane/audit"
	"github.com/dsnscale/dsnscale/controlplane/authn"
	"github.com/dsnscale/dsnscale/controlplane/distrib"
	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/pki"
	"github.com/dsnscale/dsnscale/controlplane/pki/admission"
	"github.com/dsnscale/dsnscale/controlplane/pki/natsauth"
	"github.com/dsnscale/dsnscale/controlplane/ratelimit"
	"github.com/dsnscale/dsnscale/controlplane/rbac"
	"github.com/dsnscale/dsnscale/controlplane/store"
	"github.com/dsnscale/dsnscale/controlplane/wire"
	"github.com/dsnscale/dsnscale/internal/natsserver"
	"github.com/dsnscale/dsnscale/search"
)

// Paths and names under the data directory.
const (
	// CADir holds the certificate authority (ca.crt is the trust anchor clients are given).
	CADir = "ca"
	// AuditIndexDir holds the embedded audit index when no search backend is given.
	AuditIndexDir = "search/audit"
	// ControlPlaneIdentity names the control plane's own client certificate on the bus.
	ControlPlaneIdentity = "control-plane"
)

// API paths served next to package api's.
const (
	pathLogin  = rbac.APIPrefix + "/login"
	pathLogout = rbac.APIPrefix + "/logout"
)

// security holds the security components of a running control plane.
type security struct {
	ca        *pki.CA
	users     *authn.KVUsers
	tokens    *authn.Tokens
	rbacStore *rbac.Store
	authz     *rbac.Authorizer
	admTokens *admission.Store
	admitter  *admission.Admitter
	recorder  audit.Trail
	auditIdx  search.Index // closed by Stop when the control plane opened it
	ownsIdx   bool
	apiTLS    *tls.Config
	adminFile string
}

// openCA opens (creating on first start) the CA under the data directory.
func openCA(cfg Config) (*pki.CA, error) {
	ca, err := pki.OpenCA(cfg.caDir(), cfg.Clock)
	if err != nil {
		return nil, fmt.Errorf("controlplane: certificate authority: %w", err)
	}
	return ca, nil
}

// busAuth is the embedded NATS server's hook: mutual TLS with the CA, per-identity permissions.
func busAuth(cfg Config, ca *pki.CA) (func(*server.Options) error, error) {
	auth, err := natsauth.New(natsauth.Config{CA: ca, Hosts: cfg.TLSHosts, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("controlplane: bus authentication: %w", err)
	}
	return auth.Apply, nil
}

// busOptions are the options of the control plane's own bus connection: a client certificate
// with the control-plane role when the bus requires TLS.
func busOptions(ca *pki.CA, url string) ([]nats.Option, error) {
	if ca == nil || !strings.HasPrefix(url, "tls://") {
		return nil, nil
	}
	tc, err := ca.ControlPlaneTLSConfig(ControlPlaneIdentity, 0)
	if err != nil {
		return nil, fmt.Errorf("controlplane: bus client certificate: %w", err)
	}
	return []nats.Option{nats.Secure(tc)}, nil
}

// openSecurity opens the stores and services of authentication, authorization, admission and
// audit, creating the first admin user if there is none. What follows the stores in the
// background (RBAC changes) runs until runCtx ends.
func openSecurity(ctx, runCtx context.Context, cfg Config, ca *pki.CA, js jetstream.JetStream, ids *admission.Identities) (_ *security, err error) {
	sec := &security{ca: ca}
	defer func() {
		if err != nil {
			sec.close(context.Background())
		}
	}()
	if sec.users, err = authn.OpenUsers(ctx, js, "", cfg.Clock); err != nil {
		return nil, err
	}
	sec.adminFile = cfg.AdminPasswordFile
	if sec.adminFile == "" {
		sec.adminFile = filepath.Join(cfg.DataDir, authn.AdminPasswordFile)
	}
	ensure := func(ctx context.Context) (bool, error) {
		return authn.EnsureAdmin(ctx, sec.users, authn.AdminConfig{DataDir: cfg.DataDir, PasswordFile: cfg.AdminPasswordFile, Cost: cfg.BcryptCost})
	}
	created, err := retryIfReplicated(ctx, cfg.replicas(), ensure)
	if err != nil {
		return nil, fmt.Errorf("controlplane: admin user: %w", err)
	}
	if created {
		cfg.Logger.Info("created the admin user", "user", authn.DefaultAdminUser, "passwordFile", sec.adminFile)
	}
	if sec.tokens, err = authn.OpenTokens(ctx, authn.TokensConfig{JS: js, TTL: cfg.TokenTTL, Clock: cfg.Clock, Logger: cfg.Logger}); err != nil {
		return nil, fmt.Errorf("controlplane: tokens: %w", err)
	}
	if sec.rbacStore, err = rbac.OpenStore(ctx, js, ""); err != nil {
		return nil, fmt.Errorf("controlplane: RBAC: %w", err)
	}
	sec.authz = rbac.NewAuthorizer()
	if err := sec.rbacStore.Follow(runCtx, sec.authz, cfg.Logger); err != nil {
		return nil, fmt.Errorf("controlplane: RBAC: %w", err)
	}
	if sec.admTokens, err = admission.OpenStore(ctx, js, "", cfg.Clock); err != nil {
		return nil, fmt.Errorf("controlplane: bootstrap tokens: %w", err)
	}
	if sec.admitter, err = admission.NewAdmitter(sec.admTokens, ca, cfg.CertTTL); err != nil {
		return nil, fmt.Errorf("controlplane: admission: %w", err)
	}
	sec.admitter.RecordIdentities(ids)
	sec.auditIdx = cfg.AuditIndex
	if sec.auditIdx == nil {
		b, err := search.OpenBleve(filepath.Join(cfg.DataDir, filepath.FromSlash(AuditIndexDir)))
		if err != nil {
			return nil, fmt.Errorf("controlplane: audit index: %w", err)
		}
		sec.auditIdx, sec.ownsIdx = b, true
	}
	sink := audit.NewSearchStore(sec.auditIdx)
	if cfg.AuditMode == audit.ModeBounded {
		var rec *audit.Recorder
		if rec, err = audit.NewRecorder(audit.RecorderConfig{Sink: sink, Buffer: cfg.AuditQueue, Logger: cfg.Logger}); err == nil {
			sec.recorder = rec
		}
	} else {
		var j *audit.Journal
		if j, err = audit.OpenJournal(ctx, audit.JournalConfig{JS: js, Sink: sink, Logger: cfg.Logger, Replicas: cfg.replicas()}); err == nil {
			sec.recorder = j
		}
	}
	if err != nil {
		return nil, fmt.Errorf("controlplane: audit: %w", err)
	}
	if cfg.TLSCertFile != "" {
		sec.apiTLS, err = pki.LoadServerTLSConfig(cfg.TLSCertFile, cfg.TLSKeyFile)
	} else {
		sec.apiTLS, err = ca.ServerTLSConfig(cfg.TLSHosts, 0, false)
	}
	if err != nil {
		return nil, fmt.Errorf("controlplane: API TLS: %w", err)
	}
	return sec, nil
}

// register exports the audit trail's counters, so that records the search backend could not
// take in time (dropped from the full queue) are seen.
func (sec *security) register(reg prometheus.Registerer) error {
	for _, c := range []struct {
		name, help string
		get        func(audit.Stats) uint64
	}{
		{"dsnscale_audit_records_total", "API calls recorded for the audit trail (durable mode: stored in the stream).", func(s audit.Stats) uint64 { return s.Recorded }},
		{"dsnscale_audit_records_dropped_total", "Audit records dropped because the queue to the search backend was full.", func(s audit.Stats) uint64 { return s.Dropped }},
		{"dsnscale_audit_records_written_total", "Audit records written to the search backend (durable mode: indexed from the stream).", func(s audit.Stats) uint64 { return s.Written }},
		{"dsnscale_audit_records_failed_total", "Audit records lost: in bounded mode, in failed writes to the search backend; in durable mode, not stored (their calls were answered 503).", func(s audit.Stats) uint64 { return s.Failed }},
	} {
		get := c.get
		if err := reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help},
			func() float64 { return float64(get(sec.recorder.Stats())) })); err != nil {
			return fmt.Errorf("controlplane: audit metrics: %w", err)
		}
	}
	return nil
}

// close stops the background parts and flushes the audit records still queued.
func (sec *security) close(ctx context.Context) {
	if sec.recorder != nil {
		_ = sec.recorder.Close(ctx)
	}
	if sec.tokens != nil {
		sec.tokens.Close()
	}
	if sec.ownsIdx && sec.auditIdx != nil {
		_ = sec.auditIdx.Close()
	}
}

// handler puts the security routes and middleware in front of the API:
//
//	audit -> body limit -> rate limit by source -> authentication -> rate limit by user ->
//	RBAC -> routes
//
// so that refusals at every stage are audited and an unauthenticated flood is held to its
// source's share before any token is checked.
func (sec *security) handler(cfg Config, intent store.Store, apiHandler http.Handler) (http.Handler, error) {
	mux := newRouter()
	mux.Handle(pathLogin, authn.LoginHandler(&authn.LocalProvider{Users: sec.users, Cost: cfg.BcryptCost}, sec.tokens,
		authn.LoginOptions{OnResult: audit.LoginHook, Logger: cfg.Logger}))
	mux.Handle(pathLogout, authn.LogoutHandler(sec.tokens))
	mux.Handle(admission.AdmitPath, admission.AdmitHandler(sec.admitter))
	for prefix, h := range map[string]http.Handler{
		rbac.APIPrefix + "/roles":        rbac.Handler(sec.rbacStore),
		rbac.APIPrefix + "/rolebindings": rbac.Handler(sec.rbacStore),
		rbac.APIPrefix + "/users":        authn.UsersHandler(sec.users, sec.tokens, authn.UsersOptions{Cost: cfg.BcryptCost}),
		rbac.APIPrefix + "/bootstraptokens": admission.Handler(sec.admTokens, admission.HandlerOptions{
			Clock: cfg.Clock,
			TenantExists: func(ctx context.Context, tenant string) (bool, error) {
				_, err := intent.Get(ctx, model.Key{Kind: model.KindTenant, Name: tenant})
				if errors.Is(err, store.ErrNotFound) {
					return false, nil
				}
				return err == nil, err
			},
		}),
	} {
		mux.Handle(prefix, h)
		mux.Handle(prefix+"/", h)
	}
	mux.Handle(rbac.APIPrefix+"/audit", audit.Handler(audit.NewSearchStore(sec.auditIdx)))
	mux.fallback = apiHandler

	h := rbac.Middleware(sec.authz, rbac.Options{OnDecision: audit.RBACHook})(http.Handler(mux))
	userLimits, sourceLimits := cfg.RateLimits.limiters(cfg.Clock)
	if !cfg.RateLimits.Off {
		users, err := ratelimit.New(userLimits)
		if err != nil {
			return nil, fmt.Errorf("controlplane: user rate limit: %w", err)
		}
		h = ratelimit.Middleware(users, authn.UserOf, ratelimit.MiddlewareOptions{})(h)
	}
	public := authn.PublicPaths(append(append([]string(nil), rbac.PublicAPIPaths...), "/healthz", "/readyz")...)
	h = authn.Middleware(sec.tokens, authn.MiddlewareOptions{Public: public, OnResult: audit.AuthnHook, Logger: cfg.Logger})(h)
	if !cfg.RateLimits.Off {
		sources, err := ratelimit.New(sourceLimits)
		if err != nil {
			return nil, fmt.Errorf("controlplane: source rate limit: %w", err)
		}
		h = ratelimit.Middleware(sources, ratelimit.SourceKey, ratelimit.MiddlewareOptions{})(h)
	}
	h = ratelimit.LimitBody(cfg.MaxBodyBytes)(h)
	h = audit.Middleware(sec.recorder, audit.MiddlewareOptions{
		Skip: func(r *http.Request) bool {
			return r.URL.Path == "/healthz" || r.URL.Path == "/readyz" || r.URL.Path == "/metrics"
		},
		Source:  sourceHost,
		Clock:   cfg.Clock,
		Context: func(ctx context.Context) context.Context { return rbac.WithSlot(authn.WithSlot(ctx)) },
	})(h)
	return h, nil
}

// router sends the security routes' requests to their handlers and every other request to the
// API. It is a ServeMux with a fallback: the API has its own, and matching every API call
// against both would cost each call a second routing.
type router struct {
	mux      *http.ServeMux
	exact    map[string]bool // patterns that match one path
	prefixes []string        // patterns that end in a slash: a subtree
	fallback http.Handler
}

func newRouter() *router { return &router{mux: http.NewServeMux(), exact: map[string]bool{}} }

// Handle routes pattern, a path or a subtree ending in a slash, to h.
func (rt *router) Handle(pattern string, h http.Handler) {
	rt.mux.Handle(pattern, h)
	if strings.HasSuffix(pattern, "/") {
		rt.prefixes = append(rt.prefixes, pattern)
	} else {
		rt.exact[pattern] = true
	}
}

func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if rt.exact[p] || slices.ContainsFunc(rt.prefixes, func(prefix string) bool { return strings.HasPrefix(p, prefix) }) {
		rt.mux.ServeHTTP(w, r)
		return
	}
	rt.fallback.ServeHTTP(w, r)
}

// sourceHost is the address a request came from, without its port.
func sourceHost(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

// renewals answers DSNs' certificate renewals on their own subjects: since a DSN may publish
// only under its own id, the subject names who asks.
func (sec *security) renewals(nc *nats.Conn, log *slog.Logger) (*nats.Subscription, error) {
	return nc.QueueSubscribe(wire.AllRenewals, wire.QueueGroup, func(msg *nats.Msg) {
		if msg.Reply == "" {
			return
		}
		answer := func(res wire.RenewResponse) {
			if b, err := json.Marshal(res); err == nil {
				_ = msg.Respond(b)
			}
		}
		var req wire.RenewRequest
		if err := wire.Unmarshal(msg.Data, &req); err != nil {
			answer(wire.RenewResponse{Error: err.Error()})
			return
		}
		id, ok := wire.DSNFromSubject(msg.Subject)
		if !ok || id != req.DSN {
			answer(wire.RenewResponse{Error: fmt.Sprintf("dsn: %q is not the id of the subject %s", req.DSN, msg.Subject)})
			return
		}
		certPEM, err := sec.admitter.Renew(context.Background(), id, []byte(req.CSR))
		if err != nil {
			log.Debug("renewal refused", "dsn", id, "err", err)
			answer(wire.RenewResponse{Error: err.Error()})
			return
		}
		cert, err := pki.ParseCertificatePEM(certPEM)
		if err != nil {
			answer(wire.RenewResponse{Error: err.Error()})
			return
		}
		answer(wire.RenewResponse{Certificate: string(certPEM), NotAfter: cert.NotAfter.UTC()})
	})
}

// decommissioning is the Fleet the API serves with security on: decommissioning a DSN also
// revokes its identity, so that it is refused when it reconnects, and closes its connections.
type decommissioning struct {
	api.Fleet
	ca  *pki.CA
	ids *admission.Identities
	bus *natsserver.Server // nil with an external NATS
	log *slog.Logger
}

func (f decommissioning) Decommission(ctx context.Context, id string) error {
	if err := f.ca.RevokeIdentity(id, "decommissioned"); err != nil {
		return fmt.Errorf("revoking the identity of %s: %w", id, err)
	}
	if err := f.ids.Delete(ctx, id); err != nil {
		return fmt.Errorf("forgetting the identity of %s: %w", id, err)
	}
	if f.bus != nil {
		if _, err := natsauth.Disconnect(f.bus.Server, pki.Identity{Name: id, Role: pki.RoleDSN}); err != nil {
			f.log.Warn("decommissioned DSN not disconnected", "dsn", id, "err", err)
		}
	}
	return f.Fleet.Decommission(ctx, id)
}

// SetLabels changes a DSN's labels where they are authoritative: its admission record first
// (a DSN admitted through a token), then the distributor's registry.
func (f decommissioning) SetLabels(ctx context.Context, id string, labels map[string]string) (*model.Object, error) {
	rl, ok := f.Fleet.(api.Relabeler)
	if !ok {
		return nil, errors.New("the fleet does not change DSN labels")
	}
	if _, err := f.Fleet.DSN(ctx, id); err != nil {
		return nil, err
	}
	if _, err := f.ids.SetLabels(ctx, id, labels); err != nil && !errors.Is(err, admission.ErrNoIdentity) {
		return nil, fmt.Errorf("recording the labels of %s: %w", id, err)
	}
	return rl.SetLabels(ctx, id, labels)
}

// admittedIdentities gives the distributor the tenant and labels admission recorded, from a
// watched view of the bucket.
type admittedIdentities struct{ view *admission.IdentityView }

func (a admittedIdentities) Mark() uint64 { return a.view.Mark() }

func (a admittedIdentities) Admitted(ctx context.Context, dsn string, mark uint64) (distrib.Identity, bool, error) {
	rec, ok, err := a.view.Get(ctx, dsn, mark)
	if err != nil || !ok {
		return distrib.Identity{}, false, err
	}
	return distrib.Identity{Tenant: rec.Tenant, Labels: rec.Labels}, true, nil
}

// readAdminPassword reads the admin password from its file.
func readAdminPassword(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("controlplane: admin password: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}
