package simdsn_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/internal/natsserver"
	"github.com/dsnscale/dsnscale/simdsn"
	"github.com/dsnscale/dsnscale/simdsn/bus"
	"github.com/dsnscale/dsnscale/simdsn/driver"
	"github.com/dsnscale/dsnscale/simdsn/record"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg  simdsn.Config
		want string
	}{
		{simdsn.Config{}, "NATSURL: required"},
		{simdsn.Config{NATSURL: "nats://x:1", Count: -1}, "Count: -1 must not be negative"},
		{simdsn.Config{NATSURL: "nats://x:1", Driver: "nomad"}, `unknown driver: "nomad"`},
		{simdsn.Config{NATSURL: "nats://x:1", Conn: "maybe"}, `Conn: "maybe"`},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		require.Error(t, err)
		assert.ErrorIs(t, err, simdsn.ErrConfig)
		assert.Contains(t, err.Error(), tt.want)
	}
	assert.NoError(t, simdsn.Config{NATSURL: "nats://127.0.0.1:4222"}.Validate())
	// A DSN bootstrap token alone means per-DSN connections; with shared ones asked for, it
	// is not enough.
	dsnToken := &bus.Security{CA: "x", APIURL: "https://cp:1", BootstrapToken: "t"}
	require.NoError(t, simdsn.Config{NATSURL: "tls://127.0.0.1:4222", Security: dsnToken}.Validate())
	err := simdsn.Config{NATSURL: "tls://127.0.0.1:4222", Conn: bus.Shared, Security: dsnToken}.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "shared connections need a gateway identity")
	assert.Contains(t, driver.Names(), "inproc")
	assert.Contains(t, driver.Names(), "kubernetes")
}

func TestSelectAndInject(t *testing.T) {
	srv, err := natsserver.Start(natsserver.Config{StoreDir: t.TempDir()})
	require.NoError(t, err)
	defer srv.Stop()
	ctx := context.Background()
	f, err := simdsn.New(ctx, simdsn.Config{NATSURL: srv.URL(), Count: 80, Seed: 1})
	require.NoError(t, err)
	defer f.Close(ctx)
	require.Len(t, f.Units(), 8)
	assert.Len(t, f.Units()[0].DSNs, 10)

	dsns, units, err := f.Select(simdsn.FaultSpec{Kind: "crash", Target: simdsn.Target{Labels: map[string]string{"site": "east"}}})
	require.NoError(t, err)
	assert.Len(t, dsns, 40)
	assert.Nil(t, units)
	dsns, _, err = f.Select(simdsn.FaultSpec{Kind: "crash", Target: simdsn.Target{Labels: map[string]string{"role": "web"}, Fraction: 0.25}, Seed: 3})
	require.NoError(t, err)
	web := 0
	for _, d := range f.DSNs() {
		if d.Labels["role"] == "web" {
			web++
		}
	}
	assert.Len(t, dsns, (web+3)/4)
	again, _, _ := f.Select(simdsn.FaultSpec{Kind: "crash", Target: simdsn.Target{Labels: map[string]string{"role": "web"}, Fraction: 0.25}, Seed: 3})
	assert.Equal(t, dsns, again, "a seed makes the choice repeatable")
	dsns, _, err = f.Select(simdsn.FaultSpec{Kind: "hang", Target: simdsn.Target{Count: 3, Fraction: 0.5}})
	require.NoError(t, err)
	assert.Len(t, dsns, 3)
	dsns, units, err = f.Select(simdsn.FaultSpec{Kind: "unit-kill", Target: simdsn.Target{Labels: map[string]string{"site": "west"}, Count: 2}})
	require.NoError(t, err)
	assert.Len(t, units, 2)
	assert.Len(t, dsns, 20)

	for _, bad := range []simdsn.FaultSpec{
		{Kind: "meteor"},
		{Kind: "crash", Target: simdsn.Target{Fraction: 1.5}},
		{Kind: "crash", Target: simdsn.Target{IDs: []string{"nope"}}},
		{Kind: "unit-kill", Target: simdsn.Target{IDs: []string{"nope"}}},
		{Kind: "unit-kill", Params: map[string]string{"x": "1"}},
		{Kind: "slow-apply", Params: map[string]string{"delay": "never"}},
	} {
		_, err := f.Inject(ctx, bad)
		assert.Error(t, err, "%+v", bad)
	}
	_, err = f.Inject(ctx, simdsn.FaultSpec{Kind: "crash", Target: simdsn.Target{Labels: map[string]string{"role": "none"}}})
	assert.ErrorIs(t, err, simdsn.ErrNoTarget)
	assert.Empty(t, f.Injections())

	// DSNs start and boot (no control plane answers: they stay admitting); a crash with a
	// duration takes exactly its targets down and lets them go again.
	require.NoError(t, f.Start(ctx, 0))
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	require.NoError(t, f.WaitFor(wctx, func(s record.Summary) bool { return s.Count("admitting") == 80 }))
	inj, err := f.Inject(ctx, simdsn.FaultSpec{Kind: "crash", Target: simdsn.Target{Labels: map[string]string{"rack": "east-r1"}}, Duration: 500 * time.Millisecond})
	require.NoError(t, err)
	assert.Len(t, inj.DSNs, 10)
	require.NoError(t, f.WaitFor(wctx, func(s record.Summary) bool { return s.Count("crashed") == 10 }))
	require.NoError(t, f.WaitFor(wctx, func(s record.Summary) bool { return s.Count("admitting") == 80 }))
	assert.Empty(t, f.Injections())
	for _, id := range inj.DSNs {
		r, ok := f.Reports().DSN(id)
		require.True(t, ok)
		assert.Equal(t, map[string]int{"crash": 1}, r.Faults)
	}

	// Unit faults in process: a unit kill is a crash of the rack's DSNs until recovered.
	uk, err := f.Inject(ctx, simdsn.FaultSpec{Kind: "unit-kill", Target: simdsn.Target{IDs: []string{"west-r2"}}})
	require.NoError(t, err)
	require.NoError(t, f.WaitFor(wctx, func(s record.Summary) bool { return s.Count("crashed") == 10 }))
	crashed := f.Reports().Select(func(r record.DSNReport) bool { return r.State == "crashed" })
	for _, u := range f.Units() {
		if u.Name == "west-r2" {
			assert.Equal(t, u.DSNs, crashed)
		}
	}
	require.NoError(t, f.Recover(ctx, uk))
	require.NoError(t, f.WaitFor(wctx, func(s record.Summary) bool { return s.Count("admitting") == 80 }))
	_, err = f.Inject(ctx, simdsn.FaultSpec{Kind: "unit-disconnect", Target: simdsn.Target{Count: 1}})
	assert.ErrorIs(t, err, driver.ErrUnsupported, "inproc without unit proxies")
}
