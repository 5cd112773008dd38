package simbench

import (
	"context"
	"fmt"

	"github.com/dsnscale/dsnscale/controlplane/client"
	"github.com/dsnscale/dsnscale/controlplane/cpproc"
	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/simdsn/bus"
)

// cpProcess is `dsnscale cp serve` as a child process, with its security on.
type cpProcess struct {
	*cpproc.Process
	natsURL string
	apiURL  string
	caPEM   []byte
	api     *client.Client
}

func startCP(ctx context.Context, binary, dir string) (*cpProcess, error) {
	p, err := cpproc.Start(ctx, cpproc.Options{Binary: binary, Dir: dir, Args: []string{"--max-in-flight", "4096"}, UserAgent: "dsnscale-simbench"})
	if err != nil {
		return nil, err
	}
	return &cpProcess{Process: p, natsURL: p.NATSURL(), apiURL: p.APIURL(), caPEM: p.CAPEM(), api: p.API()}, nil
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
