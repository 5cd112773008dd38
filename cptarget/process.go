package cptarget

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dsnscale/dsnscale/controlplane"
	"github.com/dsnscale/dsnscale/controlplane/authn"
	"github.com/dsnscale/dsnscale/controlplane/client"
	"github.com/dsnscale/dsnscale/controlplane/pki"
	"github.com/dsnscale/dsnscale/faults"
	"github.com/dsnscale/dsnscale/scenarios/measure"
	"github.com/dsnscale/dsnscale/simdsn/bus"
)

// processTarget is the reference control plane as a child process (`dsnscale cp serve`). A
// kill is SIGKILL; a start runs it again on the same data directory and addresses. An exit the
// harness did not cause is recorded as a crash.
type processTarget struct {
	env      Env
	cfg      Config
	dataDir  string
	apiAddr  string
	natsAddr string
	logPath  string
	api      *clientAPI
	sec      *bus.Security

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	killing bool
}

func startProcess(ctx context.Context, cfg Config, env Env) (*processTarget, error) {
	if cfg.Binary == "" {
		return nil, errors.New("no dsnscale binary to run the control plane with (set controlPlane.binary)")
	}
	apiAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	natsAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	c := &processTarget{env: env, cfg: cfg, dataDir: filepath.Join(cfg.Dir, "cp"), apiAddr: apiAddr, natsAddr: natsAddr,
		logPath: filepath.Join(cfg.Dir, "cp.log")}
	if err := c.Start(ctx); err != nil {
		return nil, err
	}
	// The credential flow of a user of cp serve: the CA it wrote under its data directory, the
	// admin password it generated there.
	caPEM, err := client.ReadCAFile(filepath.Join(c.dataDir, controlplane.CADir, pki.CertFile))
	if err == nil {
		var pw string
		if pw, err = client.ReadPasswordFile(filepath.Join(c.dataDir, authn.AdminPasswordFile)); err == nil {
			c.api, err = newSecureClientAPI(c.APIURL(), caPEM, authn.DefaultAdminUser, pw)
		}
	}
	if err == nil {
		c.sec, err = trust(ctx, c.api, c.APIURL(), caPEM)
	}
	if err != nil {
		_ = c.Stop(ctx)
		return nil, fmt.Errorf("credentials: %w", err)
	}
	return c, nil
}

// ready asks the control plane whether it is ready, trusting the CA it wrote (which exists once
// it has started the first time).
func (c *processTarget) ready(ctx context.Context) error {
	api := c.api
	if api == nil {
		caPEM, err := os.ReadFile(filepath.Join(c.dataDir, controlplane.CADir, pki.CertFile))
		if err != nil {
			return err
		}
		hc, err := client.HTTPClient(caPEM, 5*time.Second)
		if err != nil {
			return err
		}
		return client.New(c.APIURL(), hc).Ready(ctx)
	}
	return api.Ready(ctx)
}

// Start runs the control plane and waits until its API says it is ready.
func (c *processTarget) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd != nil {
		return nil
	}
	logf, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	args := []string{"cp", "serve", "--data", c.dataDir, "--listen", c.apiAddr, "--nats-listen", c.natsAddr,
		"--token-ttl", harnessTokenTTL.String()}
	if hb := c.cfg.HeartbeatInterval; hb > 0 {
		args = append(args, "--heartbeat-interval", hb.String())
	}
	for _, b := range []struct{ flag, url string }{{"--tsdb", c.cfg.TSDB}, {"--search", c.cfg.Search}, {"--inventory", c.cfg.Inventory}} {
		if b.url != "" {
			args = append(args, b.flag, b.url)
		}
	}
	cmd := exec.Command(c.cfg.Binary, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The control plane must not outlive the harness, even when the harness is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("start %s: %w", c.cfg.Binary, err)
	}
	exited := make(chan struct{})
	c.cmd, c.exited, c.killing = cmd, exited, false
	go c.reap(cmd, exited, logf)

	rctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		if err := c.ready(rctx); err == nil {
			break
		}
		select {
		case <-exited:
			return fmt.Errorf("control plane exited while starting (see %s)", c.logPath)
		case <-rctx.Done():
			_ = cmd.Process.Kill()
			return fmt.Errorf("control plane not ready within %s (see %s)", readyTimeout, c.logPath)
		case <-time.After(50 * time.Millisecond):
		}
	}
	c.env.Events.Add(measure.CPEvent{At: c.env.Clock.Now(), Kind: measure.CPStarted, Detail: fmt.Sprintf("pid %d", cmd.Process.Pid)})
	return nil
}

