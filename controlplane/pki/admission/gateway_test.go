package admission

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/pki"
)

func TestGatewayTokens(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()

	for _, bad := range []struct {
		spec  Spec
		field string
	}{
		{Spec{Role: RoleGateway, Tenant: "acme"}, "tenant"},
		{Spec{Role: RoleGateway, Labels: map[string]string{"a": "b"}}, "labels"},
		{Spec{Role: "operator", Tenant: "acme"}, "role"},
		{Spec{}, "tenant"},
	} {
		err := bad.spec.Validate()
		require.ErrorIs(t, err, ErrInvalid, "%+v", bad.spec)
		require.ErrorContains(t, err, bad.field)
	}

	secret, tok := e.create(t, Spec{Role: RoleGateway, Uses: 3})
	require.Equal(t, RoleGateway, tok.Role)
	require.Equal(t, pki.RoleGateway, tok.IdentityRole())

	// A CSR for a DSN identity does not get a gateway certificate, and spends nothing.
	_, err := e.adm.Admit(ctx, Request{Token: secret, DSN: "gw-1", CSR: csrFor(t, "gw-1")})
	require.ErrorIs(t, err, pki.ErrIdentity)

	key, err := pki.NewKey()
	require.NoError(t, err)
	csr, err := pki.NewCSRFor(key, pki.Identity{Name: "gw-1", Role: pki.RoleGateway})
	require.NoError(t, err)
	g, err := e.adm.Admit(ctx, Request{Token: secret, DSN: "gw-1", CSR: csr})
	require.NoError(t, err)
	require.Equal(t, pki.RoleGateway, g.Role)
	cert, err := pki.ParseCertificatePEM(g.Certificate)
	require.NoError(t, err)
	id, err := pki.IdentityOf(cert)
	require.NoError(t, err)
	require.Equal(t, pki.Identity{Name: "gw-1", Role: pki.RoleGateway}, id)
	got, err := e.tokens.Get(ctx, tok.ID)
	require.NoError(t, err)
	require.Equal(t, 1, got.Used)

	// A DSN token does not make a gateway.
	dsnSecret, dsnTok := e.create(t, Spec{Tenant: "acme"})
	csr2, err := pki.NewCSRFor(key, pki.Identity{Name: "gw-2", Role: pki.RoleGateway})
	require.NoError(t, err)
	_, err = e.adm.Admit(ctx, Request{Token: dsnSecret, DSN: "gw-2", CSR: csr2})
	require.ErrorIs(t, err, pki.ErrIdentity)
	got, err = e.tokens.Get(ctx, dsnTok.ID)
	require.NoError(t, err)
	require.Zero(t, got.Used, "a refused CSR spends no use")
}
