// Package cpbench measures the reference control plane as users run it, as a process of its own
// (`dsnscale cp serve`) with thousands of DSN sessions connected: its memory per DSN and how it
// rides out a reconnect storm.
package cpbench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dsnscale/dsnscale/controlplane/agent"
	"github.com/dsnscale/dsnscale/controlplane/client"
	"github.com/dsnscale/dsnscale/controlplane/pki"
)

// cpProcess is `dsnscale cp serve` as a child process, with its security on.
type cpProcess struct {
	cmd     *exec.Cmd
	apiURL  string
	natsURL string
	caFile  string
	pwFile  string
	api     *client.Client
	logPath string
	// busOpts connect the benchmark's shared connections as a fleet gateway.
	busOpts []nats.Option
}

var addrLine = regexp.MustCompile(`^(api|nats|ca|admin-password) (\S+)$`)

// startCP runs binary as a control plane on dataDir and waits until it is ready.
func startCP(ctx context.Context, binary, dataDir string) (*cpProcess, error) {
	if binary == "" {
		return nil, errors.New("no dsnscale binary to run the control plane with")
	}
	logPath := filepath.Join(dataDir, "cp.log")
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, err
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, "cp", "serve", "--data", filepath.Join(dataDir, "data"),
		"--listen", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0", "--max-in-flight", "4096")
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", binary, err)
	}
	p := &cpProcess{cmd: cmd, logPath: logPath}
	go func() { _ = cmd.Wait(); logf.Close() }()

	found := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := addrLine.FindStringSubmatch(sc.Text()); m != nil {
				switch m[1] {
				case "api":
					p.apiURL = m[2]
				case "nats":
					p.natsURL = m[2]
				case "ca":
					p.caFile = m[2]
				case "admin-password":
					p.pwFile = m[2]
					close(found) // the last line cp serve prints
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case <-found:
	case <-time.After(30 * time.Second):
		p.kill()
		return nil, fmt.Errorf("control plane printed no addresses in 30s (see %s)", logPath)
	case <-ctx.Done():
		p.kill()
		return nil, ctx.Err()
	}
	if err := p.login(); err != nil {
		p.kill()
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for p.api.Ready(ctx) != nil {
		if time.Now().After(deadline) {
			p.kill()
			return nil, fmt.Errorf("control plane not ready in 30s (see %s)", logPath)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := p.gateway(ctx); err != nil {
		p.kill()
		return nil, err
	}
	return p, nil
}

// login makes the API client as a user of cp serve would: trusting the CA file it printed, with
// the admin password it wrote.
func (p *cpProcess) login() error {
	ca, err := client.ReadCAFile(p.caFile)
	if err != nil {
		return err
	}
	pw, err := client.ReadPasswordFile(p.pwFile)
	if err != nil {
		return err
	}
	hc, err := client.HTTPClient(ca, 30*time.Second)
	if err != nil {
		return err
	}
	p.api = client.New(p.apiURL, hc, client.WithCredentials("admin", pw), client.WithUserAgent("dsnscale-cpbench"))
	return nil
}

// gateway obtains the fleet gateway identity the benchmark's shared connections use: a gateway
// bootstrap token, then a CSR for a key made here.
func (p *cpProcess) gateway(ctx context.Context) error {
	tok, err := p.api.CreateBootstrapToken(ctx, client.BootstrapTokenSpec{Role: client.RoleGateway, Description: "cp_fleet benchmark"})
	if err != nil {
		return fmt.Errorf("gateway token: %w", err)
	}
	id, err := agent.Admit(ctx, p.api, tok.Secret, "cpbench-gateway", pki.RoleGateway, nil)
	if err != nil {
		return err
	}
	p.busOpts, err = id.NATSOptions()
	return err
}

func (p *cpProcess) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended.
func (p *cpProcess) exited() bool { return p.cmd.Process.Signal(syscall.Signal(0)) != nil }

// stop asks the control plane to shut down and kills it if it lingers.
func (p *cpProcess) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	for i := 0; i < 100 && !p.exited(); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	p.kill()
}

func (p *cpProcess) kill() { _ = p.cmd.Process.Kill() }
