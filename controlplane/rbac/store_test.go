package rbac

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/authn"
	"github.com/dsnscale/dsnscale/internal/natsserver"
)

func startJS(t *testing.T) (jetstream.JetStream, string) {
	t.Helper()
	s, err := natsserver.Start(natsserver.Config{StoreDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(s.Stop)
	return connect(t, s.URL()), s.URL()
}

func connect(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(30*time.Second))
	require.NoError(t, err)
	return js
}

func TestStore(t *testing.T) {
	ctx := context.Background()
	js, _ := startJS(t)
	s, err := OpenStore(ctx, js, "")
	require.NoError(t, err)

	role := Role{Name: "viewer", Rules: []Rule{rule(readOnly, []string{Any}, []string{Any})}}
	require.NoError(t, s.CreateRole(ctx, role))
	require.ErrorIs(t, s.CreateRole(ctx, role), ErrExists)
	created, err := s.PutRole(ctx, role)
	require.NoError(t, err)
	require.False(t, created)
	got, err := s.GetRole(ctx, "viewer")
	require.NoError(t, err)
	require.Equal(t, role, got)
	roles, err := s.ListRoles(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{AdminRole, "viewer"}, []string{roles[0].Name, roles[1].Name})

	b := Binding{Name: "viewers", Role: "viewer", Subjects: []Subject{{SubjectUser, "vic"}}}
	created, err = s.PutBinding(ctx, b)
	require.NoError(t, err)
	require.True(t, created)
	bindings, err := s.ListBindings(ctx)
	require.NoError(t, err)
	require.Len(t, bindings, 2)

	// Built-ins are there and cannot be changed.
	admin, err := s.GetRole(ctx, AdminRole)
	require.NoError(t, err)
	require.Equal(t, BuiltInRoles()[0], admin)
	_, err = s.PutRole(ctx, Role{Name: AdminRole, Rules: role.Rules})
	require.ErrorIs(t, err, ErrBuiltIn)
	require.ErrorIs(t, s.DeleteRole(ctx, AdminRole), ErrBuiltIn)
	require.ErrorIs(t, s.DeleteBinding(ctx, AdminBinding), ErrBuiltIn)
	_, err = s.PutBinding(ctx, Binding{Name: AdminBinding, Role: "viewer", Subjects: b.Subjects})
	require.ErrorIs(t, err, ErrBuiltIn)

	// Invalid objects change nothing.
	_, err = s.PutRole(ctx, Role{Name: "viewer"})
	require.ErrorIs(t, err, ErrInvalid)
	got, err = s.GetRole(ctx, "viewer")
	require.NoError(t, err)
	require.Equal(t, role, got)

	require.NoError(t, s.DeleteRole(ctx, "viewer"))
	_, err = s.GetRole(ctx, "viewer")
	require.ErrorIs(t, err, ErrNotFound)
	require.ErrorIs(t, s.DeleteRole(ctx, "viewer"), ErrNotFound)
	_, err = s.GetBinding(ctx, "no.such")
	require.ErrorIs(t, err, ErrNotFound)
}

func TestFollowKeepsEveryReplicaCurrent(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	js, url := startJS(t)
	writer, err := OpenStore(ctx, js, "")
	require.NoError(t, err)
	require.NoError(t, writer.CreateRole(ctx, Role{Name: "viewer", Rules: []Rule{rule(readOnly, []string{Any}, []string{Any})}}))

	// A replica with its own connection follows the bucket.
	reader, err := OpenStore(ctx, connect(t, url), "")
	require.NoError(t, err)
	a := NewAuthorizer()
	require.NoError(t, reader.Follow(ctx, a, nil))
	vic := &authn.Principal{User: "vic"}
	require.False(t, a.Authorize(vic, VerbGet, "DSN", "").Allowed)

	_, err = writer.PutBinding(ctx, Binding{Name: "viewers", Role: "viewer", Subjects: []Subject{{SubjectUser, "vic"}}})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return a.Authorize(vic, VerbGet, "DSN", "").Allowed }, 5*time.Second, 5*time.Millisecond)

	require.NoError(t, writer.DeleteBinding(ctx, "viewers"))
	require.Eventually(t, func() bool { return !a.Authorize(vic, VerbGet, "DSN", "").Allowed }, 5*time.Second, 5*time.Millisecond)

	// A replica that starts later loads the state before Follow returns.
	_, err = writer.PutBinding(ctx, Binding{Name: "viewers", Role: "viewer", Subjects: []Subject{{SubjectUser, "vic"}}})
	require.NoError(t, err)
	late := NewAuthorizer()
	require.NoError(t, reader.Follow(ctx, late, nil))
	require.True(t, late.Authorize(vic, VerbGet, "DSN", "").Allowed)
}
