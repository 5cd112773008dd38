package scenarios

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/dsnscale/dsnscale/controlplane"
	"github.com/dsnscale/dsnscale/controlplane/client"
	"github.com/dsnscale/dsnscale/faults"
	"github.com/dsnscale/dsnscale/loadgen/northbound"
	"github.com/dsnscale/dsnscale/scenarios/measure"
	"github.com/dsnscale/dsnscale/simdsn/bus"
)

// readyTimeout bounds how long a starting control plane may take to become ready.
const readyTimeout = 60 * time.Second

// startControlPlane starts (or reaches) the scenario's control plane.
func startControlPlane(ctx context.Context, e *engine) (ControlPlane, error) {
	// Each case returns an untyped nil on failure: a nil *processCP in the interface would not
	// be nil.
	switch e.s.ControlPlane.Mode {
	case CPProcess:
		c, err := startProcessCP(ctx, e)
		if err != nil {
			return nil, err
		}
		return c, nil
	case CPExternal:
		c, err := newExternalCP(ctx, e)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	c, err := startInProcessCP(ctx, e)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// inProcessCP is the reference control plane running inside the harness. A kill stops it; a
// start brings it back on the same data directory and the same addresses, so DSNs find it again.
type inProcessCP struct {
	e      *engine
	cfg    controlplane.Config
	logOut *os.File

	mu      sync.Mutex
	srv     *controlplane.Server
	apiURL  string
	natsURL string
	api     *clientAPI
}

func startInProcessCP(ctx context.Context, e *engine) (*inProcessCP, error) {
	logOut, err := os.Create(filepath.Join(e.dir, "cp.log"))
	if err != nil {
		return nil, err
	}
	c := &inProcessCP{e: e, logOut: logOut, cfg: controlplane.Config{
		DataDir:           filepath.Join(e.dir, "cp"),
		Listen:            "127.0.0.1:0",
		NATSListen:        "127.0.0.1:0",
		HeartbeatInterval: e.s.ControlPlane.HeartbeatInterval,
		TSDBURL:           e.s.ControlPlane.TSDB,
		SearchURL:         e.s.ControlPlane.Search,
		InventoryURL:      e.s.ControlPlane.Inventory,
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
		err = trustControlPlane(ctx, c.api, c.apiURL, c.natsURL, c.srv.CAPEM())
	}
	if err != nil {
		c.srv.Stop()
		_ = logOut.Close()
		return nil, fmt.Errorf("credentials: %w", err)
	}
	e.resources.SetNote(measure.ComponentControlPlane, "runs in the harness process: its figures are the harness's")
	e.note("the control plane runs in the harness process: a crash of it would end the run itself; mode process sees crashes")
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
func (c *inProcessCP) Start(ctx context.Context) error {
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
	c.e.cpEvents.Add(measure.CPEvent{At: c.e.clock.Now(), Kind: measure.CPStarted})
	return nil
}

// Kill stops the embedded control plane (its server, bus and store) at once.
func (c *inProcessCP) Kill(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.srv == nil {
		return errors.New("control plane is not running")
	}
	c.srv.Stop()
	c.srv = nil
	c.e.cpEvents.Add(measure.CPEvent{At: c.e.clock.Now(), Kind: measure.CPKilled, Detail: "stopped in process"})
	return nil
}

func (c *inProcessCP) Running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.srv != nil
}

func (c *inProcessCP) APIURL() string              { return c.apiURL }
func (c *inProcessCP) NATSURL() string             { return c.natsURL }
func (c *inProcessCP) API() API                    { return c.api }
func (c *inProcessCP) Mode() string                { return CPInProcess }
func (c *inProcessCP) PID() int                    { return os.Getpid() }
func (c *inProcessCP) Faults() faults.ControlPlane { return c }

// Ready reports whether the server is up and ready.
func (c *inProcessCP) Ready(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.srv == nil {
		return errors.New("control plane is down")
	}
	return c.srv.Ready()
}

func (c *inProcessCP) Stop(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.srv != nil {
		c.srv.Stop()
		c.srv = nil
	}
	return c.logOut.Close()
}

// harnessTokenTTL is the lifetime of the API tokens of the control planes the harness runs:
// a load step takes one token for its whole run, and runs may be long.
const harnessTokenTTL = 4 * time.Hour

// fleetCredentials holds, by NATS URL, how the fleet of a control plane the harness started
// gets its bus identities.
var fleetCredentials sync.Map // string -> *bus.Security

// trustControlPlane sets up the credential flow for a control plane the harness started with its
// security on: the loads trust its CA, and the fleet gets a gateway bootstrap token (the
// simulator's shared connections are one fleet gateway identity, see docs/PROTOCOL.md).
func trustControlPlane(ctx context.Context, api *clientAPI, apiURL, natsURL string, caPEM []byte) error {
	northbound.TrustTarget(apiURL, caPEM)
	tok, err := api.c.CreateBootstrapToken(ctx, client.BootstrapTokenSpec{Role: client.RoleGateway, Uses: 16,
		Description: "dsnscale harness fleet gateway"})
	if err != nil {
		return fmt.Errorf("gateway bootstrap token: %w", err)
	}
	fleetCredentials.Store(natsURL, &bus.Security{CA: string(caPEM), APIURL: apiURL, GatewayToken: tok.Secret})
	return nil
}

// fleetSecurity returns the credentials of the fleet of the control plane at natsURL; nil for a
// control plane the harness did not start or that runs insecure.
func fleetSecurity(natsURL string) *bus.Security {
	if v, ok := fleetCredentials.Load(natsURL); ok {
		sec := *v.(*bus.Security)
		return &sec
	}
	return nil
}

// freeAddr picks a free loopback port for a child process to listen on.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}
