package agent_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane"
	"github.com/dsnscale/dsnscale/controlplane/agent"
	"github.com/dsnscale/dsnscale/controlplane/client"
	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/pki"
)

// certTTLRenewingAfter is the certificate lifetime whose renewal falls lead after issue: a
// leaf's life starts pki.ClockSkew before it is issued, so a lifetime of a few seconds, were it
// allowed, would be past pki.RenewAt at once.
func certTTLRenewingAfter(lead time.Duration) time.Duration {
	return (time.Duration(float64(pki.ClockSkew+lead) / pki.RenewFraction)).Round(time.Second) - pki.ClockSkew
}

// TestRunKeepsTheIdentityRenewed runs an agent with its identity on a control plane with
// security on, past two thirds of its certificate's life: it gets a new certificate while Run
// runs, and no more once Run has returned.
func TestRunKeepsTheIdentityRenewed(t *testing.T) {
	const lead = 2 * time.Second
	ttl := certTTLRenewingAfter(lead)
	require.GreaterOrEqual(t, ttl, pki.MinLeafTTL)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cp, err := controlplane.Start(ctx, controlplane.Config{
		DataDir:    t.TempDir(),
		BcryptCost: 4,
		CertTTL:    ttl,
		RateLimits: controlplane.RateLimits{Off: true},
	})
	require.NoError(t, err)
	t.Cleanup(cp.Stop)
	require.NoError(t, cp.WaitReady(ctx))

	hc, err := client.HTTPClient(cp.CAPEM(), 10*time.Second)
	require.NoError(t, err)
	user, pw, err := cp.AdminCredentials()
	require.NoError(t, err)
	admin := client.New(cp.APIURL(), hc, client.WithCredentials(user, pw))
	spec, _ := json.Marshal(model.TenantSpec{})
	_, err = admin.Create(ctx, &model.Object{APIVersion: model.APIVersion, Kind: model.KindTenant, Metadata: model.Metadata{Name: "acme"}, Spec: spec})
	require.NoError(t, err)
	tok, err := admin.CreateBootstrapToken(ctx, client.BootstrapTokenSpec{Tenant: "acme", DSN: "dsn-r"})
	require.NoError(t, err)
	ident, err := agent.Admit(ctx, client.New(cp.APIURL(), hc), tok.Secret, "dsn-r", pki.RoleDSN, nil)
	require.NoError(t, err)
	first := ident.NotAfter()
	certPEM, _, _, err := ident.PEM()
	require.NoError(t, err)
	cert, err := pki.ParseCertificatePEM(certPEM)
	require.NoError(t, err)
	require.Less(t, time.Until(pki.RenewAt(cert)), time.Minute, "the certificate is due for renewal within the test")

	opts, err := ident.NATSOptions()
	require.NoError(t, err)
	nc, err := nats.Connect(cp.NATSURL(), append(opts, nats.Timeout(5*time.Second))...)
	require.NoError(t, err)
	defer nc.Close()

	a, err := agent.New(agent.Config{ID: "dsn-r", Conn: nc, Identity: ident, MaxBackoff: time.Second})
	require.NoError(t, err)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	require.Eventually(t, func() bool { return a.State() == "serving" }, 10*time.Second, 10*time.Millisecond, "the agent is admitted")
	require.Eventually(t, func() bool { return ident.NotAfter().After(first) }, 10*time.Second, 10*time.Millisecond,
		"the certificate is renewed: NotAfter %s did not move", first)
	stop()
	require.NoError(t, <-done)

	// The renewed certificate is the one the identity now presents, and the bus takes it.
	certPEM, _, _, err = ident.PEM()
	require.NoError(t, err)
	cert, err = pki.ParseCertificatePEM(certPEM)
	require.NoError(t, err)
	assert.Equal(t, ident.NotAfter(), cert.NotAfter)
	opts, err = ident.NATSOptions()
	require.NoError(t, err)
	nc2, err := nats.Connect(cp.NATSURL(), append(opts, nats.Timeout(5*time.Second))...)
	require.NoError(t, err)
	nc2.Close()

	// Once Run has returned, the certificate is left alone, though it comes due again.
	stopped := ident.NotAfter()
	time.Sleep(time.Until(pki.RenewAt(cert)) + time.Second)
	assert.Equal(t, stopped, ident.NotAfter(), "renewed after Run returned")
}
