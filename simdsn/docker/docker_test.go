package docker_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/client"
	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/internal/testbin"
	"github.com/dsnscale/dsnscale/scripts/testservers"
	"github.com/dsnscale/dsnscale/simdsn"
	"github.com/dsnscale/dsnscale/simdsn/docker"
	"github.com/dsnscale/dsnscale/simdsn/internal/simtest"
	"github.com/dsnscale/dsnscale/simdsn/record"
	"github.com/dsnscale/dsnscale/simdsn/stage"
	"github.com/dsnscale/dsnscale/simdsn/trafficmap"
)

func TestMain(m *testing.M) { testbin.Main(m) }

func TestDockerDriver(t *testing.T) {
	if testing.Short() {
		t.Skip("starts containers: not in -short")
	}
	testservers.RequireTool(t, "the Docker engine does not answer `docker info`, so the docker driver", docker.Available())
	bin := simtest.Binary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cp, api, sec := simtest.SecureCP(t, false)
	rev, err := api.Revision(ctx)
	require.NoError(t, err)

	reg := stage.Default()
	m, err := trafficmap.Parse("simtest.yaml", []byte(simtest.Map(4, 50)), reg)
	require.NoError(t, err)
	f, err := simdsn.New(ctx, simdsn.Config{Driver: docker.Name, NATSURL: cp.NATSURL(), Map: m, Stages: reg,
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

	// Killing one container takes away exactly its 50 DSNs...
	kill, err := f.Inject(ctx, simdsn.FaultSpec{Kind: "unit-kill", Target: simdsn.Target{IDs: []string{"r3"}}})
	require.NoError(t, err)
	require.Len(t, kill.DSNs, 50)
	require.NoError(t, f.WaitFor(ctx, func(s record.Summary) bool { return s.Count("off") == 50 && s.Count("serving") == 150 }))
	off := f.Reports().Select(func(r record.DSNReport) bool { return r.State == "off" })
	assert.Equal(t, kill.DSNs, off)
	// ... and the control plane hears nothing more from them, while the others heartbeat on.
	var alive string
	for _, d := range f.DSNs() {
		if d.Unit != "r3" {
			alive = d.ID
			break
		}
	}
	dead := kill.DSNs[0]
	hb0 := map[string]string{dead: heartbeat(t, api, dead), alive: heartbeat(t, api, alive)}
	since := time.Now()
	// A heartbeat is due every 10 s; on a loaded machine give it a while.
	require.Eventually(t, func() bool { return heartbeat(t, api, alive) != hb0[alive] }, 45*time.Second, 500*time.Millisecond,
		"a DSN of a running container heartbeats on")
	time.Sleep(time.Until(since.Add(11 * time.Second))) // longer than a heartbeat interval
	assert.Equal(t, hb0[dead], heartbeat(t, api, dead), "a DSN of the killed container is silent")

	// They return when it restarts (same container: their cache files are still there).
	require.NoError(t, f.Recover(ctx, kill))
	require.NoError(t, f.WaitFor(ctx, converged))
	for _, id := range kill.DSNs {
		r, _ := f.Reports().DSN(id)
		last := r.Applied[len(r.Applied)-1]
		assert.Equal(t, rev, last.Revision, id)
	}

	// A restarted container goes down and comes back by itself.
	before := time.Now()
	_, err = f.Inject(ctx, simdsn.FaultSpec{Kind: "unit-restart", Target: simdsn.Target{IDs: []string{"r1"}}})
	require.NoError(t, err)
	require.NoError(t, f.WaitFor(ctx, func(record.Summary) bool {
		st := f.Reports().Units()["r1"]
		return st.Status == "up" && st.Since.After(before)
	}))
	require.NoError(t, f.WaitFor(ctx, converged))

	// A disconnected container's DSNs lose the bus, keep their config, and come back.
	disc, err := f.Inject(ctx, simdsn.FaultSpec{Kind: "unit-disconnect", Target: simdsn.Target{IDs: []string{"r4"}}})
	require.NoError(t, err)
	require.NoError(t, f.WaitFor(ctx, func(s record.Summary) bool { return s.Count("admitting") == 50 && s.AtOrPast(rev) == 200 }))
	require.NoError(t, f.Recover(ctx, disc))
	require.NoError(t, f.WaitFor(ctx, converged))
}

func heartbeat(t *testing.T, api *client.Client, id string) string {
	o, err := api.DSN(context.Background(), id)
	require.NoError(t, err)
	var st model.DSNStatus
	require.NoError(t, json.Unmarshal(o.Status, &st))
	return st.LastHeartbeat
}
