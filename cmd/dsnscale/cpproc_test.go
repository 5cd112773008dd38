package main

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/cpproc"
	"github.com/dsnscale/dsnscale/controlplane/model"
)

// TestCPProcessRestartsOnItsData drives the control plane through package cpproc as the
// benchmarks do: logged in over TLS, killed, started again on the same directory.
func TestCPProcessRestartsOnItsData(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dir := t.TempDir()
	p, err := cpproc.Start(ctx, cpproc.Options{Binary: binary, Dir: dir})
	require.NoError(t, err)
	tenant := &model.Object{APIVersion: model.APIVersion, Kind: model.KindTenant, Metadata: model.Metadata{Name: "acme"}}
	_, err = p.API().Create(ctx, tenant)
	require.NoError(t, err)
	p.Kill()
	require.True(t, p.Exited())

	p, err = cpproc.Start(ctx, cpproc.Options{Binary: binary, Dir: dir})
	require.NoError(t, err)
	defer p.Stop()
	_, err = p.API().Get(ctx, tenant.Key())
	require.NoError(t, err, "the tenant survives a SIGKILL, and the admin password file still logs in")

	_, err = cpproc.Start(ctx, cpproc.Options{Binary: "/nonexistent/dsnscale", Dir: t.TempDir()})
	require.ErrorIs(t, err, cpproc.ErrNotStarted)
}
