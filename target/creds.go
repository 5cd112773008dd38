package target

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/client"
	"github.com/dsnscale/dsnscale/simdsn/bus"
)

// ErrCredentials marks a credential file that cannot be read or used.
var ErrCredentials = errors.New("target: credentials")

// CA reads the CA file; nil when none is set.
func (t *Target) CA() ([]byte, error) {
	if t.CAFile == "" {
		return nil, nil
	}
	b, err := client.ReadCAFile(t.CAFile)
	if err != nil {
		return nil, fmt.Errorf("%w: caFile: %w", ErrCredentials, err)
	}
	return b, nil
}

// HTTPClient is an HTTP client for the API: it trusts the CAs of the CA file and nothing else,
// and presents the client certificate when there is one. timeout 0 means none.
func (t *Target) HTTPClient(timeout time.Duration) (*http.Client, error) {
	ca, err := t.CA()
	if err != nil {
		return nil, err
	}
	hc, err := client.HTTPClient(ca, timeout)
	if err != nil {
		return nil, fmt.Errorf("%w: caFile: %w", ErrCredentials, err)
	}
	if c := t.Credentials; c.ClientCertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.ClientCertFile, c.ClientKeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: credentials.clientCertFile: %w", ErrCredentials, err)
		}
		tr := hc.Transport.(*http.Transport)
		if tr.TLSClientConfig == nil {
			tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		tr.TLSClientConfig.Certificates = []tls.Certificate{cert}
	}
	return hc, nil
}

// Password reads the password file.
func (t *Target) Password() (string, error) {
	pw, err := client.ReadPasswordFile(t.Credentials.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("%w: credentials.passwordFile: %w", ErrCredentials, err)
	}
	return pw, nil
}

// Token reads the token file (again at each call, so that a rotated token is picked up); ""
// when the credentials are not a token.
func (t *Target) Token() (string, error) {
	if t.Credentials.TokenFile == "" {
		return "", nil
	}
	tok, err := client.ReadPasswordFile(t.Credentials.TokenFile)
	if err != nil {
		return "", fmt.Errorf("%w: credentials.tokenFile: %w", ErrCredentials, err)
	}
	return tok, nil
}

// ClientOptions are the northbound client options of the credentials: a login with the user
// and password (again when the token expires), or the token.
func (t *Target) ClientOptions() ([]client.Option, error) {
	switch t.Credentials.Kind() {
	case "password":
		pw, err := t.Password()
		if err != nil {
			return nil, err
		}
		return []client.Option{client.WithCredentials(t.Credentials.User, pw)}, nil
	case "token":
		tok, err := t.Token()
		if err != nil {
			return nil, err
		}
		return []client.Option{client.WithToken(tok)}, nil
	}
	return nil, nil
}

// GatewayTokenTTL is the lifetime of a gateway bootstrap token the harness issues for a run:
// the fleet spends it as it starts.
const GatewayTokenTTL = time.Hour

// FleetSecurity is how the fleet's DSNs get their bus identities: the CA, and the admission
// the target declares. With issue: gateway it creates a gateway bootstrap token through api
// (logged in with the target's credentials). A DSN bootstrap token means per-DSN connections
// (each DSN admits itself); the gateway kinds mean shared connections.
func (t *Target) FleetSecurity(ctx context.Context, api *client.Client, purpose string) (*bus.Security, error) {
	ca, err := t.CA()
	if err != nil {
		return nil, err
	}
	sec := &bus.Security{CA: string(ca), APIURL: t.APIURL}
	a := t.Admission
	read := func(field, path string) (string, error) {
		s, err := client.ReadPasswordFile(path)
		if err != nil {
			return "", fmt.Errorf("%w: admission.%s: %w", ErrCredentials, field, err)
		}
		return s, nil
	}
	switch a.Mode() {
	case AdmitDSNToken:
		sec.BootstrapToken, err = read("bootstrapTokenFile", a.BootstrapTokenFile)
	case AdmitGatewayToken:
		sec.GatewayToken, err = read("gatewayTokenFile", a.GatewayTokenFile)
	case AdmitGatewayIdentity:
		if sec.GatewayCert, err = read("gatewayCertFile", a.GatewayCertFile); err == nil {
			sec.GatewayKey, err = read("gatewayKeyFile", a.GatewayKeyFile)
		}
	case AdmitIssueGateway:
		var tok *client.CreatedBootstrapToken
		tok, err = api.CreateBootstrapToken(ctx, client.BootstrapTokenSpec{Role: client.RoleGateway, Uses: 16,
			TTLSeconds: int64(GatewayTokenTTL / time.Second), Description: purpose})
		if err != nil {
			return nil, fmt.Errorf("admission: issue a gateway bootstrap token: %w", err)
		}
		sec.GatewayToken = tok.Secret
	default:
		return nil, fmt.Errorf("%w: admission: none declared", ErrInvalid)
	}
	if err != nil {
		return nil, err
	}
	return sec, nil
}

// Conn is the bus connection mode the admission implies: bus.PerDSN for a DSN bootstrap token,
// bus.Shared otherwise.
func (t *Target) Conn() bus.Mode {
	if t.Admission.Mode() == AdmitDSNToken {
		return bus.PerDSN
	}
	return bus.Shared
}

// Client returns a client of the target's API logged in with its credentials; timeout bounds
// each request.
func (t *Target) Client(ctx context.Context, timeout time.Duration) (*client.Client, error) {
	hc, err := t.HTTPClient(timeout)
	if err != nil {
		return nil, err
	}
	c, _, err := t.login(ctx, hc, timeout)
	return c, err
}
