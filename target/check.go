package target

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dsnscale/dsnscale/controlplane/agent"
	"github.com/dsnscale/dsnscale/controlplane/client"
	"github.com/dsnscale/dsnscale/controlplane/pki"
	"github.com/dsnscale/dsnscale/controlplane/wire"
)

// The pieces a preflight tries, in order; each needs the ones before it.
const (
	CheckAPI       = "api"       // TLS to the API with the CA, and the API answering
	CheckLogin     = "login"     // the credentials: a login, or the token, accepted
	CheckAdmission = "admission" // a test admission with the declared admission
	CheckBus       = "bus"       // a mutual-TLS bus connection with the admitted identity
	CheckBusPerms  = "bus-permissions"
)

// PreflightName is the identity a preflight admits and connects with. A DSN token admits a DSN
// of this name: one use of the token is spent on it.
const PreflightName = "dsnscale-preflight"

// Step is the outcome of one piece of a preflight.
type Step struct {
	Name string
	OK   bool
	// Detail says what was found: what worked, or exactly what failed and why.
	Detail string
	// Err is why it failed (it matches ErrCredentials when a credential file cannot be read).
	Err error
}

// Result is a preflight's outcome: the steps tried, the last one failed when it did not pass.
type Result struct {
	Steps []Step
}

// OK reports whether every piece passed.
func (r *Result) OK() bool { return r.Failed() == nil && len(r.Steps) == len(allChecks) }

// Failed is the step that failed, or nil.
func (r *Result) Failed() *Step {
	for i := range r.Steps {
		if !r.Steps[i].OK {
			return &r.Steps[i]
		}
	}
	return nil
}

// Write prints one line per step.
func (r *Result) Write(w io.Writer) {
	for _, s := range r.Steps {
		mark := "ok  "
		if !s.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "%s %-15s %s\n", mark, s.Name, s.Detail)
	}
}

var allChecks = []string{CheckAPI, CheckLogin, CheckAdmission, CheckBus, CheckBusPerms}

// CheckOptions configure a preflight.
type CheckOptions struct {
	// Timeout bounds each network step (default 10s).
	Timeout time.Duration
	// Now is the clock certificates are judged by (default time.Now).
	Now func() time.Time
}

// Check tries each piece of t in turn and stops at the first that fails. It changes nothing on the control plane but what a first DSN would: a test
// admission (one use of a bootstrap token, or, with issue: gateway, a one-use gateway token
// created for it).
func Check(ctx context.Context, t *Target, o CheckOptions) *Result {
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	r := &Result{}
	pass := func(name, format string, args ...any) {
		r.Steps = append(r.Steps, Step{Name: name, OK: true, Detail: fmt.Sprintf(format, args...)})
	}
	fail := func(name string, err error) *Result {
		r.Steps = append(r.Steps, Step{Name: name, Detail: err.Error(), Err: err})
		return r
	}
	step := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, timeout) }

	// The API, over TLS with the CA.
	hc, err := t.HTTPClient(timeout)
	if err != nil {
		return fail(CheckAPI, err)
	}
	anon := client.New(t.APIURL, hc, client.WithUserAgent("dsnscale-preflight"))
	sctx, cancel := step()
	err = anon.Healthy(sctx)
	cancel()
	if err != nil {
		return fail(CheckAPI, fmt.Errorf("%s: %s", t.APIURL, explainNet(err, t.CAFile)))
	}
	pass(CheckAPI, "%s answers; its certificate is signed by a CA in %s", t.APIURL, t.CAFile)

	// The credentials.
	api, detail, err := t.login(ctx, hc, timeout)
	if err != nil {
		return fail(CheckLogin, err)
	}
	pass(CheckLogin, "%s", detail)

	// Admission.
	sctx, cancel = step()
	id, detail, err := t.testAdmission(sctx, api, hc, o.Now)
	cancel()
	if err != nil {
		return fail(CheckAdmission, err)
	}
	pass(CheckAdmission, "%s", detail)

	// The bus, with mutual TLS as the admitted identity.
	opts, err := id.NATSOptions()
	if err != nil {
		return fail(CheckBus, err)
	}
	perms := make(chan error, 4)
	opts = append(opts, nats.Name(PreflightName), nats.Timeout(timeout), nats.NoReconnect(),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case perms <- err:
			default:
			}
		}))
	nc, err := nats.Connect(t.BusURL, opts...)
	if err != nil {
		return fail(CheckBus, fmt.Errorf("%s: %s", t.BusURL, explainBus(err)))
	}
	defer nc.Close()
	pass(CheckBus, "%s accepts %s %q over mutual TLS", t.BusURL, id.Role(), id.Name())

	// The subjects the identity must be allowed: its pushes and its inbox.
	dsn := id.Name()
	if id.Role() == pki.RoleGateway {
		dsn = PreflightName
	}
	subjects := []string{wire.PushSubject(dsn), agent.InboxPrefix(id.Name()) + ".>"}
	for _, s := range subjects {
		if _, err := nc.SubscribeSync(s); err != nil {
			return fail(CheckBusPerms, fmt.Errorf("subscribe %s: %w", s, err))
		}
	}
	sctx, cancel = step()
	err = nc.FlushWithContext(sctx)
	cancel()
	if err != nil {
		return fail(CheckBusPerms, fmt.Errorf("the bus did not answer after the subscriptions: %w", err))
	}
	// A refused subscription comes back as an error before the flush's answer; the handler
	// runs on the connection's own goroutine, so give it the time of a second round trip.
	sctx, cancel = step()
	_ = nc.FlushWithContext(sctx)
	cancel()
	select {
	case err := <-perms:
		return fail(CheckBusPerms, fmt.Errorf("the bus refused a subscription the protocol needs (%s): %w", strings.Join(subjects, ", "), err))
	default:
	}
	if err := nc.LastError(); err != nil {
		return fail(CheckBusPerms, err)
	}
	pass(CheckBusPerms, "may subscribe to %s", strings.Join(subjects, " and "))
	return r
}

