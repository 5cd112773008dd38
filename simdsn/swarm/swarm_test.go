package swarm_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	dswarm "github.com/docker/docker/api/types/swarm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/internal/testbin"
	"github.com/dsnscale/dsnscale/scripts/testservers"
	"github.com/dsnscale/dsnscale/simdsn"
	"github.com/dsnscale/dsnscale/simdsn/docker"
	"github.com/dsnscale/dsnscale/simdsn/internal/simtest"
	"github.com/dsnscale/dsnscale/simdsn/record"
	"github.com/dsnscale/dsnscale/simdsn/stage"
	"github.com/dsnscale/dsnscale/simdsn/swarm"
	"github.com/dsnscale/dsnscale/simdsn/trafficmap"
)

func TestMain(m *testing.M) { testbin.Main(m) }

func TestCheckManager(t *testing.T) {
	err := swarm.CheckManager(dswarm.Info{LocalNodeState: dswarm.LocalNodeStateInactive})
	require.ErrorIs(t, err, swarm.ErrNoSwarm)
	assert.Contains(t, err.Error(), "docker swarm init")
	err = swarm.CheckManager(dswarm.Info{LocalNodeState: dswarm.LocalNodeStateActive, NodeID: "n1"})
	require.ErrorIs(t, err, swarm.ErrNoSwarm)
	assert.Contains(t, err.Error(), "worker")
	assert.NoError(t, swarm.CheckManager(dswarm.Info{LocalNodeState: dswarm.LocalNodeStateActive, ControlAvailable: true}))
}

func TestLaunchRefusesAnEngineInNoSwarm(t *testing.T) {
	if testing.Short() {
		t.Skip("talks to the Docker engine: not in -short")
	}
	testservers.RequireTool(t, "the Docker engine does not answer `docker info`, so the swarm driver", docker.Available())
	if err := swarm.Available(); err == nil {
		t.Skip("the engine manages a swarm already: nothing to refuse")
	}
	bin := simtest.Binary(t) // built first: a slow build must not eat the launch's deadline
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	_, err := simdsn.New(ctx, simdsn.Config{Driver: swarm.Name, NATSURL: "nats://127.0.0.1:1", Count: 10,
		Binary: bin, WorkDir: dir})
	require.ErrorIs(t, err, swarm.ErrNoSwarm)
	assert.Contains(t, err.Error(), "docker swarm init")
	assert.NoDirExists(t, filepath.Join(dir, "docker-context"), "refused before building an image")
}

func TestSwarmDriver(t *testing.T) {
	if testing.Short() {
		t.Skip("starts swarm services: not in -short")
	}
	testservers.RequireTool(t, "the Docker engine does not answer `docker info`, so the swarm driver", docker.Available())
	bin := simtest.Binary(t) // before the swarm: building may take long
	swarm.EnsureSwarm(t)
	require.NoError(t, swarm.Available())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cp, api, sec := simtest.SecureCP(t, false)
	rev, err := api.Revision(ctx)
	require.NoError(t, err)

	reg := stage.Default()
	m, err := trafficmap.Parse("simtest.yaml", []byte(simtest.Map(4, 50)), reg)
	require.NoError(t, err)
	f, err := simdsn.New(ctx, simdsn.Config{Driver: swarm.Name, NATSURL: cp.NATSURL(), Map: m, Stages: reg,
		Binary: bin, WorkDir: t.TempDir(), PingInterval: time.Second, Seed: 3, Security: sec})
	require.NoError(t, err)
	defer func() { assert.NoError(t, f.Close(context.Background())) }()
	require.NoError(t, f.Start(ctx, time.Second))
	converged := func(s record.Summary) bool { return s.Count("serving") == 200 && s.AtOrPast(rev) == 200 }
	require.NoError(t, f.WaitFor(ctx, converged))
	require.Eventually(t, func() bool {
		c, err := api.Convergence(ctx, rev)
		return err == nil && c.AtOrPast == 200
	}, 30*time.Second, 250*time.Millisecond)
	u, err := f.Deployment().Usage(ctx)
	require.NoError(t, err)
	assert.Positive(t, u.MemoryBytes)
	assert.Positive(t, u.CPUSeconds)
	upSince := func(unit string, t0 time.Time) func(record.Summary) bool {
		return func(record.Summary) bool {
			st := f.Reports().Units()[unit]
			return st.Status == "up" && st.Since.After(t0)
		}
	}

	// Killing a unit's task takes away exactly its 50 DSNs...
	killedAt := time.Now()
	kill, err := f.Inject(ctx, simdsn.FaultSpec{Kind: "unit-kill", Target: simdsn.Target{IDs: []string{"r3"}}})
	require.NoError(t, err)
	require.Len(t, kill.DSNs, 50)
	require.NoError(t, f.WaitFor(ctx, func(s record.Summary) bool { return s.Count("off") == 50 && s.Count("serving") == 150 }))
	off := f.Reports().Select(func(r record.DSNReport) bool { return r.State == "off" })
	assert.Equal(t, kill.DSNs, off)
	// ... and Swarm's restart policy brings them back in a new task, before the fault is lifted.
	require.NoError(t, f.WaitFor(ctx, upSince("r3", killedAt)))
	require.NoError(t, f.WaitFor(ctx, converged))
	for _, id := range kill.DSNs {
		r, _ := f.Reports().DSN(id)
		assert.Equal(t, rev, r.Applied[len(r.Applied)-1].Revision, id)
	}
	require.NoError(t, f.Recover(ctx, kill))

	// A stopped unit stays down (its service scaled to zero) until the stop is lifted.
	stoppedAt := time.Now()
	stop, err := f.Inject(ctx, simdsn.FaultSpec{Kind: "unit-stop", Target: simdsn.Target{IDs: []string{"r2"}}})
	require.NoError(t, err)
	require.NoError(t, f.WaitFor(ctx, func(s record.Summary) bool { return s.Count("off") == 50 && s.Count("serving") == 150 }))
	require.Never(t, func() bool { return upSince("r2", stoppedAt)(record.Summary{}) }, 3*time.Second, 250*time.Millisecond,
		"Swarm started a stopped unit again")
	require.NoError(t, f.Recover(ctx, stop))
	require.NoError(t, f.WaitFor(ctx, upSince("r2", stoppedAt)))
	require.NoError(t, f.WaitFor(ctx, converged))

	// A restarted unit (a forced update of its service) goes down and comes back by itself.
	before := time.Now()
	_, err = f.Inject(ctx, simdsn.FaultSpec{Kind: "unit-restart", Target: simdsn.Target{IDs: []string{"r1"}}})
	require.NoError(t, err)
	require.NoError(t, f.WaitFor(ctx, upSince("r1", before)))
	require.NoError(t, f.WaitFor(ctx, converged))
}
