package authn

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestKVUsers(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	users, err := OpenUsers(ctx, startJS(t), "", clk.Now)
	require.NoError(t, err)

	alice := User{Name: "alice@example.com", Groups: []string{"ops"}, PasswordHash: mustHash(t, "correct horse battery")}
	require.NoError(t, users.Create(ctx, alice))
	require.ErrorIs(t, users.Create(ctx, alice), ErrExists)
	got, err := users.Get(ctx, "alice@example.com")
	require.NoError(t, err)
	require.Equal(t, []string{"ops"}, got.Groups)
	require.True(t, clk.Now().Equal(got.CreatedAt))

	clk.Add(1e9)
	got.Groups = []string{"ops", "admins"}
	require.NoError(t, users.Update(ctx, got))
	again, err := users.Get(ctx, "alice@example.com")
	require.NoError(t, err)
	require.Equal(t, []string{"ops", "admins"}, again.Groups)
	require.True(t, again.UpdatedAt.After(again.CreatedAt))

	require.NoError(t, users.Create(ctx, User{Name: "bob", PasswordHash: mustHash(t, "another long password")}))
	list, err := users.List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 2)
	require.Equal(t, "alice@example.com", list[0].Name)

	require.NoError(t, users.Delete(ctx, "bob"))
	_, err = users.Get(ctx, "bob")
	require.ErrorIs(t, err, ErrNotFound)
	require.ErrorIs(t, users.Delete(ctx, "bob"), ErrNotFound)
	require.ErrorIs(t, users.Update(ctx, User{Name: "bob", PasswordHash: alice.PasswordHash}), ErrNotFound)

	for _, bad := range []User{
		{Name: "", PasswordHash: alice.PasswordHash},
		{Name: "-x", PasswordHash: alice.PasswordHash},
		{Name: "a b", PasswordHash: alice.PasswordHash},
		{Name: "carol", PasswordHash: "plain text"},
		{Name: "carol", PasswordHash: alice.PasswordHash, Groups: []string{"bad group"}},
	} {
		require.ErrorIs(t, users.Create(ctx, bad), ErrInvalid, "%+v", bad)
	}
	_, err = HashPassword("short", testCost)
	require.ErrorIs(t, err, ErrInvalid)
	_, err = HashPassword(strings.Repeat("x", MaxPasswordLen+1), testCost)
	require.ErrorIs(t, err, ErrInvalid)
}

func TestLocalProvider(t *testing.T) {
	ctx := context.Background()
	users, err := OpenUsers(ctx, startJS(t), "", nil)
	require.NoError(t, err)
	require.NoError(t, users.Create(ctx, User{Name: "alice", Groups: []string{"ops"}, PasswordHash: mustHash(t, "correct horse battery")}))
	require.NoError(t, users.Create(ctx, User{Name: "mallory", Disabled: true, PasswordHash: mustHash(t, "correct horse battery")}))
	idp := &LocalProvider{Users: users, Cost: testCost}

	p, err := idp.Authenticate(ctx, "alice", "correct horse battery")
	require.NoError(t, err)
	require.Equal(t, Principal{User: "alice", Groups: []string{"ops"}}, p)

	for _, c := range [][2]string{
		{"alice", "wrong password!!"},
		{"nobody", "correct horse battery"},
		{"mallory", "correct horse battery"},
		{"bad name", "correct horse battery"},
		{"alice", strings.Repeat("x", 1000)},
		{"alice", ""},
	} {
		_, err := idp.Authenticate(ctx, c[0], c[1])
		require.ErrorIs(t, err, ErrBadCredentials, "%q", c)
	}
}

func TestEnsureAdminWritesAPrivatePasswordFile(t *testing.T) {
	ctx := context.Background()
	users, err := OpenUsers(ctx, startJS(t), "", nil)
	require.NoError(t, err)
	dir := t.TempDir()
	created, err := EnsureAdmin(ctx, users, AdminConfig{DataDir: dir, Cost: testCost})
	require.NoError(t, err)
	require.True(t, created)

	path := filepath.Join(dir, AdminPasswordFile)
	info, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	password := strings.TrimSpace(string(b))
	require.GreaterOrEqual(t, len(password), MinPasswordLen)

	idp := &LocalProvider{Users: users, Cost: testCost}
	p, err := idp.Authenticate(ctx, DefaultAdminUser, password)
	require.NoError(t, err)
	require.True(t, p.InGroup(AdminGroup))

	// A second start changes nothing.
	created, err = EnsureAdmin(ctx, users, AdminConfig{DataDir: dir, Cost: testCost})
	require.NoError(t, err)
	require.False(t, created)
	b2, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, b, b2)
}

func TestEnsureAdminFromPasswordFile(t *testing.T) {
	ctx := context.Background()
	users, err := OpenUsers(ctx, startJS(t), "", nil)
	require.NoError(t, err)
	dir := t.TempDir()
	pwFile := filepath.Join(t.TempDir(), "pw")

	require.NoError(t, os.WriteFile(pwFile, []byte("short\n"), 0o600))
	_, err = EnsureAdmin(ctx, users, AdminConfig{DataDir: dir, PasswordFile: pwFile, Cost: testCost})
	require.ErrorIs(t, err, ErrConfig)
	_, err = users.Get(ctx, DefaultAdminUser)
	require.ErrorIs(t, err, ErrNotFound, "a refused password creates nothing")

	require.NoError(t, os.WriteFile(pwFile, []byte("a given long password\n"), 0o600))
	created, err := EnsureAdmin(ctx, users, AdminConfig{DataDir: dir, PasswordFile: pwFile, Cost: testCost})
	require.NoError(t, err)
	require.True(t, created)
	_, err = os.Stat(filepath.Join(dir, AdminPasswordFile))
	require.True(t, os.IsNotExist(err), "nothing is written when the password is given")
	_, err = (&LocalProvider{Users: users, Cost: testCost}).Authenticate(ctx, DefaultAdminUser, "a given long password")
	require.NoError(t, err)

	_, err = EnsureAdmin(ctx, users, AdminConfig{})
	require.ErrorIs(t, err, ErrConfig)
}
