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
)

// cpProcess is `dsnscale cp serve` as a child process.
type cpProcess struct {
	cmd     *exec.Cmd
	natsURL string
	api     *client.Client
	logPath string
}

var addrLine = regexp.MustCompile(`^(api|nats) (\S+)$`)

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
	var apiURL string
	found := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := addrLine.FindStringSubmatch(sc.Text()); m != nil {
				if m[1] == "api" {
					apiURL = m[2]
				} else {
					p.natsURL = m[2]
					close(found)
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
	p.api = client.New(apiURL, nil)
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
