package inventory

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations
var migrationsFS embed.FS

// Migration is one versioned schema change: migrations/<dialect>/<NNNN>_<name>.sql.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

var migrationName = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.sql$`)

// Migrations returns the embedded migrations of a dialect ("sqlite" or "postgres") in version
// order.
func Migrations(dialect string) ([]Migration, error) {
	return loadMigrations(migrationsFS, path.Join("migrations", dialect))
}

// loadMigrations reads dir, refusing a file that is not a well-named migration and duplicate
// versions, so that a typo cannot silently skip a schema change.
func loadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("%w: reading migrations %s: %v", ErrSchema, dir, err)
	}
	var out []Migration
	seen := map[int]string{}
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if e.IsDir() || m == nil {
			return nil, fmt.Errorf("%w: %s/%s: want NNNN_name.sql", ErrSchema, dir, e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		if v == 0 {
			return nil, fmt.Errorf("%w: %s/%s: versions start at 0001", ErrSchema, dir, e.Name())
		}
		if other, dup := seen[v]; dup {
			return nil, fmt.Errorf("%w: %s: version %d used by %s and %s", ErrSchema, dir, v, other, e.Name())
		}
		seen[v] = e.Name()
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("%w: %s/%s: %v", ErrSchema, dir, e.Name(), err)
		}
		out = append(out, Migration{Version: v, Name: m[2], SQL: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s: no migrations", ErrSchema, dir)
	}
	return out, nil
}

// migrate applies the migrations the database lacks, all in one transaction, and returns the
// versions it applied. Concurrent migrators serialize (PostgreSQL: an advisory lock; SQLite: the
// write lock an immediate transaction takes), so each migration runs once.
func migrate(ctx context.Context, db *sql.DB, d dialect, ms []Migration, now time.Time) (applied []int, err error) {
	tx, err := db.BeginTx(ctx, nil)
	// SQLite answers "busy" at once, without waiting out busy_timeout, to a connection that
	// begins while another is still switching a new database to WAL: wait a little and ask again.
	for wait := 20 * time.Millisecond; err != nil && d.name == dialectSQLite && strings.Contains(err.Error(), "SQLITE_BUSY") && wait < 5*time.Second; wait *= 2 {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: starting migration: %w", ErrBackend, ctx.Err())
		case <-time.After(wait):
		}
		tx, err = db.BeginTx(ctx, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: starting migration: %w", ErrBackend, err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if d.lockSQL != "" {
		if _, err := tx.ExecContext(ctx, d.lockSQL); err != nil {
			return nil, fmt.Errorf("%w: migration lock: %w", ErrBackend, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER NOT NULL PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_ns BIGINT  NOT NULL)`); err != nil {
		return nil, fmt.Errorf("%w: creating schema_migrations: %w", ErrBackend, err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("%w: reading schema_migrations: %w", ErrBackend, err)
	}
	done := map[int]bool{}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return nil, fmt.Errorf("%w: reading schema_migrations: %w", ErrBackend, err)
		}
		done[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%w: reading schema_migrations: %w", ErrBackend, err)
	}
	known := map[int]bool{}
	for _, m := range ms {
		known[m.Version] = true
	}
	for v := range done {
		if !known[v] {
			return nil, fmt.Errorf("%w: the database has schema version %d, which this binary does not know (it knows up to %d); use a newer binary",
				ErrSchema, v, ms[len(ms)-1].Version)
		}
	}
	for _, m := range ms {
		if done[m.Version] {
			continue
		}
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return nil, fmt.Errorf("%w: migration %04d_%s (%s): %w", ErrSchema, m.Version, m.Name, d.name, err)
		}
		if _, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO schema_migrations (version, name, applied_ns) VALUES (?, ?, ?)`),
			m.Version, m.Name, now.UnixNano()); err != nil {
			return nil, fmt.Errorf("%w: recording migration %04d: %w", ErrBackend, m.Version, err)
		}
		applied = append(applied, m.Version)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("%w: committing migrations: %w", ErrBackend, err)
	}
	return applied, nil
}
