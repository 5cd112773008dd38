// Package cpbench measures the reference control plane as users run it, as a process of its own
// (`dsnscale cp serve`) at its default settings with its security on, with thousands of DSN
// sessions connected over shared gateway connections or one mutual-TLS connection each: its
// memory per DSN, how long a change made through the API takes to reach every DSN's ack, and
// how it rides out a reconnect storm.
package cpbench

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/dsnscale/dsnscale/controlplane/agent"
	"github.com/dsnscale/dsnscale/controlplane/client"
	"github.com/dsnscale/dsnscale/controlplane/cpproc"
	"github.com/dsnscale/dsnscale/controlplane/pki"
)

// cpProcess is `dsnscale cp serve` as a child process, with its security on.
type cpProcess struct {
	*cpproc.Process
	api *client.Client
	// busOpts connect the benchmark's shared connections as a fleet gateway.
	busOpts []nats.Option
}

// startCP runs binary as a control plane under dir, with its default settings, and waits until
// it is ready.
func startCP(ctx context.Context, binary, dir string) (*cpProcess, error) {
	p, err := cpproc.Start(ctx, cpproc.Options{Binary: binary, Dir: dir, UserAgent: "dsnscale-cpbench"})
	if err != nil {
		return nil, err
	}
	cp := &cpProcess{Process: p, api: p.API()}
	if err := cp.gateway(ctx); err != nil {
		p.Kill()
		return nil, err
	}
	return cp, nil
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
