package securitytest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane"
	"github.com/dsnscale/dsnscale/controlplane/agent"
	"github.com/dsnscale/dsnscale/controlplane/client"
	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/pki"
	"github.com/dsnscale/dsnscale/controlplane/wire"
)

// TestAttacks runs the attack table against one control plane. The attacks run in order: the
// last one moves the control plane's clock.
func TestAttacks(t *testing.T) {
	clk := &clock{t: time.Now()}
	e := start(t, clk, controlplane.RateLimits{})
	ctx := e.ctx()

	// Two tenants with a network each; a viewer who may read networks of acme only.
	for _, o := range []*model.Object{obj(model.KindTenant, "", "acme", model.TenantSpec{}), obj(model.KindTenant, "", "globex", model.TenantSpec{}),
		network("acme", "web", 10), network("globex", "secret", 11)} {
		_, err := e.admin.Create(ctx, o)
		require.NoError(t, err)
	}
	viewer := e.user("viewer", []string{"get", "list", "watch"}, []string{"Network", "Tenant"}, []string{"acme"})
	e.waitAuthorized(viewer, "/api/v1/tenants/acme/networks/web")

	attacks := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"no token", func(t *testing.T) {
			for _, path := range []string{"/api/v1/tenants", "/api/v1/tenants/acme/networks/web", "/api/v1/audit", "/metrics", "/api/v1/users"} {
				code, body := e.call("GET", path, "", nil)
				assert.Equal(t, http.StatusUnauthorized, code, "%s: %s", path, body)
			}
			code, _ := e.call("POST", "/api/v1/tenants", "", []byte(`{"apiVersion":"dsnscale/v1","kind":"Tenant","metadata":{"name":"evil"},"spec":{}}`))
			assert.Equal(t, http.StatusUnauthorized, code)
			code, _ = e.call("GET", "/api/v1/tenants", "", nil, "Authorization", "Basic YWRtaW46YWRtaW4=")
			assert.Equal(t, http.StatusUnauthorized, code)
		}},
		{"revoked token", func(t *testing.T) {
			tok := e.user("leaver", []string{"get"}, []string{"Network"}, []string{"acme"})
			e.waitAuthorized(tok, "/api/v1/tenants/acme/networks/web")
			code, _ := e.call("POST", "/api/v1/logout", tok, nil)
			require.Equal(t, http.StatusNoContent, code)
			code, body := e.call("GET", "/api/v1/tenants/acme/networks/web", tok, nil)
			assert.Equal(t, http.StatusUnauthorized, code, body)
			assert.Contains(t, body, "revoked")
		}},
		{"token signed by another key", func(t *testing.T) {
			kid, claims := parts(t, viewer)
			_, stranger, err := ed25519.GenerateKey(rand.Reader)
			require.NoError(t, err)
			forged := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims(claims))
			forged.Header["kid"] = kid
			s, err := forged.SignedString(stranger)
			require.NoError(t, err)
			code, body := e.call("GET", "/api/v1/tenants/acme/networks/web", s, nil)
			assert.Equal(t, http.StatusUnauthorized, code, body)
			// The claims of an admin, signed by the stranger: no more luck.
			claims["sub"], claims["groups"] = "admin", []string{"admins"}
			forged = jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims(claims))
			forged.Header["kid"] = kid
			s, err = forged.SignedString(stranger)
			require.NoError(t, err)
			code, _ = e.call("GET", "/api/v1/tenants/globex/networks/secret", s, nil)
			assert.Equal(t, http.StatusUnauthorized, code)
		}},
		{"alg none", func(t *testing.T) {
			kid, claims := parts(t, viewer)
			claims["sub"], claims["groups"] = "admin", []string{"admins"}
			for _, alg := range []string{"none", "None", "NONE"} {
				tok := b64(t, map[string]string{"alg": alg, "typ": "JWT", "kid": kid}) + "." + b64(t, claims) + "."
				code, body := e.call("GET", "/api/v1/tenants/globex/networks/secret", tok, nil)
				assert.Equal(t, http.StatusUnauthorized, code, "alg %s: %s", alg, body)
			}
		}},
		{"wrong role", func(t *testing.T) {
			code, body := e.call("POST", "/api/v1/tenants/acme/networks", viewer, mustJSON(t, network("acme", "rogue", 12)))
			assert.Equal(t, http.StatusForbidden, code, body)
			code, _ = e.call("DELETE", "/api/v1/tenants/acme/networks/web", viewer, nil)
			assert.Equal(t, http.StatusForbidden, code)
			// Only an admin changes RBAC objects and users: no self-promotion.
			code, _ = e.call("PUT", "/api/v1/rolebindings/viewer-binding", viewer,
				[]byte(`{"name":"viewer-binding","role":"admin","subjects":[{"kind":"User","name":"viewer"}]}`))
			assert.Equal(t, http.StatusForbidden, code)
			code, _ = e.call("PUT", "/api/v1/users/viewer", viewer, []byte(`{"groups":["admins"]}`))
			assert.Equal(t, http.StatusForbidden, code)
			code, _ = e.call("POST", "/api/v1/bootstraptokens", viewer, []byte(`{"role":"gateway"}`))
			assert.Equal(t, http.StatusForbidden, code)
			code, _ = e.call("GET", "/api/v1/audit", viewer, nil)
			assert.Equal(t, http.StatusForbidden, code)
			code, _ = e.call("DELETE", "/api/v1/dsns/anything", viewer, nil)
			assert.Equal(t, http.StatusForbidden, code)
			// The denial is in the audit trail, with who and why.
			require.Eventually(t, func() bool {
				res, err := e.admin.Audit(ctx, url.Values{"user": {"viewer"}, "verdict": {"denied"}})
				if err != nil {
					return false
				}
				for _, r := range res.Items {
					if r.Method == "POST" && r.Path == "/api/v1/tenants/acme/networks" && r.Status == http.StatusForbidden && r.Reason != "" && r.Source != "" {
						return true
					}
				}
				return false
			}, 10*time.Second, 100*time.Millisecond, "the denied call is not in the audit trail")
		}},
		{"another tenant's objects through get, list and watch", func(t *testing.T) {
			code, body := e.call("GET", "/api/v1/tenants/globex/networks/secret", viewer, nil)
			assert.Equal(t, http.StatusForbidden, code, body)
			code, _ = e.call("GET", "/api/v1/tenants/globex/networks", viewer, nil)
			assert.Equal(t, http.StatusForbidden, code)
			code, _ = e.call("GET", "/api/v1/tenants/globex", viewer, nil)
			assert.Equal(t, http.StatusForbidden, code)
			code, body = e.call("GET", "/api/v1/networks", viewer, nil)
			require.Equal(t, http.StatusOK, code, body)
			assert.Contains(t, body, `"web"`)
			assert.NotContains(t, body, "secret")
			assert.NotContains(t, body, "globex")
			code, body = e.call("GET", "/api/v1/tenants", viewer, nil)
			require.Equal(t, http.StatusOK, code, body)
			assert.Contains(t, body, "acme")
			assert.NotContains(t, body, "globex")
			// A transaction that touches the other tenant is refused as a whole.
			tx := map[string]any{"operations": []map[string]any{{"op": "create", "object": network("globex", "sneak", 13)}}}
			code, body = e.call("POST", "/api/v1/transactions", viewer, mustJSON(t, tx))
			assert.Equal(t, http.StatusForbidden, code, body)

			// A watch across tenants carries acme's changes only.
			vc := client.New(e.srv.APIURL(), e.hc, client.WithToken(viewer))
			w, err := vc.Watch(ctx, client.WatchOptions{FromNow: true})
			require.NoError(t, err)
			defer w.Close()
			_, err = e.admin.Create(ctx, network("globex", "secret2", 14))
			require.NoError(t, err)
			_, err = e.admin.Create(ctx, network("acme", "web2", 15))
			require.NoError(t, err)
			ev, err := w.Next()
			require.NoError(t, err)
			assert.Equal(t, "web2", ev.Object.Metadata.Name, "the first event the viewer sees is acme's")
			// A watch of the other tenant is refused outright.
			_, err = vc.Watch(ctx, client.WatchOptions{FromNow: true, Kind: model.KindNetwork, Tenant: "globex"})
			assert.Equal(t, http.StatusForbidden, client.StatusCode(err))
		}},
		{"a DSN publishing on another DSN's subject", func(t *testing.T) {
			a, b := e.admit("dsn-a"), e.admit("dsn-b")
			va, vb := &violations{}, &violations{}
			nca, err := e.connect(a, va)
			require.NoError(t, err)
			ncb, err := e.connect(b, vb)
			require.NoError(t, err)
			pushesB := make(chan *nats.Msg, 8)
			_, err = ncb.ChanSubscribe(wire.PushSubject("dsn-b"), pushesB)
			require.NoError(t, err)
			require.NoError(t, ncb.Flush())

			require.NoError(t, nca.Publish(wire.AckSubject("dsn-b"), []byte(`{"dsn":"dsn-b","sessionID":"x","revision":1}`)))
			va.waitFor(t, `Permissions Violation for Publish to "dsn.v1.dsn.dsn-b.ack"`)
			require.NoError(t, nca.Publish(wire.PushSubject("dsn-b"), []byte(`{"type":"rehello"}`)))
			va.waitFor(t, `Permissions Violation for Publish to "dsn.v1.dsn.dsn-b.push"`)
			_, err = nca.Request(wire.HelloSubject("dsn-b"), []byte(`{}`), time.Second)
			assert.Error(t, err)
			va.waitFor(t, `Permissions Violation for Publish to "dsn.v1.dsn.dsn-b.hello"`)
			_, err = nca.SubscribeSync(wire.PushSubject("dsn-b"))
			require.NoError(t, err)
			va.waitFor(t, `Permissions Violation for Subscription to "dsn.v1.dsn.dsn-b.push"`)
			// Claiming dsn-b's id on its own hello subject gets a rejection, not a session.
			msg, err := nca.Request(wire.HelloSubject("dsn-a"), mustJSON(t, wire.Hello{Protocol: wire.Version, DSN: "dsn-b"}), 5*time.Second)
			require.NoError(t, err)
			var adm wire.Admission
			require.NoError(t, json.Unmarshal(msg.Data, &adm))
			assert.Equal(t, wire.Rejected, adm.Status)
			// Renewing into dsn-b's identity is refused too.
			csr, err := pki.NewCSR(mustKey(t), "dsn-b")
			require.NoError(t, err)
			msg, err = nca.Request(wire.RenewSubject("dsn-a"), mustJSON(t, wire.RenewRequest{DSN: "dsn-a", CSR: string(csr)}), 5*time.Second)
			require.NoError(t, err)
			var rr wire.RenewResponse
			require.NoError(t, json.Unmarshal(msg.Data, &rr))
			assert.Empty(t, rr.Certificate)
			assert.NotEmpty(t, rr.Error)
			select {
			case m := <-pushesB:
				t.Fatalf("dsn-b got a forged push: %s", m.Data)
			case <-time.After(100 * time.Millisecond):
			}
			// Its own renewal works, and the new certificate connects.
			require.NoError(t, a.Renew(ctx, nca))
			_, err = e.connect(a, &violations{})
			require.NoError(t, err)
		}},
		{"a connection without a certificate", func(t *testing.T) {
			tc, err := client.TLSConfig(e.caPEM)
			require.NoError(t, err)
			_, err = nats.Connect(e.srv.NATSURL(), nats.Secure(tc), nats.Timeout(3*time.Second))
			assert.Error(t, err)
			_, err = nats.Connect(strings.Replace(e.srv.NATSURL(), "tls://", "nats://", 1), nats.Timeout(3*time.Second))
			assert.Error(t, err, "plain text is refused")
		}},
		{"a DSN with a revoked certificate", func(t *testing.T) {
			c := e.admit("dsn-c")
			closed := make(chan struct{})
			nc, err := e.connect(c, &violations{}, nats.NoReconnect(), nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
			require.NoError(t, err)
			msg, err := nc.Request(wire.HelloSubject("dsn-c"), mustJSON(t, wire.Hello{Protocol: wire.Version, DSN: "dsn-c"}), 5*time.Second)
			require.NoError(t, err)
			var adm wire.Admission
			require.NoError(t, json.Unmarshal(msg.Data, &adm))
			require.Equal(t, wire.Admitted, adm.Status, adm.Reason)

			_, err = e.admin.Decommission(ctx, "dsn-c")
			require.NoError(t, err)
			select {
			case <-closed:
			case <-time.After(5 * time.Second):
				t.Fatal("the decommissioned DSN is still connected")
			}
			_, err = e.connect(c, &violations{}, nats.NoReconnect())
			assert.Error(t, err, "a revoked certificate is refused")
		}},
		{"a CSR for someone else's identity", func(t *testing.T) {
			anon := client.New(e.srv.APIURL(), e.hc)
			admit := func(token, dsn string, csr []byte) int {
				_, err := anon.Admit(ctx, client.AdmitRequest{Token: token, DSN: dsn, CSR: string(csr)})
				return client.StatusCode(err)
			}
			key := mustKey(t)
			forE, err := pki.NewCSR(key, "dsn-e")
			require.NoError(t, err)
			tok := e.dsnToken(client.BootstrapTokenSpec{Tenant: "acme", DSN: "dsn-d"})
			assert.Equal(t, http.StatusUnprocessableEntity, admit(tok, "dsn-d", forE), "a CSR naming dsn-e for dsn-d")
			assert.Equal(t, http.StatusUnauthorized, admit(tok, "dsn-e", forE), "a token for dsn-d admitting dsn-e")
			gw, err := pki.NewCSRFor(key, pki.Identity{Name: "dsn-d", Role: pki.RoleGateway})
			require.NoError(t, err)
			assert.Equal(t, http.StatusUnprocessableEntity, admit(tok, "dsn-d", gw), "a gateway CSR with a DSN token")
			cp, err := pki.NewCSRFor(key, pki.Identity{Name: "dsn-d", Role: pki.RoleControlPlane})
			require.NoError(t, err)
			assert.Equal(t, http.StatusUnprocessableEntity, admit(tok, "dsn-d", cp), "a control-plane CSR")
			// The refusals spent nothing: the token still admits dsn-d.
			forD, err := pki.NewCSR(key, "dsn-d")
			require.NoError(t, err)
			assert.Equal(t, 0, admit(tok, "dsn-d", forD))
		}},
		{"a replayed single-use bootstrap token", func(t *testing.T) {
			anon := client.New(e.srv.APIURL(), e.hc)
			tok := e.dsnToken(client.BootstrapTokenSpec{Tenant: "acme"})
			first, err := agent.Admit(ctx, anon, tok, "dsn-f", pki.RoleDSN, nil)
			require.NoError(t, err)
			require.Equal(t, "dsn-f", first.Name())
			_, err = agent.Admit(ctx, anon, tok, "dsn-g", pki.RoleDSN, nil)
			assert.Equal(t, http.StatusUnauthorized, client.StatusCode(err), "%v", err)
			_, err = agent.Admit(ctx, anon, tok, "dsn-f", pki.RoleDSN, nil)
			assert.Equal(t, http.StatusUnauthorized, client.StatusCode(err))
			// A revoked multi-use token admits no one.
			multi, err := e.admin.CreateBootstrapToken(ctx, client.BootstrapTokenSpec{Tenant: "acme", Uses: 10})
			require.NoError(t, err)
			_, err = e.admin.RevokeBootstrapToken(ctx, multi.Token.ID)
			require.NoError(t, err)
			_, err = agent.Admit(ctx, anon, multi.Secret, "dsn-h", pki.RoleDSN, nil)
			assert.Equal(t, http.StatusUnauthorized, client.StatusCode(err))
		}},
		{"an oversized body or header", func(t *testing.T) {
			admin, err := e.admin.Token(ctx)
			require.NoError(t, err)
			huge := []byte(`{"apiVersion":"dsnscale/v1","kind":"Tenant","metadata":{"name":"big"},"spec":{"displayName":"` +
				strings.Repeat("x", 128<<10) + `"}}`)
			code, _ := e.call("POST", "/api/v1/tenants", admin, huge)
			assert.Equal(t, http.StatusRequestEntityTooLarge, code)
			code, _ = e.call("POST", "/api/v1/admission", "", huge)
			assert.Equal(t, http.StatusRequestEntityTooLarge, code)
			code, _ = e.call("POST", "/api/v1/login", "", huge)
			assert.Equal(t, http.StatusRequestEntityTooLarge, code)
			code, _ = e.call("GET", "/api/v1/tenants", admin, nil, "X-Padding", strings.Repeat("y", 128<<10))
			assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, code)
			_, err = e.admin.Get(ctx, model.Key{Kind: model.KindTenant, Name: "big"})
			assert.True(t, client.IsNotFound(err), "nothing was created")
		}},
		{"expired token", func(t *testing.T) {
			tok := e.user("sleeper", []string{"get"}, []string{"Network"}, []string{"acme"})
			e.waitAuthorized(tok, "/api/v1/tenants/acme/networks/web")
			clk.Add(16 * time.Minute)
			code, body := e.call("GET", "/api/v1/tenants/acme/networks/web", tok, nil)
			assert.Equal(t, http.StatusUnauthorized, code, body)
			assert.Contains(t, body, "expired")
			// The admin's client logs in again by itself.
			_, err := e.admin.Get(ctx, model.Key{Kind: model.KindTenant, Name: "acme"})
			require.NoError(t, err)
		}},
	}
	for _, a := range attacks {
		t.Run(a.name, a.run)
	}
}

