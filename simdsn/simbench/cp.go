package simbench

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

	"github.com/dsnscale/dsnscale/controlplane/client"
	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/simdsn/bus"
)

// cpProcess is `dsnscale cp serve` as a child process, with its security on.
type cpProcess struct {
	cmd     *exec.Cmd
	natsURL string
	apiURL  string
	caPEM   []byte
	api     *client.Client
	logPath string
}

var addrLine = regexp.MustCompile(`^(api|nats|ca|admin-password) (\S+)$`)

func startCP(ctx context.Context, binary, dir string) (*cpProcess, error) {
	if binary == "" {
		return nil, errors.New("no dsnscale binary to run the control plane with")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "cp.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, "cp", "serve", "--data", filepath.Join(dir, "cp-data"),
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
		return nil, fmt.Errorf("starting %s cp serve: %w", binary, err)
	}
	go func() { _ = cmd.Wait(); logf.Close() }()
	p := &cpProcess{cmd: cmd, logPath: logPath}
	var caFile, pwFile string
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
					caFile = m[2]
				case "admin-password":
					pwFile = m[2]
					close(found) // the last line cp serve prints
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case <-found:
	case <-time.After(30 * time.Second):
		p.stop()
		return nil, fmt.Errorf("control plane printed no addresses in 30s (see %s)", logPath)
	case <-ctx.Done():
		p.stop()
		return nil, ctx.Err()
	}
	// The credential flow of a user of cp serve: trust the CA it printed, log in with the admin
	// password it wrote.
	if p.caPEM, err = client.ReadCAFile(caFile); err != nil {
		p.stop()
		return nil, err
	}
	pw, err := client.ReadPasswordFile(pwFile)
	if err != nil {
		p.stop()
		return nil, err
	}
	hc, err := client.HTTPClient(p.caPEM, 30*time.Second)
	if err != nil {
		p.stop()
		return nil, err
	}
	p.api = client.New(p.apiURL, hc, client.WithCredentials("admin", pw), client.WithUserAgent("dsnscale-simbench"))
	deadline := time.Now().Add(30 * time.Second)
	for p.api.Ready(ctx) != nil {
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("control plane not ready in 30s (see %s)", logPath)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return p, nil
}

// security creates the bootstrap token a fleet needs and returns its bus security: a gateway
// token for shared connections, a DSN token of tenant bench (seedIntent makes it) with a use per
// DSN for per-DSN ones.
func (p *cpProcess) security(ctx context.Context, mode bus.Mode, dsns int) (*bus.Security, error) {
	spec := client.BootstrapTokenSpec{Role: client.RoleGateway, Description: "sim benchmark"}
	if mode == bus.PerDSN {
		spec = client.BootstrapTokenSpec{Tenant: "bench", Uses: dsns, Description: "sim benchmark"}
	}
	tok, err := p.api.CreateBootstrapToken(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("bootstrap token: %w", err)
	}
	sec := &bus.Security{CA: string(p.caPEM), APIURL: p.apiURL}
	if mode == bus.PerDSN {
		sec.BootstrapToken = tok.Secret
	} else {
		sec.GatewayToken = tok.Secret
	}
	return sec, nil
}

func (p *cpProcess) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	for i := 0; i < 100 && p.cmd.Process.Signal(syscall.Signal(0)) == nil; i++ {
		time.Sleep(50 * time.Millisecond)
	}
	_ = p.cmd.Process.Kill()
}

// seedIntent gives the control plane a tenant and a policy for the default map's web DSNs,
// so DSNs hold a real config and decide flows with it.
func seedIntent(ctx context.Context, p *cpProcess) error {
	if _, err := p.api.Create(ctx, &model.Object{APIVersion: model.APIVersion, Kind: model.KindTenant, Metadata: model.Metadata{Name: "bench"}}); err != nil {
		return fmt.Errorf("seeding a tenant: %w", err)
	}
	pol := &model.Object{APIVersion: model.APIVersion, Kind: model.KindPolicy, Metadata: model.Metadata{Name: "web", Tenant: "bench"}}
	spec := model.PolicySpec{Selector: model.Selector{MatchLabels: map[string]string{"role": "web"}}, Rules: []model.Rule{
		{Action: model.ActionAllow, To: model.Peer{Labels: map[string]string{"app": "web"}}, Protocol: "tcp", Ports: []string{"80", "443"}},
		{Action: model.ActionAllow, To: model.Peer{Labels: map[string]string{"app": "api"}}, Protocol: "tcp", Ports: []string{"8080"}},
	}}
	if err := pol.EncodeSpec(spec); err != nil {
		return err
	}
	if _, err := p.api.Create(ctx, pol); err != nil {
		return fmt.Errorf("seeding a policy: %w", err)
	}
	return nil
}
