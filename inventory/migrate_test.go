package inventory

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadMigrationsRefusesBadFiles(t *testing.T) {
	tests := []struct {
		name string
		fs   fstest.MapFS
		want string
	}{
		{"bad name", fstest.MapFS{"m/0001_init.sql": {}, "m/2_more.sql": {}}, "2_more.sql: want NNNN_name.sql"},
		{"duplicate version", fstest.MapFS{"m/0001_init.sql": {}, "m/0001_again.sql": {}}, "version 1 used by"},
		{"version zero", fstest.MapFS{"m/0000_init.sql": {}}, "versions start at 0001"},
		{"empty", fstest.MapFS{"m/.keep": {}}, ".keep"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadMigrations(tt.fs, "m")
			require.ErrorIs(t, err, ErrSchema)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	ms, err := loadMigrations(fstest.MapFS{"m/0010_b.sql": {Data: []byte("B")}, "m/0002_a.sql": {Data: []byte("A")}}, "m")
	require.NoError(t, err)
	assert.Equal(t, []Migration{{2, "a", "A"}, {10, "b", "B"}}, ms)
}

func TestEmbeddedMigrationsMatchAcrossDialects(t *testing.T) {
	lite, err := Migrations(dialectSQLite)
	require.NoError(t, err)
	pg, err := Migrations(dialectPostgres)
	require.NoError(t, err)
	require.Equal(t, len(lite), len(pg))
	for i := range lite {
		assert.Equal(t, lite[i].Version, pg[i].Version)
		assert.Equal(t, lite[i].Name, pg[i].Name)
	}
}

func openRawSQLite(t *testing.T) *sql.DB {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "m.db")+"?_txlock=immediate&_pragma=busy_timeout(10000)")
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

func TestFailedMigrationChangesNothing(t *testing.T) {
	db := openRawSQLite(t)
	ms := []Migration{
		{1, "ok", "CREATE TABLE a (x INTEGER);"},
		{2, "broken", "CREATE TABLE b (x INTEGER); THIS IS NOT SQL;"},
	}
	_, err := migrate(context.Background(), db, sqliteDialect, ms, time.Unix(1, 0))
	require.ErrorIs(t, err, ErrSchema)
	assert.Contains(t, err.Error(), "0002_broken")
	var n int
	require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE name IN ('a', 'b', 'schema_migrations')`).Scan(&n))
	assert.Zero(t, n, "the whole run rolled back")

	applied, err := migrate(context.Background(), db, sqliteDialect, ms[:1], time.Unix(1, 0))
	require.NoError(t, err)
	assert.Equal(t, []int{1}, applied)
	applied, err = migrate(context.Background(), db, sqliteDialect, ms[:1], time.Unix(2, 0))
	require.NoError(t, err)
	assert.Empty(t, applied, "idempotent")
}

func TestNewerSchemaIsRefused(t *testing.T) {
	dir := t.TempDir()
	inv, err := Open("", dir, Options{})
	require.NoError(t, err)
	_, err = inv.db.Exec(`INSERT INTO schema_migrations (version, name, applied_ns) VALUES (9999, 'future', 0)`)
	require.NoError(t, err)
	require.NoError(t, inv.Close())
	_, err = Open("", dir, Options{})
	require.ErrorIs(t, err, ErrSchema)
	assert.Contains(t, err.Error(), "schema version 9999")
}

func TestConcurrentOpensMigrateOnce(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			inv, err := Open("", dir, Options{})
			if err == nil {
				err = inv.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	inv, err := Open("", dir, Options{})
	require.NoError(t, err)
	defer inv.Close()
	var n int
	require.NoError(t, inv.db.QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&n))
	ms, err := Migrations(dialectSQLite)
	require.NoError(t, err)
	assert.Equal(t, len(ms), n)
}