// reap waits for the process and records an exit nobody asked for as a crash.
func (c *processTarget) reap(cmd *exec.Cmd, exited chan struct{}, logf *os.File) {
	err := cmd.Wait()
	_ = logf.Close()
	c.mu.Lock()
	deliberate := c.killing
	if c.cmd == cmd {
		c.cmd = nil
	}
	c.mu.Unlock()
	defer close(exited)
	if !deliberate {
		detail := "exit status 0"
		if err != nil {
			detail = err.Error()
		}
		c.env.Events.Add(measure.CPEvent{At: c.env.Clock.Now(), Kind: measure.CPExited, Detail: detail + lastLines(c.logPath, 3)})
		c.env.Logger.Error("control plane exited on its own", "err", err)
	}
}

// Settle waits a little for a control plane that stopped answering to either answer again or
// be seen to exit, so that a crash that broke the run is counted before the run is measured.
func (c *processTarget) Settle(ctx context.Context) {
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		cmd := c.cmd
		c.mu.Unlock()
		if cmd == nil {
			return
		}
		rctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		err := c.ready(rctx)
		cancel()
		if err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lastLines returns the last n lines of a file, for crash details.
func lastLines(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "; last log lines: " + strings.Join(lines, " | ")
}

// Kill sends SIGKILL and waits for the process to be gone.
func (c *processTarget) Kill(ctx context.Context) error {
	c.mu.Lock()
	cmd, exited := c.cmd, c.exited
	if cmd == nil {
		c.mu.Unlock()
		return errors.New("control plane is not running")
	}
	c.killing = true
	c.mu.Unlock()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	select {
	case <-exited:
	case <-ctx.Done():
		return ctx.Err()
	}
	c.env.Events.Add(measure.CPEvent{At: c.env.Clock.Now(), Kind: measure.CPKilled, Detail: "SIGKILL"})
	return nil
}

func (c *processTarget) Running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cmd != nil
}

// Stop asks the control plane to shut down (SIGTERM) and kills it if it takes too long.
func (c *processTarget) Stop(ctx context.Context) error {
	c.mu.Lock()
	cmd, exited := c.cmd, c.exited
	c.killing = true
	c.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		return nil
	case <-time.After(15 * time.Second):
	case <-ctx.Done():
	}
	_ = cmd.Process.Kill()
	<-exited
	return errors.New("control plane did not stop on SIGTERM; killed")
}

func (c *processTarget) APIURL() string              { return "https://" + c.apiAddr }
func (c *processTarget) NATSURL() string             { return "tls://" + c.natsAddr }
func (c *processTarget) API() API                    { return c.api }
func (c *processTarget) Mode() string                { return Process }
func (c *processTarget) Faults() faults.ControlPlane { return c }

func (c *processTarget) PID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil || c.cmd.Process == nil {
		return 0
	}
	return c.cmd.Process.Pid
}

// Token is a fresh token of the harness's own login.
func (c *processTarget) Token(ctx context.Context) (string, error) { return c.api.c.Token(ctx) }

// FleetSecurity is the fleet's gateway credentials.
func (c *processTarget) FleetSecurity() *bus.Security { return copySecurity(c.sec) }
