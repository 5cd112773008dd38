package process_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/internal/testbin"
	"github.com/dsnscale/dsnscale/simdsn"
	"github.com/dsnscale/dsnscale/simdsn/internal/simtest"
	"github.com/dsnscale/dsnscale/simdsn/process"
	"github.com/dsnscale/dsnscale/simdsn/record"
	"github.com/dsnscale/dsnscale/simdsn/stage"
	"github.com/dsnscale/dsnscale/simdsn/trafficmap"
)

func TestMain(m *testing.M) { testbin.Main(m) }

func unitDSNs(f *simdsn.Fleet, unit string) []string {
	for _, u := range f.Units() {
		if u.Name == unit {
			return u.DSNs
		}
	}
	return nil
}

func inState(f *simdsn.Fleet, state string) []string {
	return f.Reports().Select(func(r record.DSNReport) bool { return r.State == state })
}

func TestProcessDriver(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes: not in -short")
	}
	bin := simtest.Binary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The control plane holds some intent (tenant t1), so that DSNs have a revision above 0 to
	// apply and cache.
	cp, _, sec := simtest.SecureCP(t, false)

	reg := stage.Default()
	m, err := trafficmap.Parse("simtest.yaml", []byte(simtest.Map(3, 20)), reg)
	require.NoError(t, err)
	f, err := simdsn.New(ctx, simdsn.Config{Driver: process.Name, NATSURL: cp.NATSURL(), Map: m, Stages: reg,
		Binary: bin, WorkDir: t.TempDir(), PingInterval: time.Second, Seed: 5, Security: sec})
	require.NoError(t, err)
	defer f.Close(context.Background())
	require.NoError(t, f.Start(ctx, time.Second))
	serving := func(n int) func(record.Summary) bool {
		return func(s record.Summary) bool { return s.Count("serving") == n }
	}
	require.NoError(t, f.WaitFor(ctx, serving(60)))
	u, err := f.Deployment().Usage(ctx)
	require.NoError(t, err)
	assert.Positive(t, u.CPUSeconds)
	assert.Positive(t, u.MemoryBytes)

	// Killing a unit's process takes away exactly its DSNs; they come back when it restarts,
	// with the config from their cache files.
	kill, err := f.Inject(ctx, simdsn.FaultSpec{Kind: "unit-kill", Target: simdsn.Target{IDs: []string{"r2"}}})
	require.NoError(t, err)
	assert.Equal(t, []string{"r2"}, kill.Units)
	require.NoError(t, f.WaitFor(ctx, func(s record.Summary) bool { return s.Count("off") == 20 }))
	assert.Equal(t, unitDSNs(f, "r2"), inState(f, "off"))
	assert.Len(t, inState(f, "serving"), 40)
	assert.Equal(t, "down", f.Reports().Units()["r2"].Status)
	require.NoError(t, f.Recover(ctx, kill))
	require.NoError(t, f.WaitFor(ctx, serving(60)))
	for _, id := range unitDSNs(f, "r2") {
		r, _ := f.Reports().DSN(id)
		assert.Equal(t, "cache", findDetail(r, "cache"), id)
		assert.Zero(t, r.NoConfigServing-firstNoConfig(r), "%s served without config after the restart", id)
	}

	// Cut off from the bus, a unit's DSNs notice, keep their config and come back after.
	disc, err := f.Inject(ctx, simdsn.FaultSpec{Kind: "unit-disconnect", Target: simdsn.Target{IDs: []string{"r1"}}})
	require.NoError(t, err)
	require.NoError(t, f.WaitFor(ctx, func(s record.Summary) bool { return s.Count("admitting") == 20 }))
	assert.Equal(t, unitDSNs(f, "r1"), inState(f, "admitting"))
	require.NoError(t, f.Recover(ctx, disc))
	require.NoError(t, f.WaitFor(ctx, serving(60)))

	// DSN faults reach the children.
	crash, err := f.Inject(ctx, simdsn.FaultSpec{Kind: "crash", Target: simdsn.Target{Count: 7}, Seed: 9})
	require.NoError(t, err)
	require.NoError(t, f.WaitFor(ctx, func(s record.Summary) bool { return s.Count("crashed") == 7 }))
	assert.Equal(t, crash.DSNs, inState(f, "crashed"))
	require.NoError(t, f.Recover(ctx, crash))
	require.NoError(t, f.WaitFor(ctx, serving(60)))

	// A paused unit is reported as such and resumes.
	pause, err := f.Inject(ctx, simdsn.FaultSpec{Kind: "unit-pause", Target: simdsn.Target{IDs: []string{"r3"}}})
	require.NoError(t, err)
	assert.Equal(t, "paused", f.Reports().Units()["r3"].Status)
	require.NoError(t, f.Recover(ctx, pause))
	assert.Equal(t, "running", f.Reports().Units()["r3"].Status)
	require.NoError(t, f.WaitFor(ctx, serving(60)))
}

func findDetail(r record.DSNReport, detail string) string {
	for _, a := range r.Applied {
		if a.Detail == detail {
			return detail
		}
	}
	return ""
}

// firstNoConfig is the no-config time of a DSN's first boot (before its first config).
func firstNoConfig(r record.DSNReport) time.Duration {
	var from time.Time
	for _, tr := range r.Transitions {
		if tr.To == "admitting" {
			from = tr.At
			break
		}
	}
	for _, a := range r.Applied {
		if a.Revision > 0 {
			return a.At.Sub(from)
		}
	}
	return 0
}
