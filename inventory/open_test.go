package inventory_test

import (
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/inventory"
	"github.com/dsnscale/dsnscale/scripts/testservers"
)

func TestOpenErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := l.Addr().String()
	require.NoError(t, l.Close())
	tests := []struct {
		url  string
		dir  string
		err  error
		want string
	}{
		{url: "", dir: "", err: inventory.ErrBadURL, want: "needs a directory"},
		{url: "mysql://u:s3cr3t@h:3306/db", err: inventory.ErrBadURL, want: `scheme "mysql"`},
		{url: "h:5432", err: inventory.ErrBadURL, want: "no scheme"},
		{url: "sqlite://relative/x.db", err: inventory.ErrBadURL, want: "sqlite:///absolute/path.db"},
		{url: "sqlite:///tmp/x.db?mode=ro", err: inventory.ErrBadURL, want: "sqlite:///absolute/path.db"},
		{url: "postgres://u:s3cr3t@h:notaport/db", err: inventory.ErrBadURL, want: "xxxxx"},
		{url: "postgres://u:s3cr3t@" + closed + "/db?sslmode=disable&connect_timeout=2", err: inventory.ErrUnreachable, want: closed},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			_, err := inventory.Open(tt.url, tt.dir, inventory.Options{Timeout: 5 * time.Second, Logger: quiet()})
			require.ErrorIs(t, err, tt.err)
			assert.Contains(t, err.Error(), tt.want)
			assert.NotContains(t, err.Error(), "s3cr3t")
		})
	}
	_, err = inventory.Open("", t.TempDir(), inventory.Options{MaxConns: -1})
	require.ErrorIs(t, err, inventory.ErrInvalid)
}

func TestOpenSQLiteURL(t *testing.T) {
	file := filepath.Join(t.TempDir(), "inv.db")
	inv, err := inventory.Open("sqlite://"+file, "", inventory.Options{Logger: quiet()})
	require.NoError(t, err)
	assert.Equal(t, "sqlite", inv.Dialect())
	require.NoError(t, inv.Close())
	assert.FileExists(t, file)
}

func TestPostgresWrongPassword(t *testing.T) {
	url := testservers.Require(t, testservers.PostgresURL)
	u, err := urlWithPassword(url, "wrong")
	require.NoError(t, err)
	_, err = inventory.Open(u, "", inventory.Options{Logger: quiet()})
	require.ErrorIs(t, err, inventory.ErrBackend, "a refused login is not an unreachable server")
	assert.Contains(t, err.Error(), "28P01")
}

func TestParseURL(t *testing.T) {
	got, err := inventory.ParseURL("sqlite:///var/lib/inv.db")
	require.NoError(t, err)
	assert.Equal(t, inventory.Target{Dialect: "sqlite", File: "/var/lib/inv.db"}, got)

	got, err = inventory.ParseURL("postgresql://u:pw@db.local:5433/inv?sslmode=disable")
	require.NoError(t, err)
	assert.Equal(t, "postgres", got.Dialect)
	assert.Equal(t, "db.local", got.Postgres.Host)
	assert.Equal(t, uint16(5433), got.Postgres.Port)
	assert.Equal(t, "inv", got.Postgres.Database)

	for _, bad := range []string{"postgres://u:s3cr3t@h:5432/db?sslmode=maybe", "postgres://u:s3cr3t@h:notaport/db", "sqlite://h/x.db", "mysql://u:s3cr3t@h/db"} {
		_, err := inventory.ParseURL(bad)
		require.ErrorIs(t, err, inventory.ErrBadURL, bad)
		assert.NotContains(t, err.Error(), "s3cr3t", bad)
	}
}