// login tries the credentials and returns a client logged in with them.
func (t *Target) login(ctx context.Context, hc *http.Client, timeout time.Duration) (*client.Client, string, error) {
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch t.Credentials.Kind() {
	case "password":
		pw, err := t.Password()
		if err != nil {
			return nil, "", err
		}
		c := client.New(t.APIURL, hc, client.WithUserAgent("dsnscale-preflight"))
		res, err := c.Login(sctx, t.Credentials.User, pw)
		if err != nil {
			return nil, "", fmt.Errorf("POST /api/v1/login as %q: %s", t.Credentials.User, explainAPI(err,
				"the user or the password (credentials.passwordFile) is wrong"))
		}
		api := client.New(t.APIURL, hc, client.WithCredentials(t.Credentials.User, pw), client.WithUserAgent("dsnscale-preflight"))
		return api, fmt.Sprintf("logged in as %q (token valid until %s)", t.Credentials.User, res.ExpiresAt.UTC().Format(time.RFC3339)), nil
	case "token":
		tok, err := t.Token()
		if err != nil {
			return nil, "", err
		}
		api := client.New(t.APIURL, hc, client.WithToken(tok), client.WithUserAgent("dsnscale-preflight"))
		if _, err := api.Revision(sctx); err != nil {
			return nil, "", fmt.Errorf("the token in %s: %s", t.Credentials.TokenFile, explainAPI(err,
				"it is not accepted: expired, revoked or not a token of this control plane (get one with POST /api/v1/login)"))
		}
		return api, "the token is accepted", nil
	default:
		api := client.New(t.APIURL, hc, client.WithUserAgent("dsnscale-preflight"))
		if _, err := api.Revision(sctx); err != nil {
			return nil, "", fmt.Errorf("with the client certificate %s: %s", t.Credentials.ClientCertFile, explainAPI(err,
				"the API does not accept it"))
		}
		return api, "the client certificate is accepted", nil
	}
}