// TestFloodFromOneUser checks that one user's flood is refused with 429 and Retry-After while
// another user's requests still succeed, on the same source address.
func TestFloodFromOneUser(t *testing.T) {
	e := start(t, nil, controlplane.RateLimits{SourceRate: 1e5, UserRate: 40, UserBurst: 40})
	ctx := e.ctx()
	_, err := e.admin.Create(ctx, obj(model.KindTenant, "", "acme", model.TenantSpec{}))
	require.NoError(t, err)
	flooder := e.user("flooder", []string{"get", "list"}, []string{"Tenant"}, []string{"acme"})
	quiet := e.user("quiet", []string{"get", "list"}, []string{"Tenant"}, []string{"acme"})
	e.waitAuthorized(flooder, "/api/v1/tenants/acme")
	e.waitAuthorized(quiet, "/api/v1/tenants/acme")

	var limited, ok atomic.Int64
	var retryAfter atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", e.srv.APIURL()+"/api/v1/tenants/acme", nil)
				req.Header.Set("Authorization", "Bearer "+flooder)
				resp, err := e.hc.Do(req)
				if err != nil {
					continue
				}
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusTooManyRequests:
					limited.Add(1)
					retryAfter.Store(resp.Header.Get("Retry-After"))
				case http.StatusOK:
					ok.Add(1)
				}
			}
		}()
	}
	require.Eventually(t, func() bool { return limited.Load() > 50 }, 10*time.Second, 10*time.Millisecond, "the flood is never limited")
	// The quiet user's requests, paced as a person's, all succeed during the flood.
	for i := range 10 {
		code, body := e.call("GET", "/api/v1/tenants/acme", quiet, nil)
		require.Equal(t, http.StatusOK, code, "request %d of the quiet user: %s", i, body)
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	assert.NotEmpty(t, retryAfter.Load(), "429 answers carry Retry-After")
	t.Logf("flood: %d served, %d limited", ok.Load(), limited.Load())
}

// parts returns a token's kid and claims, undecoded-signature.
func parts(t *testing.T, token string) (string, map[string]any) {
	t.Helper()
	claims := jwt.MapClaims{}
	tok, _, err := jwt.NewParser().ParseUnverified(token, claims)
	require.NoError(t, err)
	kid, _ := tok.Header["kid"].(string)
	return kid, claims
}

func b64(t *testing.T, v any) string {
	t.Helper()
	return base64.RawURLEncoding.EncodeToString(mustJSON(t, v))
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

func mustKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return k
}
