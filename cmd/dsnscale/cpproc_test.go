package main

import (
	"context"
	"strings"
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

// TestCPProcessInsecure starts the control plane with --insecure through cpproc: plain HTTP, no
// credentials, and the API answers without a login.
func TestCPProcessInsecure(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := cpproc.Start(ctx, cpproc.Options{Binary: binary, Dir: t.TempDir(), Insecure: true})
	require.NoError(t, err)
	defer p.Stop()
	require.True(t, strings.HasPrefix(p.APIURL(), "http://"), p.APIURL())
	require.Nil(t, p.CAPEM())
	user, pw := p.AdminCredentials()
	require.Empty(t, user+pw)
	_, err = p.API().Create(ctx, &model.Object{APIVersion: model.APIVersion, Kind: model.KindTenant, Metadata: model.Metadata{Name: "acme"}})
	require.NoError(t, err)

	secure, err := cpproc.Start(ctx, cpproc.Options{Binary: binary, Dir: t.TempDir()})
	require.NoError(t, err)
	defer secure.Stop()
	user, pw = secure.AdminCredentials()
	require.Equal(t, cpproc.AdminUser, user)
	require.NotEmpty(t, pw)
}
