package cptarget

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"

	"github.com/dsnscale/dsnscale/controlplane"
	"github.com/dsnscale/dsnscale/faults"
	"github.com/dsnscale/dsnscale/scenarios/measure"
	"github.com/dsnscale/dsnscale/simdsn/bus"
)

// inProcessTarget is the reference control plane running inside the harness. A kill stops it;
// a start brings it back on the same data directory and the same addresses, so DSNs find it
// again.
type inProcessTarget struct {
	env    Env
	cfg    controlplane.Config
	logOut *os.File
	sec    *bus.Security

	mu      sync.Mutex
	srv     *controlplane.Server
	apiURL  string
	natsURL string
	api     *clientAPI
}

func startInProcess(ctx context.Context, cfg Config, env Env) (*inProcessTarget, error) {
	logOut, err := os.Create(filepath.Join(cfg.Dir, "cp.log"))
	if err != nil {
		return nil, err
	}
	c := &inProcessTarget{env: env, logOut: logOut, cfg: controlplane.Config{
		DataDir:           filepath.Join(cfg.Dir, "cp"),
		Listen:            "127.0.0.1:0",
		NATSListen:        "127.0.0.1:0",
		HeartbeatInterval: cfg.HeartbeatInterval,
		TSDBURL:           cfg.TSDB,
		SearchURL:         cfg.Search,
		InventoryURL:      cfg.Inventory,
		TokenTTL:          harnessTokenTTL,
		Logger:            slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}}
	if err := c.Start(ctx); err != nil {
		_ = logOut.Close()
		return nil, err
	}
	// Later starts reuse the addresses the first one picked.
	c.cfg.Listen = hostPort(c.apiURL)
	c.cfg.NATSListen = hostPort(c.natsURL)
	user, pw, err := c.srv.AdminCredentials()
	if err == nil {
		c.api, err = newSecureClientAPI(c.apiURL, c.srv.CAPEM(), user, pw)
	}
	if err == nil {
		c.sec, err = trust(ctx, c.api, c.apiURL, c.srv.CAPEM())
	}
	if err != nil {
		c.srv.Stop()
		_ = logOut.Close()
		return nil, fmt.Errorf("credentials: %w", err)
	}
	return c, nil
}

func hostPort(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return p.Host
}

// Start starts the control plane and waits until it is ready.
func (c *inProcessTarget) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.srv != nil {
		return nil
	}
	srv, err := controlplane.Start(ctx, c.cfg)
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if err := srv.WaitReady(rctx); err != nil {
		srv.Stop()
		return fmt.Errorf("not ready: %w", err)
	}
	c.srv, c.apiURL, c.natsURL = srv, srv.APIURL(), srv.NATSURL()
	c.env.Events.Add(measure.CPEvent{At: c.env.Clock.Now(), Kind: measure.CPStarted})
	return nil
}

// Kill stops the embedded control plane (its server, bus and store) at once.
func (c *inProcessTarget) Kill(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.srv == nil {
		return errors.New("control plane is not running")
	}
	c.srv.Stop()
	c.srv = nil
	c.env.Events.Add(measure.CPEvent{At: c.env.Clock.Now(), Kind: measure.CPKilled, Detail: "stopped in process"})
	return nil
}

func (c *inProcessTarget) Running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.srv != nil
}

func (c *inProcessTarget) APIURL() string              { return c.apiURL }
func (c *inProcessTarget) NATSURL() string             { return c.natsURL }
func (c *inProcessTarget) API() API                    { return c.api }
func (c *inProcessTarget) Mode() string                { return InProcess }
func (c *inProcessTarget) PID() int                    { return os.Getpid() }
func (c *inProcessTarget) Faults() faults.ControlPlane { return c }

// Ready reports whether the server is up and ready.
func (c *inProcessTarget) Ready(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.srv == nil {
		return errors.New("control plane is down")
	}
	return c.srv.Ready()
}

func (c *inProcessTarget) Stop(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.srv != nil {
		c.srv.Stop()
		c.srv = nil
	}
	return c.logOut.Close()
}

// Token is a fresh token of the harness's own login.
func (c *inProcessTarget) Token(ctx context.Context) (string, error) { return c.api.c.Token(ctx) }

// FleetSecurity is the fleet's gateway credentials.
func (c *inProcessTarget) FleetSecurity() *bus.Security { return copySecurity(c.sec) }
