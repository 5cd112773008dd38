package cpbench

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane"
	"github.com/dsnscale/dsnscale/controlplane/client"
)

// TestPerDSNAdmissionServes admits a thousand DSNs with one multi-use bootstrap token through a
// real control plane (its admission route, its CA, its bus with mutual TLS), each with a key and
// a connection of its own, and checks that every one of them serves: the control plane counts
// each in sync at the seeded revision, each spent one use of the token, and no use more.
func TestPerDSNAdmissionServes(t *testing.T) {
	const n = 1000
	if testing.Short() {
		t.Skip("admits a thousand DSNs")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cp, err := controlplane.Start(ctx, controlplane.Config{DataDir: t.TempDir(), BcryptCost: 4, HeartbeatInterval: 5 * time.Second})
	require.NoError(t, err)
	defer cp.Stop()
	require.NoError(t, cp.WaitReady(ctx))
	hc, err := client.HTTPClient(cp.CAPEM(), time.Minute)
	require.NoError(t, err)
	user, pw, err := cp.AdminCredentials()
	require.NoError(t, err)
	api := client.New(cp.APIURL(), hc, client.WithCredentials(user, pw))
	_, err = seedIntent(ctx, api)
	require.NoError(t, err)
	rev, err := api.Revision(ctx)
	require.NoError(t, err)
	tok, err := api.CreateBootstrapToken(ctx, client.BootstrapTokenSpec{Tenant: "acme", Uses: n})
	require.NoError(t, err)

	fleet := newPerDSNFleet(ctx)
	defer fleet.stop()
	start := time.Now()
	require.NoError(t, fleet.admit(ctx, api, cp.NATSURL(), tok.Secret, n, newAckTracker(n)))
	require.NoError(t, waitConverged(ctx, api, rev, n, 5*time.Minute))
	t.Logf("%d DSNs admitted, connected and in sync in %s", n, time.Since(start).Round(time.Millisecond))

	c, err := api.Convergence(ctx, rev)
	require.NoError(t, err)
	require.Equal(t, n, c.AtOrPast, "every DSN serves the seeded revision")
	toks, err := api.BootstrapTokens(ctx)
	require.NoError(t, err)
	var got *client.BootstrapToken
	for i := range toks {
		if toks[i].ID == tok.Token.ID {
			got = &toks[i]
		}
	}
	require.NotNil(t, got)
	require.Equal(t, n, got.Used, "each admission spent one use")
	require.Equal(t, "exhausted", got.State)
	// The spent token admits no one more.
	err = fleet.admit(ctx, api, cp.NATSURL(), tok.Secret, 1, newAckTracker(1))
	require.Error(t, err)
	var apiErr *client.APIError
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, 401, apiErr.Code)
}
