package securitytest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane"
	"github.com/dsnscale/dsnscale/controlplane/agent"
	"github.com/dsnscale/dsnscale/controlplane/client"
	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/pki"
)

// clock is the control plane's clock, moved by the tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is a real control plane with security on: TLS API, JWT, RBAC, audit, rate limits, and
// an embedded NATS bus with mutual TLS and per-identity permissions.
type env struct {
	t     *testing.T
	srv   *controlplane.Server
	clk   *clock
	caPEM []byte
	hc    *http.Client
	admin *client.Client
}

// start runs a control plane; limits, if not zero, are its rate limits (otherwise none that a
// test would reach).
func start(t *testing.T, clk *clock, limits controlplane.RateLimits, tune ...func(*controlplane.Config)) *env {
	t.Helper()
	if limits == (controlplane.RateLimits{}) {
		limits = controlplane.RateLimits{SourceRate: 1e6, UserRate: 1e6, TotalRate: 1e6}
	}
	cfg := controlplane.Config{
		DataDir:           t.TempDir(),
		HeartbeatInterval: time.Second,
		BcryptCost:        4,
		RateLimits:        limits,
		MaxBodyBytes:      64 << 10,
	}
	if clk != nil {
		cfg.Clock = clk.Now
	}
	for _, f := range tune {
		f(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := controlplane.Start(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(srv.Stop)
	require.NoError(t, srv.WaitReady(ctx))
	require.True(t, strings.HasPrefix(srv.APIURL(), "https://"), srv.APIURL())
	require.True(t, strings.HasPrefix(srv.NATSURL(), "tls://"), srv.NATSURL())

	e := &env{t: t, srv: srv, clk: clk, caPEM: srv.CAPEM()}
	e.hc, err = client.HTTPClient(e.caPEM, 10*time.Second)
	require.NoError(t, err)
	user, pw, err := srv.AdminCredentials()
	require.NoError(t, err)
	e.admin = client.New(srv.APIURL(), e.hc, client.WithCredentials(user, pw))
	return e
}

func (e *env) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	e.t.Cleanup(cancel)
	return ctx
}

// call sends a raw request with an optional bearer token and returns the status and body.
func (e *env) call(method, path, token string, body []byte, header ...string) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.APIURL()+path, bytes.NewReader(body))
	require.NoError(e.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := e.hc.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// user creates a user with a role over verbs on kinds in tenants and returns a token of it.
func (e *env) user(name string, verbs, kinds, tenants []string) string {
	e.t.Helper()
	ctx := e.ctx()
	pw := "password-of-" + name
	_, err := e.admin.CreateUser(ctx, client.UserSpec{Name: name, Password: pw})
	require.NoError(e.t, err)
	if len(verbs) > 0 {
		require.NoError(e.t, e.admin.PutRole(ctx, client.Role{Name: name + "-role", Rules: []client.Rule{{Verbs: verbs, Kinds: kinds, Tenants: tenants}}}))
		require.NoError(e.t, e.admin.PutRoleBinding(ctx, client.RoleBinding{Name: name + "-binding", Role: name + "-role",
			Subjects: []client.Subject{{Kind: "User", Name: name}}}))
	}
	res, err := e.admin.Login(ctx, name, pw)
	require.NoError(e.t, err)
	return res.Token
}

// waitAuthorized waits until the RBAC change just made reaches the authorizer: bindings follow
// the store asynchronously.
func (e *env) waitAuthorized(token, path string) {
	e.t.Helper()
	require.Eventually(e.t, func() bool {
		code, _ := e.call("GET", path, token, nil)
		return code == http.StatusOK
	}, 5*time.Second, 10*time.Millisecond, "GET %s never allowed", path)
}

func obj(kind model.Kind, tenant, name string, spec any) *model.Object {
	b, _ := json.Marshal(spec)
	return &model.Object{APIVersion: model.APIVersion, Kind: kind, Metadata: model.Metadata{Name: name, Tenant: tenant}, Spec: b}
}

func network(tenant, name string, vlan int) *model.Object {
	return obj(model.KindNetwork, tenant, name, model.NetworkSpec{CIDR: fmt.Sprintf("10.%d.0.0/24", vlan), VLAN: vlan})
}

// dsnToken creates a bootstrap token as the admin.
func (e *env) dsnToken(spec client.BootstrapTokenSpec) string {
	e.t.Helper()
	tok, err := e.admin.CreateBootstrapToken(e.ctx(), spec)
	require.NoError(e.t, err)
	return tok.Secret
}

// violations collects the asynchronous errors the bus sends a connection.
type violations struct {
	mu   sync.Mutex
	errs []string
}

func (v *violations) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.errs = append(v.errs, err.Error())
}

func (v *violations) waitFor(t *testing.T, substr string) {
	t.Helper()
	require.Eventually(t, func() bool {
		v.mu.Lock()
		defer v.mu.Unlock()
		for _, e := range v.errs {
			if strings.Contains(e, substr) {
				return true
			}
		}
		return false
	}, 5*time.Second, 10*time.Millisecond, "no bus error containing %q", substr)
}

// admit gives a DSN its identity through the API with a fresh single-use token for it.
func (e *env) admit(id string) *agent.Identity {
	e.t.Helper()
	secret := e.dsnToken(client.BootstrapTokenSpec{Tenant: "acme", DSN: id})
	ident, err := agent.Admit(e.ctx(), client.New(e.srv.APIURL(), e.hc), secret, id, pki.RoleDSN, nil)
	require.NoError(e.t, err)
	return ident
}

// connect opens a bus connection with an identity.
func (e *env) connect(ident *agent.Identity, v *violations, extra ...nats.Option) (*nats.Conn, error) {
	opts, err := ident.NATSOptions()
	require.NoError(e.t, err)
	opts = append(opts, nats.ErrorHandler(v.handler), nats.Timeout(5*time.Second))
	nc, err := nats.Connect(e.srv.NATSURL(), append(opts, extra...)...)
	if err == nil {
		e.t.Cleanup(nc.Close)
	}
	return nc, err
}
