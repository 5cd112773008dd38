package cptarget

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/client"
	"github.com/dsnscale/dsnscale/controlplane/cpproc"
	"github.com/dsnscale/dsnscale/faults"
	"github.com/dsnscale/dsnscale/internal/procstat"
	"github.com/dsnscale/dsnscale/scenarios/measure"
	"github.com/dsnscale/dsnscale/simdsn/bus"
)

// clusterTarget is the reference control plane as several replicas, each a child process
// (`dsnscale cp serve --cluster`, run by package cpproc) with its own data directory, all
// sharing one CA and one admin password. Their API is reached through a load balancer in the
// harness (APIURL), the way a deployment reaches it; DSNs get every replica's bus address. A
// replica the harness did not stop that exits is recorded as a crash.
type clusterTarget struct {
	env   Env
	nodes []*clusterNode
	lb    *balancer
	api   *clientAPI
	sec   *bus.Security
	caPEM []byte

	apiURL, natsURL string
}

// clusterNode is one replica.
type clusterNode struct {
	index int
	opts  cpproc.Options

	mu      sync.Mutex
	p       *cpproc.Process // nil while it is down
	killing bool
}

func startCluster(ctx context.Context, cfg Config, env Env) (_ *clusterTarget, err error) {
	if cfg.Binary == "" {
		return nil, errors.New("no dsnscale binary to run the control plane with (set controlPlane.binary)")
	}
	// The replicas start together (each waits for the others to elect a JetStream meta leader),
	// sharing a CA and an admin password that cpproc makes before any starts.
	opts := cpproc.Options{Binary: cfg.Binary, Dir: cfg.Dir, UserAgent: "dsnscale-harness",
		StartTimeout: readyTimeout, Args: append(processArgs(cfg), "--join-timeout", readyTimeout.String())}
	procs, err := cpproc.StartCluster(ctx, opts, cfg.Replicas)
	if err != nil {
		return nil, err
	}
	routes := make([]string, len(procs))
	for i, p := range procs {
		routes[i] = p.ClusterAddr()
	}
	c := &clusterTarget{env: env, caPEM: procs[0].CAPEM()}
	defer func() {
		if err != nil {
			_ = c.Stop(context.WithoutCancel(ctx))
		}
	}()
	var apiAddrs, natsURLs []string
	for i, p := range procs {
		// A replica started again is found where it was: the same addresses and data.
		o := opts
		o.Dir = filepath.Dir(p.LogPath())
		o.DataDir, o.Listen, o.NATSListen = filepath.Join(o.Dir, "data"), p.APIAddr(), p.NATSAddr()
		o.Args = append(append(cpproc.ClusterArgs(routes, i), "--ca-dir", filepath.Join(cfg.Dir, cpproc.ClusterCADir),
			"--admin-password-file", filepath.Join(cfg.Dir, cpproc.ClusterPasswordFile)), opts.Args...)
		n := &clusterNode{index: i, opts: o, p: p}
		c.nodes = append(c.nodes, n)
		go c.watch(n, p)
		env.Events.Add(measure.CPEvent{At: env.Clock.Now(), Kind: measure.CPStarted, Detail: fmt.Sprintf("replica %d, pid %d", i, p.PID())})
		apiAddrs = append(apiAddrs, p.APIAddr())
		natsURLs = append(natsURLs, p.NATSURL())
	}
	hc, err := client.HTTPClient(c.caPEM, 2*balancerCheckEvery)
	if err != nil {
		return nil, err
	}
	c.lb, err = newBalancer(apiAddrs, func(ctx context.Context, addr string) error {
		err := client.New("https://"+addr, hc).Ready(ctx)
		if ae := (*client.APIError)(nil); errors.As(err, &ae) {
			return fmt.Errorf("%w: %w", errDraining, err)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	c.apiURL, c.natsURL = "https://"+c.lb.Addr(), strings.Join(natsURLs, ",")
	user, pw := c.nodes[0].process().AdminCredentials()
	api, err := newSecureClientAPI(c.apiURL, c.caPEM, user, pw)
	if err == nil {
		c.api = api
		c.sec, err = trust(ctx, c.api, c.apiURL, c.caPEM)
	}
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	return c, nil
}

// processArgs are the cp serve flags every control plane the harness runs as a process gets.
func processArgs(cfg Config) []string {
	args := []string{"--token-ttl", harnessTokenTTL.String()}
	if hb := cfg.HeartbeatInterval; hb > 0 {
		args = append(args, "--heartbeat-interval", hb.String())
	}
	for _, b := range []struct{ flag, url string }{{"--tsdb", cfg.TSDB}, {"--search", cfg.Search}, {"--inventory", cfg.Inventory}} {
		if b.url != "" {
			args = append(args, b.flag, b.url)
		}
	}
	return args
}

func (n *clusterNode) process() *cpproc.Process {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.p
}

func (c *clusterTarget) node(i int) (*clusterNode, error) {
	if i < 0 || i >= len(c.nodes) {
		return nil, fmt.Errorf("replica %d does not exist: the control plane has %d", i, len(c.nodes))
	}
	return c.nodes[i], nil
}

// Nodes is how many replicas there are.
func (c *clusterTarget) Nodes() int { return len(c.nodes) }

// StartNode runs replica i and waits until it is ready.
func (c *clusterTarget) StartNode(ctx context.Context, i int) error {
	n, err := c.node(i)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.p != nil {
		return nil
	}
	p, err := cpproc.Start(ctx, n.opts)
	if err != nil {
		return fmt.Errorf("replica %d: %w", i, err)
	}
	n.p, n.killing = p, false
	go c.watch(n, p)
	c.env.Events.Add(measure.CPEvent{At: c.env.Clock.Now(), Kind: measure.CPStarted, Detail: fmt.Sprintf("replica %d, pid %d", i, p.PID())})
	return nil
}

// watch waits for replica n's process to end and records an exit nobody asked for as a crash.
func (c *clusterTarget) watch(n *clusterNode, p *cpproc.Process) {
	err := p.ExitErr()
	n.mu.Lock()
	deliberate := n.killing
	n.mu.Unlock()
	if !deliberate {
		detail := fmt.Sprintf("replica %d: exit status 0", n.index)
		if err != nil {
			detail = fmt.Sprintf("replica %d: %v", n.index, err)
		}
		c.env.Events.Add(measure.CPEvent{At: c.env.Clock.Now(), Kind: measure.CPExited, Detail: detail + p.LogTail(3)})
		c.env.Logger.Error("control plane replica exited on its own", "replica", n.index, "err", err)
	}
	n.mu.Lock()
	if n.p == p {
		n.p = nil
	}
	n.mu.Unlock()
}

// KillNode sends replica i SIGKILL and waits for it to be gone.
func (c *clusterTarget) KillNode(ctx context.Context, i int) error {
	return c.takeDown(ctx, i, "SIGKILL", killAndWait)
}

// StopNode sends replica i SIGTERM and waits for it to be gone: it drains its API, hands its
// JetStream leaderships over and exits, or is killed after stopGrace.
func (c *clusterTarget) StopNode(ctx context.Context, i int) error {
	return c.takeDown(ctx, i, "SIGTERM", func(ctx context.Context, p *cpproc.Process) error {
		return p.Shutdown(ctx, stopGrace)
	})
}

// takeDown ends replica i's process with end, as a fault (not a crash), and records it.
func (c *clusterTarget) takeDown(ctx context.Context, i int, how string, end func(context.Context, *cpproc.Process) error) error {
	n, err := c.node(i)
	if err != nil {
		return err
	}
	n.mu.Lock()
	p := n.p
	if p == nil {
		n.mu.Unlock()
		return fmt.Errorf("replica %d is not running", i)
	}
	n.killing = true
	n.mu.Unlock()
	if err := end(ctx, p); err != nil {
		return fmt.Errorf("replica %d: %w", i, err)
	}
	n.mu.Lock()
	if n.p == p {
		n.p = nil
	}
	n.mu.Unlock()
	c.env.Events.Add(measure.CPEvent{At: c.env.Clock.Now(), Kind: measure.CPKilled, Detail: fmt.Sprintf("replica %d, %s", i, how)})
	return nil
}

// NodeRunning reports whether replica i runs.
func (c *clusterTarget) NodeRunning(i int) bool {
	n, err := c.node(i)
	return err == nil && n.process() != nil
}

// PauseNode freezes replica i (SIGSTOP) or thaws it (SIGCONT); a freeze returns once every
// thread of the process has stopped.
func (c *clusterTarget) PauseNode(ctx context.Context, i int, on bool) error {
	n, err := c.node(i)
	if err != nil {
		return err
	}
	p := n.process()
	if p == nil {
		return fmt.Errorf("replica %d is not running", i)
	}
	return pauseProcess(ctx, p.PID(), on)
}

// pauseProcess sends SIGSTOP (on) or SIGCONT to pid; a freeze returns once every thread of the
// process has stopped: a thread busy in the kernel (an fsync on a loaded machine) stops only
// when it leaves it, and until then the process may still answer.
func pauseProcess(ctx context.Context, pid int, on bool) error {
	if !on {
		return syscall.Kill(pid, syscall.SIGCONT)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, stopGrace)
	defer cancel()
	for {
		stopped, err := procstat.Stopped(pid)
		if err != nil || stopped {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("control plane (pid %d) not stopped after SIGSTOP: %w", pid, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Kill, Start and Running act on the whole control plane (cp-kill, cp-restart): every replica.
func (c *clusterTarget) Kill(ctx context.Context) error {
	var errs []error
	for i := range c.nodes {
		if c.NodeRunning(i) {
			errs = append(errs, c.KillNode(ctx, i))
		}
	}
	return errors.Join(errs...)
}

func (c *clusterTarget) Start(ctx context.Context) error {
	errs := make([]error, len(c.nodes))
	var wg sync.WaitGroup
	for i := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.StartNode(ctx, i)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Running reports whether any replica runs.
func (c *clusterTarget) Running() bool {
	for i := range c.nodes {
		if c.NodeRunning(i) {
			return true
		}
	}
	return false
}

// Pause freezes or thaws every replica (cp-pause).
func (c *clusterTarget) Pause(ctx context.Context, on bool) error {
	var errs []error
	for i := range c.nodes {
		if c.NodeRunning(i) {
			errs = append(errs, c.PauseNode(ctx, i, on))
		}
	}
	return errors.Join(errs...)
}

// Settle waits a little for an API that stopped answering through the balancer to answer again
// or for every replica to be seen down.
func (c *clusterTarget) Settle(ctx context.Context) {
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && c.Running() {
		rctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		err := c.api.Ready(rctx)
		cancel()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop shuts every replica down (SIGTERM, then SIGKILL after a grace) and closes the balancer.
func (c *clusterTarget) Stop(ctx context.Context) error {
	errs := make([]error, len(c.nodes))
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		n.mu.Lock()
		p := n.p
		n.killing = true
		n.mu.Unlock()
		if p == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.Shutdown(ctx, stopGrace); err != nil {
				errs[i] = fmt.Errorf("replica %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	if c.lb != nil {
		_ = c.lb.Close()
		c.lb = nil
	}
	return errors.Join(errs...)
}

// NodeAPIURL is replica i's own API address, bypassing the balancer.
func (c *clusterTarget) NodeAPIURL(i int) string { return "https://" + c.nodes[i].opts.Listen }

func (c *clusterTarget) APIURL() string              { return c.apiURL }
func (c *clusterTarget) NATSURL() string             { return c.natsURL }
func (c *clusterTarget) API() API                    { return c.api }
func (c *clusterTarget) Mode() string                { return Process }
func (c *clusterTarget) Faults() faults.ControlPlane { return c }

// PID is the first running replica's process, for resource sampling.
func (c *clusterTarget) PID() int {
	for _, n := range c.nodes {
		if p := n.process(); p != nil {
			return p.PID()
		}
	}
	return 0
}

// Token is a fresh token of the harness's own login.
func (c *clusterTarget) Token(ctx context.Context) (string, error) { return c.api.c.Token(ctx) }

// FleetSecurity is the fleet's gateway credentials.
func (c *clusterTarget) FleetSecurity() *bus.Security { return copySecurity(c.sec) }
