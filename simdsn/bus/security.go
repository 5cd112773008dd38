package bus

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"golang.org/x/sync/singleflight"

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

// Admission limits of a per-DSN bus. A DSN's admission is its own piece of work, not part of
// one connection attempt: it runs to its end (or admitTimeout) even when the connect stage that
// asked for it has given up, and a retry joins it instead of starting another. Otherwise a slow
// control plane makes every DSN spend a use of the shared token per retry and exhausts it.
const (
	// maxAdmissions bounds the admissions in flight, and so the HTTPS connections to the API:
	// without it a fleet booting at once opens one per DSN and runs both ends out of
	// descriptors.
	maxAdmissions = 32
	admitTimeout  = 2 * time.Minute
)

// identities holds the bus's identities: the gateway's, and each DSN's once admitted.
type identities struct {
	sec     *Security
	gateway *agent.Identity
	api     *client.Client

	ctx       context.Context // ends when the bus closes
	slots     chan struct{}   // admissions in flight
	admitting singleflight.Group

	mu   sync.Mutex
	dsns map[string]*agent.Identity
}

func newIdentities(ctx context.Context, sec *Security, mode Mode) (*identities, error) {
	if sec == nil {
		return nil, nil
	}
	ids := &identities{sec: sec, ctx: ctx, dsns: map[string]*agent.Identity{}}
	if mode == PerDSN {
		hc, err := client.HTTPClient([]byte(sec.CA), 30*time.Second)
		if err != nil {
			return nil, err
		}
		hc.Transport.(*http.Transport).MaxIdleConnsPerHost = maxAdmissions
		ids.api = client.New(sec.APIURL, hc, client.WithUserAgent("dsnscale-sim"))
		ids.slots = make(chan struct{}, maxAdmissions)
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
func (ids *identities) dsnOptions(ctx context.Context, id string, labels map[string]string) ([]nats.Option, error) {
	if ids == nil {
		return nil, nil
	}
	ids.mu.Lock()
	ident := ids.dsns[id]
	ids.mu.Unlock()
	if ident == nil {
		select {
		case res := <-ids.admitting.DoChan(id, func() (any, error) { return ids.admit(id, labels) }):
			if res.Err != nil {
				return nil, res.Err
			}
			ident = res.Val.(*agent.Identity)
		case <-ctx.Done():
			return nil, fmt.Errorf("admission of %s still under way: %w", id, ctx.Err())
		}
	}
	return ident.NATSOptions()
}

// admit obtains DSN id's identity, with its labels, waiting for a free admission slot first,
// and keeps it.
func (ids *identities) admit(id string, labels map[string]string) (*agent.Identity, error) {
	ctx, cancel := context.WithTimeout(ids.ctx, admitTimeout)
	defer cancel()
	select {
	case ids.slots <- struct{}{}:
		defer func() { <-ids.slots }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	ident, err := agent.Admit(ctx, ids.api, ids.sec.BootstrapToken, id, pki.RoleDSN, labels)
	if err != nil {
		return nil, err
	}
	ids.mu.Lock()
	ids.dsns[id] = ident
	ids.mu.Unlock()
	return ident, nil
}

// keepRenewed renews, every RenewEvery, the certificates of the connected DSNs that are due,
// each over its own connection (the control plane renews only the identity a connection
// proves). One loop for the whole bus, not one per DSN: ten thousand sleeping goroutines would
// cost more than the identities they keep.
func (b *NATS) keepRenewed() {
	tick := time.NewTicker(b.cfg.RenewEvery)
	defer tick.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-tick.C:
		}
		type due struct {
			id    *agent.Identity
			nc    *nats.Conn
			owner string
		}
		var todo []due
		now := time.Now()
		b.mu.Lock()
		for _, m := range b.members {
			if m.c == nil {
				continue
			}
			if ident := b.ids.identity(m.id); ident != nil && !now.Before(ident.RenewAt()) {
				todo = append(todo, due{ident, m.c.nc, m.id})
			}
		}
		b.mu.Unlock()
		for _, d := range todo {
			ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
			if err := d.id.Renew(ctx, d.nc); err != nil {
				b.cfg.Logger.Debug("certificate renewal failed; retrying", "dsn", d.owner, "err", err)
			} else {
				b.renewals.Add(1)
			}
			cancel()
		}
	}
}

// identity returns DSN id's identity, nil before its admission.
func (ids *identities) identity(id string) *agent.Identity {
	ids.mu.Lock()
	defer ids.mu.Unlock()
	return ids.dsns[id]
}

// Renewals counts the certificates the bus renewed.
func (b *NATS) Renewals() int64 { return b.renewals.Load() }
