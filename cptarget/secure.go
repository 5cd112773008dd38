package cptarget

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/client"
	"github.com/dsnscale/dsnscale/faults"
	"github.com/dsnscale/dsnscale/loadgen/northbound"
	"github.com/dsnscale/dsnscale/simdsn/bus"
	"github.com/dsnscale/dsnscale/target"
)

// secureExternal is someone else's control plane described by a Target: its CA trusted, the
// harness logged in with the target's credentials, and the fleet admitted as the target says.
type secureExternal struct {
	t   target.Target
	api *clientAPI
	sec *bus.Security
	// hooked acts on the control plane through the target's hooks.
	hooked *hookedCP
}

func openSecureExternal(ctx context.Context, t target.Target) (*secureExternal, error) {
	hc, err := t.HTTPClient(30 * time.Second)
	if err != nil {
		return nil, err
	}
	opts, err := t.ClientOptions()
	if err != nil {
		return nil, err
	}
	opts = append(opts, client.WithUserAgent("dsnscale-harness"))
	c := client.New(t.APIURL, hc, opts...)
	api := &clientAPI{c: c, base: strings.TrimRight(t.APIURL, "/"), http: hc, login: true}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := api.Revision(rctx); err != nil {
		return nil, fmt.Errorf("external control plane at %s: %w (dsnscale target check says which piece fails)", t.APIURL, err)
	}
	ca, err := t.CA()
	if err != nil {
		return nil, err
	}
	// The loads reach the API with the same trust.
	northbound.TrustTarget(t.APIURL, ca)
	sec, err := t.FleetSecurity(rctx, c, "dsnscale fleet gateway")
	if err != nil {
		return nil, fmt.Errorf("external control plane at %s: %w", t.APIURL, err)
	}
	return &secureExternal{t: t, api: api, sec: sec, hooked: &hookedCP{hooks: t.Hooks, api: api}}, nil
}

// Token is a bearer token for the API: the login's (renewed when due) or the token file's.
func (c *secureExternal) Token(ctx context.Context) (string, error) {
	if c.t.Credentials.Kind() == "token" {
		return c.t.Token()
	}
	return c.api.c.Token(ctx)
}

func (c *secureExternal) APIURL() string  { return c.t.APIURL }
func (c *secureExternal) NATSURL() string { return c.t.BusURL }
func (c *secureExternal) API() API        { return c.api }
func (c *secureExternal) Mode() string    { return External }
func (c *secureExternal) PID() int        { return 0 }
func (c *secureExternal) Faults() faults.ControlPlane {
	if h := c.t.Hooks; h.Kill != nil || h.Pause != nil {
		return c.hooked
	}
	return nil
}
func (c *secureExternal) FleetSecurity() *bus.Security { return copySecurity(c.sec) }
func (c *secureExternal) Stop(context.Context) error   { return nil }
