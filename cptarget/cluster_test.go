package cptarget

import (
	"context"
	"fmt"
	"github.com/dsnscale/dsnscale/controlplane/client"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/faults"
	"github.com/dsnscale/dsnscale/internal/testbin"
	"github.com/dsnscale/dsnscale/scenarios/measure"
)

func tenant(t *testing.T, name string) *model.Object {
	o := &model.Object{APIVersion: model.APIVersion, Kind: model.KindTenant, Metadata: model.Metadata{Name: name}}
	require.NoError(t, o.EncodeSpec(model.TenantSpec{DisplayName: name}))
	return o
}

// nodeAPI is a client of replica i alone, past the balancer.
func nodeAPI(t *testing.T, c *clusterTarget, i int) *clientAPI {
	pw := ""
	for _, n := range c.nodes {
		if p := n.process(); p != nil {
			_, pw = p.AdminCredentials()
			break
		}
	}
	api, err := newSecureClientAPI(c.NodeAPIURL(i), c.caPEM, "admin", pw)
	require.NoError(t, err)
	return api
}

// A three-replica target serves its API through the balancer while a replica is killed,
// frozen or started again: writes through the balancer keep succeeding, and writes to a
// surviving replica directly do too.
func TestClusterTargetSurvivesALostReplica(t *testing.T) {
	bin := testbin.Path(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	events := &measure.CPEvents{}
	start := time.Now()
	tg, err := Open(ctx, Config{Mode: Process, Replicas: 3, Binary: bin, Dir: t.TempDir()}, Env{Events: events})
	require.NoError(t, err)
	t.Logf("three replicas ready in %s", time.Since(start).Round(time.Millisecond))
	defer tg.Stop(context.Background())
	c := tg.(*clusterTarget)
	require.Equal(t, 3, c.Nodes())
	require.Len(t, strings.Split(tg.NATSURL(), ","), 3, "DSNs get every replica's bus")
	require.NotNil(t, tg.FleetSecurity())

	n := 0
	write := func() error {
		n++
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err := tg.API().Create(wctx, tenant(t, fmt.Sprintf("w-%d", n)))
		return err
	}
	// writesFlow waits for a write through the balancer to succeed, then wants ten in a row.
	writesFlow := func(what string) {
		require.Eventually(t, func() bool { return write() == nil }, 30*time.Second, 100*time.Millisecond, "no write succeeded %s", what)
		for range 10 {
			require.NoError(t, write(), what)
		}
	}
	writesFlow("with every replica up")

	kill, err := faults.Default.New(faults.Spec{Kind: "cp-node-kill", Params: map[string]string{"node": "1"}}, faults.Env{ControlPlane: tg.Faults()})
	require.NoError(t, err)
	require.NoError(t, kill.Inject(ctx))
	require.False(t, c.NodeRunning(1))
	writesFlow("with replica 1 killed")
	_, err = nodeAPI(t, c, 2).Create(ctx, tenant(t, "direct-2"))
	require.NoError(t, err, "a survivor serves writes itself")

	require.NoError(t, kill.Recover(ctx))
	require.True(t, c.NodeRunning(1))
	// The replica started again on its data has the writes made while it was down.
	// Logged in before the freeze: a login while a frozen replica leads the token bucket can
	// wait out the bus's stale-route detection, which is longer than this test.
	survivor := nodeAPI(t, c, 1)
	got, err := survivor.c.Get(ctx, model.Key{Kind: model.KindTenant, Name: "direct-2"})
	require.NoError(t, err)
	require.Equal(t, "direct-2", got.Metadata.Name)

	pause, err := faults.Default.New(faults.Spec{Kind: "cp-node-pause", Params: map[string]string{"node": "0"}}, faults.Env{ControlPlane: tg.Faults()})
	require.NoError(t, err)
	require.NoError(t, pause.Inject(ctx))
	frozen, cancelFrozen := context.WithTimeout(ctx, 500*time.Millisecond)
	_, err = nodeAPI(t, c, 0).c.Get(frozen, model.Key{Kind: model.KindTenant, Name: "direct-2"})
	cancelFrozen()
	require.Error(t, err, "a frozen replica answers nothing")
	require.Eventually(t, func() bool { return c.lb.down[0].Load() }, 10*time.Second, 50*time.Millisecond, "the balancer's health check marks the frozen replica down")
	writesFlow("with replica 0 frozen")
	// A survivor serves writes once the stores the frozen replica led have elected new leaders,
	// which on a loaded machine takes a while.
	require.Eventually(t, func() bool {
		_, err = survivor.Create(ctx, tenant(t, "direct-1"))
		return err == nil || client.IsConflict(err)
	}, 60*time.Second, 500*time.Millisecond, "a survivor serves writes while another is frozen: %v", err)
	require.NoError(t, pause.Recover(ctx))
	require.Eventually(t, func() bool {
		_, err := nodeAPI(t, c, 0).c.Get(ctx, model.Key{Kind: model.KindTenant, Name: "direct-1"})
		return err == nil
	}, 30*time.Second, 200*time.Millisecond, "the thawed replica serves again, with the writes made while it was frozen")

	var kinds []string
	for _, e := range events.Events() {
		kinds = append(kinds, e.Kind)
	}
	require.Equal(t, []string{measure.CPStarted, measure.CPStarted, measure.CPStarted, measure.CPKilled, measure.CPStarted}, kinds, "no crash; the kill and the restart are on record")
}

// A node fault needs a control plane of several replicas and a replica that exists.
func TestNodeFaultsRefuseASingleReplica(t *testing.T) {
	ctx := context.Background()
	tg, err := Open(ctx, Config{Mode: Process, Binary: testbin.Path(t), Dir: t.TempDir()}, Env{})
	require.NoError(t, err)
	defer tg.Stop(context.Background())
	for _, k := range []string{"cp-node-kill", "cp-node-pause"} {
		_, err := faults.Default.New(faults.Spec{Kind: k}, faults.Env{ControlPlane: tg.Faults()})
		require.ErrorIs(t, err, faults.ErrUnsupported, k)
		require.ErrorContains(t, err, "several replicas")
	}
}
