package cptarget

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/dsnscale/dsnscale/faults"
	"github.com/dsnscale/dsnscale/simdsn/bus"
)

// externalTarget is someone else's control plane, reached by URL. The harness neither starts
// nor stops it and cannot inject control-plane faults into it.
type externalTarget struct {
	cfg Config
	api *clientAPI
}

func openExternal(ctx context.Context, cfg Config) (*externalTarget, error) {
	c := &externalTarget{cfg: cfg}
	token, err := c.Token(ctx)
	if err != nil {
		return nil, err
	}
	c.api = newClientAPI(cfg.URL, token)
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := c.api.Revision(rctx); err != nil {
		return nil, fmt.Errorf("external control plane at %s: %w", cfg.URL, err)
	}
	return c, nil
}

// Token is the configured token, read from TokenFile when that is set (each time, so a token
// rotated in the file is picked up).
func (c *externalTarget) Token(context.Context) (string, error) {
	if c.cfg.TokenFile == "" {
		return c.cfg.Token, nil
	}
	b, err := os.ReadFile(c.cfg.TokenFile)
	if err != nil {
		return "", fmt.Errorf("controlPlane.tokenFile: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func (c *externalTarget) APIURL() string               { return c.cfg.URL }
func (c *externalTarget) NATSURL() string              { return c.cfg.NATSURL }
func (c *externalTarget) API() API                     { return c.api }
func (c *externalTarget) Mode() string                 { return External }
func (c *externalTarget) PID() int                     { return 0 }
func (c *externalTarget) Faults() faults.ControlPlane  { return nil }
func (c *externalTarget) FleetSecurity() *bus.Security { return nil }
func (c *externalTarget) Stop(context.Context) error   { return nil }
