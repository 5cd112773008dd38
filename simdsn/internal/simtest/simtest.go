// Package simtest helps tests of the simulated fleet: it hands out the dsnscale binary that the
// process and docker drivers start (package testbin builds it), and starts the reference
// control plane with its credentials.
package simtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dsnscale/dsnscale/controlplane"
	"github.com/dsnscale/dsnscale/controlplane/client"
	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/internal/testbin"
	"github.com/dsnscale/dsnscale/simdsn/bus"
)

// Binary returns the path of the static dsnscale binary that the process and docker drivers
// start, building it on first use.
func Binary(t testing.TB) string { return testbin.Path(t) }

// Map is a small traffic map: racks racks of perRack DSNs, one group, fast telemetry.
func Map(racks, perRack int) string {
	var b []byte
	b = fmt.Appendf(b, "apiVersion: dsnscale/v1\nkind: TrafficMap\nname: simtest\nheartbeat: 10s\nsites:\n  - name: s1\n    racks:\n")
	for i := range racks {
		b = fmt.Appendf(b, "      - {name: r%d, dsns: %d}\n", i+1, perRack)
	}
	b = fmt.Appendf(b, `groups:
  - name: g
    count: %d
    labels: {role: web}
    traffic:
      connectionsPerSecond: 20
      activeFlows: 100
      endpoints: 4
      flows:
        - {probability: 0.5, to: {labels: {app: web}}, protocol: tcp, port: 443}
        - {probability: 0.5, to: {labels: {app: db}}, protocol: tcp, port: 5432}
    telemetry: {series: 12, interval: 5s}
`, racks*perRack)
	return string(b)
}

// SecureCP starts the reference control plane as it runs by default (security on) and returns
// it, an admin client for its API, and the bus security a fleet needs: a gateway token for
// shared connections, or a DSN token (tenant t1, which it creates) for per-DSN ones.
func SecureCP(t testing.TB, perDSN bool) (*controlplane.Server, *client.Client, *bus.Security) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cp, err := controlplane.Start(ctx, controlplane.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", NATSListen: "127.0.0.1:0", BcryptCost: 4})
	if err != nil {
		t.Fatalf("control plane: %v", err)
	}
	t.Cleanup(cp.Stop)
	if err := cp.WaitReady(ctx); err != nil {
		t.Fatalf("control plane: %v", err)
	}
	hc, err := client.HTTPClient(cp.CAPEM(), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	user, pw, err := cp.AdminCredentials()
	if err != nil {
		t.Fatal(err)
	}
	api := client.New(cp.APIURL(), hc, client.WithCredentials(user, pw))
	if _, err := api.Create(ctx, &model.Object{APIVersion: model.APIVersion, Kind: model.KindTenant, Metadata: model.Metadata{Name: "t1"}}); err != nil {
		t.Fatalf("tenant t1: %v", err)
	}
	spec := client.BootstrapTokenSpec{Role: client.RoleGateway}
	if perDSN {
		spec = client.BootstrapTokenSpec{Tenant: "t1", Uses: 10000}
	}
	tok, err := api.CreateBootstrapToken(ctx, spec)
	if err != nil {
		t.Fatalf("bootstrap token: %v", err)
	}
	sec := &bus.Security{CA: string(cp.CAPEM()), APIURL: cp.APIURL()}
	if perDSN {
		sec.BootstrapToken = tok.Secret
	} else {
		sec.GatewayToken = tok.Secret
	}
	return cp, api, sec
}

// BusConn connects to the control plane's bus as a privileged observer (a control-plane
// identity), to watch what DSNs send.
func BusConn(t testing.TB, cp *controlplane.Server) *nats.Conn {
	t.Helper()
	tc, err := cp.BusTLS("simtest-observer")
	if err != nil {
		t.Fatal(err)
	}
	var opts []nats.Option
	if tc != nil {
		opts = append(opts, nats.Secure(tc))
	}
	nc, err := nats.Connect(cp.NATSURL(), opts...)
	if err != nil {
		t.Fatalf("bus: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}