// testAdmission admits the preflight identity as the target's admission says, or loads the
// gateway identity it names.
func (t *Target) testAdmission(ctx context.Context, api *client.Client, hc *http.Client, now func() time.Time) (*agent.Identity, string, error) {
	a := t.Admission
	anon := client.New(t.APIURL, hc, client.WithUserAgent("dsnscale-preflight"))
	admit := func(field, token, role string) (*agent.Identity, string, error) {
		id, err := agent.Admit(ctx, anon, token, PreflightName, role, nil)
		if err != nil {
			return nil, "", fmt.Errorf("test admission of %q with %s: %s", PreflightName, field, explainAPI(err,
				"the bootstrap token is refused"))
		}
		return id, fmt.Sprintf("%s admitted %s %q (one use of the token spent)", field, role, PreflightName), nil
	}
	switch a.Mode() {
	case AdmitDSNToken:
		tok, err := client.ReadPasswordFile(a.BootstrapTokenFile)
		if err != nil {
			return nil, "", fmt.Errorf("%w: admission.bootstrapTokenFile: %w", ErrCredentials, err)
		}
		return admit("admission.bootstrapTokenFile", tok, pki.RoleDSN)
	case AdmitGatewayToken:
		tok, err := client.ReadPasswordFile(a.GatewayTokenFile)
		if err != nil {
			return nil, "", fmt.Errorf("%w: admission.gatewayTokenFile: %w", ErrCredentials, err)
		}
		return admit("admission.gatewayTokenFile", tok, pki.RoleGateway)
	case AdmitIssueGateway:
		tok, err := api.CreateBootstrapToken(ctx, client.BootstrapTokenSpec{Role: client.RoleGateway, Uses: 1,
			TTLSeconds: 300, Description: "dsnscale target check"})
		if err != nil {
			return nil, "", fmt.Errorf("issue: gateway: creating a gateway bootstrap token: %s", explainAPI(err,
				"the credentials may not create bootstrap tokens"))
		}
		return admit("an issued gateway token", tok.Secret, pki.RoleGateway)
	case AdmitGatewayIdentity:
		ca, err := t.CA()
		if err != nil {
			return nil, "", err
		}
		sec, err := t.FleetSecurity(ctx, api, "")
		if err != nil {
			return nil, "", err
		}
		id, err := agent.LoadIdentity([]byte(sec.GatewayCert), []byte(sec.GatewayKey), ca)
		if err != nil {
			return nil, "", fmt.Errorf("admission.gatewayCertFile: %w", err)
		}
		if id.Role() != pki.RoleGateway {
			return nil, "", fmt.Errorf("admission.gatewayCertFile: the certificate has role %q, want %q", id.Role(), pki.RoleGateway)
		}
		if now().After(id.NotAfter()) {
			return nil, "", fmt.Errorf("admission.gatewayCertFile: the certificate expired at %s", id.NotAfter().UTC().Format(time.RFC3339))
		}
		return id, fmt.Sprintf("gateway identity %q valid until %s", id.Name(), id.NotAfter().UTC().Format(time.RFC3339)), nil
	}
	return nil, "", fmt.Errorf("%w: admission: none declared", ErrInvalid)
}

// explainNet says why a connection to the API failed, in the user's terms.
func explainNet(err error, caFile string) string {
	var unknown x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &unknown):
		if caFile == "" {
			return fmt.Sprintf("TLS: the certificate is signed by a CA that is not trusted (%v)", err)
		}
		return fmt.Sprintf("TLS: the API's certificate is not signed by a CA in %s (%v)", caFile, err)
	case errors.As(err, &hostErr):
		return fmt.Sprintf("TLS: the API's certificate is not for this host (%v)", err)
	case errors.As(err, &invalid):
		return fmt.Sprintf("TLS: the API's certificate is not valid (%v)", err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("unreachable: nothing listens there (%v)", err)
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return fmt.Sprintf("unreachable: no answer in time (%v)", err)
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return fmt.Sprintf("the API speaks plain HTTP: use an http:// apiURL only for an insecure control plane (%v)", err)
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return fmt.Sprintf("unreachable: the host name does not resolve (%v)", err)
	}
	if code := client.StatusCode(err); code != 0 {
		return fmt.Sprintf("the health check answered HTTP %d (%v)", code, err)
	}
	return err.Error()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// explainAPI says what an API answer means: refused (401/403, with what, the control plane's
// own message) or the network failure.
func explainAPI(err error, refused string) string {
	switch code := client.StatusCode(err); code {
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Sprintf("%s (HTTP %d: %v)", refused, code, err)
	case 0:
		return explainNet(err, "")
	default:
		return fmt.Sprintf("HTTP %d: %v", code, err)
	}
}

// explainBus says why a bus connection failed.
func explainBus(err error) string {
	var unknown x509.UnknownAuthorityError
	switch {
	case errors.As(err, &unknown):
		return fmt.Sprintf("TLS: the bus's certificate is not signed by the CA (%v)", err)
	case errors.Is(err, nats.ErrNoServers), errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("unreachable: nothing answers there (%v)", err)
	case errors.Is(err, nats.ErrAuthorization), strings.Contains(strings.ToLower(err.Error()), "authorization"):
		return fmt.Sprintf("the bus refused the identity (%v)", err)
	case errors.Is(err, nats.ErrSecureConnWanted), errors.Is(err, nats.ErrSecureConnRequired):
		return fmt.Sprintf("TLS mismatch between busURL's scheme and the server (%v)", err)
	}
	if isTimeout(err) {
		return fmt.Sprintf("unreachable: no answer in time (%v)", err)
	}
	return err.Error()
}
