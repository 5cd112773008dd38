package cptarget

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/cpproc"
	"github.com/dsnscale/dsnscale/faults"
	"github.com/dsnscale/dsnscale/scenarios/measure"
	"github.com/dsnscale/dsnscale/simdsn/bus"
)

// stopGrace is how long a control plane the harness runs may take to shut down on SIGTERM.
const stopGrace = 15 * time.Second

// processTarget is the reference control plane as a child process (`dsnscale cp serve`, run by
// package cpproc). A kill is SIGKILL; a start runs it again on the same data directory and
// addresses. An exit the harness did not cause is recorded as a crash, with the last lines of
// its log.
type processTarget struct {
	env  Env
	opts cpproc.Options
	api  *clientAPI
	sec  *bus.Security

	apiURL, natsURL string

	mu      sync.Mutex
	p       *cpproc.Process // nil while it is down
	killing bool            // the harness ended it: its exit is no crash
}

func startProcess(ctx context.Context, cfg Config, env Env) (*processTarget, error) {
	if cfg.Binary == "" {
		return nil, errors.New("no dsnscale binary to run the control plane with (set controlPlane.binary)")
	}
	opts := cpproc.Options{Binary: cfg.Binary, Dir: cfg.Dir, DataDir: filepath.Join(cfg.Dir, "cp"),
		UserAgent: "dsnscale-harness", StartTimeout: readyTimeout, Args: processArgs(cfg)}
	c := &processTarget{env: env, opts: opts}
	if err := c.Start(ctx); err != nil {
		return nil, err
	}
	c.mu.Lock()
	p := c.p
	c.mu.Unlock()
	// Later starts listen where the first one did, so the DSNs find it again.
	c.opts.Listen, c.opts.NATSListen = p.APIAddr(), p.NATSAddr()
	c.apiURL, c.natsURL = p.APIURL(), p.NATSURL()
	// The credential flow of a user of cp serve: the CA it wrote under its data directory, the
	// admin password it generated there.
	user, pw := p.AdminCredentials()
	api, err := newSecureClientAPI(c.apiURL, p.CAPEM(), user, pw)
	if err == nil {
		c.api = api
		c.sec, err = trust(ctx, c.api, c.apiURL, p.CAPEM())
	}
	if err != nil {
		_ = c.Stop(ctx)
		return nil, fmt.Errorf("credentials: %w", err)
	}
	return c, nil
}

// Start runs the control plane and waits until its API says it is ready. One that exits while
// starting is reported at once, with the last lines of its log.
func (c *processTarget) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.p != nil {
		return nil
	}
	p, err := cpproc.Start(ctx, c.opts)
	if err != nil {
		return err
	}
	c.p, c.killing = p, false
	go c.watch(p)
	c.env.Events.Add(measure.CPEvent{At: c.env.Clock.Now(), Kind: measure.CPStarted, Detail: fmt.Sprintf("pid %d", p.PID())})
	return nil
}

// watch waits for the process to end and records an exit nobody asked for as a crash.
func (c *processTarget) watch(p *cpproc.Process) {
	err := p.ExitErr()
	c.mu.Lock()
	deliberate := c.killing
	c.mu.Unlock()
	// The crash is on record before the target says it is down.
	if !deliberate {
		detail := "exit status 0"
		if err != nil {
			detail = err.Error()
		}
		c.env.Events.Add(measure.CPEvent{At: c.env.Clock.Now(), Kind: measure.CPExited, Detail: detail + p.LogTail(3)})
		c.env.Logger.Error("control plane exited on its own", "err", err)
	}
	c.down(p)
}

// Settle waits a little for a control plane that stopped answering to either answer again or
// be seen to exit, so that a crash that broke the run is counted before the run is measured.
func (c *processTarget) Settle(ctx context.Context) {
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		p := c.p
		c.mu.Unlock()
		if p == nil {
			return
		}
		rctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		err := c.api.Ready(rctx)
		cancel()
		if err == nil {
			return
		}
		select {
		case <-p.Done():
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (c *processTarget) Kill(ctx context.Context) error {
	c.mu.Lock()
	p := c.p
	if p == nil {
		c.mu.Unlock()
		return errors.New("control plane is not running")
	}
	c.killing = true
	c.mu.Unlock()
	if err := killAndWait(ctx, p); err != nil {
		return err
	}
	c.down(p)
	c.env.Events.Add(measure.CPEvent{At: c.env.Clock.Now(), Kind: measure.CPKilled, Detail: "SIGKILL"})
	return nil
}

// killAndWait sends p SIGKILL and waits for it to be gone.
func killAndWait(ctx context.Context, p *cpproc.Process) error {
	if err := syscall.Kill(p.PID(), syscall.SIGKILL); err != nil {
		return err
	}
	select {
	case <-p.Done():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// down marks p, which has ended, as no longer running.
func (c *processTarget) down(p *cpproc.Process) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.p == p {
		c.p = nil
	}
}

// Pause freezes the control plane's process (SIGSTOP) or thaws it (SIGCONT). A freeze returns
// once every thread of the process has stopped: a thread busy in the kernel (an fsync on a
// loaded machine) stops only when it leaves it, and until then the process may still answer.
func (c *processTarget) Pause(ctx context.Context, on bool) error {
	c.mu.Lock()
	p := c.p
	c.mu.Unlock()
	if p == nil {
		return errors.New("control plane is not running")
	}
	return pauseProcess(ctx, p.PID(), on)
}

func (c *processTarget) Running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.p != nil
}

// Stop asks the control plane to shut down (SIGTERM) and kills it if it takes too long.
func (c *processTarget) Stop(ctx context.Context) error {
	c.mu.Lock()
	p := c.p
	c.killing = true
	c.mu.Unlock()
	if p == nil {
		return nil
	}
	err := p.Shutdown(ctx, stopGrace)
	c.down(p)
	return err
}

func (c *processTarget) APIURL() string              { return c.apiURL }
func (c *processTarget) NATSURL() string             { return c.natsURL }
func (c *processTarget) API() API                    { return c.api }
func (c *processTarget) Mode() string                { return Process }
func (c *processTarget) Faults() faults.ControlPlane { return c }

func (c *processTarget) PID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.p == nil {
		return 0
	}
	return c.p.PID()
}

// Token is a fresh token of the harness's own login.
func (c *processTarget) Token(ctx context.Context) (string, error) { return c.api.c.Token(ctx) }

// FleetSecurity is the fleet's gateway credentials.
func (c *processTarget) FleetSecurity() *bus.Security { return copySecurity(c.sec) }
