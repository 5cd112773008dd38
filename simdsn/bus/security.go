package bus

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dsnscale/dsnscale/controlplane/agent"
	"github.com/dsnscale/dsnscale/controlplane/client"
	"github.com/dsnscale/dsnscale/controlplane/pki"
)

// Security is how simulated DSNs prove who they are to a control plane whose bus requires
// mutual TLS (docs/PROTOCOL.md, Identity). It is pure data, handed to child processes with the
// rest of the bus configuration.
//
// A shared connection carries many DSNs and so cannot be any one of them: it uses a fleet
// gateway identity (Gateway*), a simulation-only trust level that may speak for every DSN. A
// connection of its own (PerDSN mode) uses the DSN's real identity: on its first connection
// the DSN makes a key and exchanges a CSR and the bootstrap token for its certificate (POST
// /api/v1/admission on APIURL).
type Security struct {
	// CA is the control plane's CA certificate (PEM): the trust anchor of the bus and the API.
	CA string `json:"ca"`
	// APIURL is the control plane's northbound API (https://host:port), for admission.
	APIURL string `json:"apiURL,omitempty"`
	// BootstrapToken admits each DSN of a PerDSN bus (a multi-use DSN token).
	BootstrapToken string `json:"bootstrapToken,omitempty"`
	// GatewayToken, when the gateway certificate is not given, is a gateway bootstrap token
	// with which the fleet obtains one (see ObtainGateway).
	GatewayToken string `json:"gatewayToken,omitempty"`
	// GatewayCert and GatewayKey are the fleet gateway identity (PEM) of shared connections.
	GatewayCert string `json:"gatewayCert,omitempty"`
	GatewayKey  string `json:"gatewayKey,omitempty"`
}

// validate checks the security settings for a bus in mode.
func (s *Security) validate(mode Mode) error {
	var errs []error
	if s.CA == "" {
		errs = append(errs, errors.New("Security.CA: required (the control plane's ca.crt)"))
	} else if _, err := client.TLSConfig([]byte(s.CA)); err != nil {
		errs = append(errs, fmt.Errorf("Security.CA: %w", err))
	}
	switch mode {
	case PerDSN:
		if s.APIURL == "" || s.BootstrapToken == "" {
			errs = append(errs, errors.New("Security: a per-DSN bus needs APIURL and BootstrapToken: each DSN admits itself"))
		}
	default:
		if s.GatewayCert == "" || s.GatewayKey == "" {
			errs = append(errs, errors.New("Security: a shared bus needs the gateway identity (GatewayCert and GatewayKey; ObtainGateway gets one)"))
		}
	}
	return errors.Join(errs...)
}

// ObtainGateway fills in the gateway identity of s with its GatewayToken: it makes a key here and
// has the control plane sign a gateway certificate named name for it. It does nothing when s
// already holds one.
func ObtainGateway(ctx context.Context, s *Security, name string) error {
	if s == nil || s.GatewayCert != "" {
		return nil
	}
	if s.GatewayToken == "" || s.APIURL == "" {
		return errors.New("bus: a gateway identity needs Security.GatewayToken and Security.APIURL")
	}
	hc, err := client.HTTPClient([]byte(s.CA), 30*time.Second)
	if err != nil {
		return err
	}
	id, err := agent.Admit(ctx, client.New(s.APIURL, hc), s.GatewayToken, name, pki.RoleGateway, nil)
	if err != nil {
		return err
	}
	cert, key, _, err := id.PEM()
	if err != nil {
		return err
	}
	s.GatewayCert, s.GatewayKey = string(cert), string(key)
	return nil
}

// identities holds the bus's identities: the gateway's, and each DSN's once admitted.
type identities struct {
	sec     *Security
	gateway *agent.Identity
	api     *client.Client

	mu   sync.Mutex
	dsns map[string]*agent.Identity
}

func newIdentities(sec *Security, mode Mode) (*identities, error) {
	if sec == nil {
		return nil, nil
	}
	ids := &identities{sec: sec, dsns: map[string]*agent.Identity{}}
	if mode == PerDSN {
		hc, err := client.HTTPClient([]byte(sec.CA), 30*time.Second)
		if err != nil {
			return nil, err
		}
		hc.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
		ids.api = client.New(sec.APIURL, hc, client.WithUserAgent("dsnscale-sim"))
		return ids, nil
	}
	gw, err := agent.LoadIdentity([]byte(sec.GatewayCert), []byte(sec.GatewayKey), []byte(sec.CA))
	if err != nil {
		return nil, fmt.Errorf("bus: gateway identity: %w", err)
	}
	if gw.Role() != pki.RoleGateway {
		return nil, fmt.Errorf("bus: the gateway certificate has role %q, want %q", gw.Role(), pki.RoleGateway)
	}
	ids.gateway = gw
	return ids, nil
}

// sharedOptions are the options of a shared connection, and its inbox prefix.
func (ids *identities) sharedOptions() ([]nats.Option, string, error) {
	if ids == nil {
		return nil, "", nil
	}
	opts, err := ids.gateway.NATSOptions()
	return opts, agent.InboxPrefix(ids.gateway.Name()), err
}

// dsnOptions are the options of DSN id's own connection, admitting it first if it has no
// identity yet.
func (ids *identities) dsnOptions(ctx context.Context, id string) ([]nats.Option, error) {
	if ids == nil {
		return nil, nil
	}
	ids.mu.Lock()
	ident := ids.dsns[id]
	ids.mu.Unlock()
	if ident == nil {
		var err error
		if ident, err = agent.Admit(ctx, ids.api, ids.sec.BootstrapToken, id, pki.RoleDSN, nil); err != nil {
			return nil, err
		}
		ids.mu.Lock()
		ids.dsns[id] = ident
		ids.mu.Unlock()
	}
	return ident.NATSOptions()
}
