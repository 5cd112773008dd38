package inventory

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dsnscale/dsnscale/internal/backendurl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Options tune the database connection. Zero fields take the defaults given with each field.
type Options struct {
	// MaxConns bounds open connections. Default 4 for SQLite, 10 for PostgreSQL.
	MaxConns int `json:"maxConns" yaml:"maxConns"`
	// Timeout bounds connecting and migrating at Open. Default 30s.
	Timeout time.Duration `json:"timeout" yaml:"timeout"`
	// Now is the clock for CreatedAt, UpdatedAt and default history times. Default time.Now.
	Now func() time.Time `json:"-" yaml:"-"`
	// Logger receives the inventory's logs. Default slog.Default().
	Logger *slog.Logger `json:"-" yaml:"-"`
}

// Validate reports the first option out of range.
func (o Options) Validate() error {
	switch {
	case o.MaxConns < 0:
		return fmt.Errorf("%w: options.maxConns %d: want >= 0", ErrInvalid, o.MaxConns)
	case o.Timeout < 0:
		return fmt.Errorf("%w: options.timeout %v: want >= 0", ErrInvalid, o.Timeout)
	}
	return nil
}

func (o Options) withDefaults(d dialect) Options {
	if o.MaxConns == 0 {
		o.MaxConns = map[string]int{dialectSQLite: 4, dialectPostgres: 10}[d.name]
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

const (
	dialectSQLite   = "sqlite"
	dialectPostgres = "postgres"
)

// dialect is what differs between the SQL databases.
type dialect struct {
	name string
	// dollar placeholders ($1, $2) instead of ?.
	dollar bool
	// lockSQL serializes migrators, when the transaction itself does not.
	lockSQL string
}

var (
	sqliteDialect   = dialect{name: dialectSQLite}
	postgresDialect = dialect{name: dialectPostgres, dollar: true,
		lockSQL: "SELECT pg_advisory_xact_lock(7238075447045745765)"} // "dsnscale" in ASCII
)

// rebind rewrites ? placeholders for the dialect. Queries in this package contain no other ?.
func (d dialect) rebind(q string) string {
	if !d.dollar {
		return q
	}
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Open opens the inventory rawURL names and brings its schema up to date:
//
//	""                                   SQLite file inventory.db under dir
//	sqlite:///path/to/file.db            SQLite file at that path
//	postgres://user:pw@host:port/db?...  PostgreSQL (also postgresql://); parameters as libpq's,
//	                                     e.g. sslmode=disable, search_path=schema
//
// A PostgreSQL server that does not answer gets an error wrapping ErrUnreachable; one that
// refuses the login gets ErrBackend.
func Open(rawURL, dir string, opts Options) (*DB, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if rawURL == "" {
		if dir == "" {
			return nil, fmt.Errorf("%w: the embedded inventory needs a directory", ErrBadURL)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBackend, err)
		}
		return openSQLite(filepath.Join(dir, "inventory.db"), opts)
	}
	t, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if t.Dialect == dialectPostgres {
		return openPostgres(t.Postgres, opts)
	}
	return openSQLite(t.File, opts)
}

// Target is a parsed database URL.
type Target struct {
	// Dialect is "sqlite" or "postgres".
	Dialect string
	// File is the SQLite database file.
	File string
	// Postgres is the PostgreSQL connection configuration.
	Postgres *pgx.ConnConfig
}

// ParseURL parses a database URL (see Open) without connecting.
func ParseURL(rawURL string) (Target, error) {
	s, err := urls.SchemeOf(rawURL)
	if err != nil {
		return Target{}, err
	}
	if s.Kind == dialectPostgres {
		cfg, err := pgx.ParseConfig(rawURL)
		if err != nil {
			// pgx's message may quote the URL, password and all.
			msg := err.Error()
			if u, uerr := url.Parse(rawURL); uerr == nil {
				if pw, ok := u.User.Password(); ok && pw != "" {
					msg = strings.ReplaceAll(msg, pw, "xxxxx")
				}
			}
			return Target{}, urls.Errorf(rawURL, "%s", msg)
		}
		return Target{Dialect: dialectPostgres, Postgres: cfg}, nil
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Host != "" || u.Path == "" || u.RawQuery != "" {
		return Target{}, urls.Errorf(rawURL, "want sqlite:///absolute/path.db")
	}
	return Target{Dialect: dialectSQLite, File: u.Path}, nil
}

// urls are the database URLs of the inventory role.
var urls = backendurl.Role{
	Schemes: []backendurl.Scheme{
		{Name: "postgres", Kind: dialectPostgres},
		{Name: "postgresql", Kind: dialectPostgres},
		{Name: "sqlite", Kind: dialectSQLite},
	},
	Secrets: []string{"password"},
	Err:     ErrBadURL,
}

func openSQLite(file string, opts Options) (*DB, error) {
	opts = opts.withDefaults(sqliteDialect)
	// WAL lets readers run beside the writer; immediate transactions take the write lock at
	// BEGIN, so two writers wait for each other (busy_timeout) instead of deadlocking.
	dsn := "file:" + file + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)" +
		"&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("%w: sqlite %s: %v", ErrBadURL, file, err)
	}
	return start(db, sqliteDialect, "sqlite "+file, opts)
}

func openPostgres(cfg *pgx.ConnConfig, opts Options) (*DB, error) {
	opts = opts.withDefaults(postgresDialect)
	where := fmt.Sprintf("postgres %s:%d/%s", cfg.Host, cfg.Port, cfg.Database)
	db := stdlib.OpenDB(*cfg)
	ctx, cancel := context.WithTimeout(context.Background(), opts.Timeout)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%w: %s: %s (SQLSTATE %s)", ErrBackend, where, pe.Message, pe.Code)
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrUnreachable, where, err)
	}
	return start(db, postgresDialect, where, opts)
}

// start configures the pool and migrates.
func start(db *sql.DB, d dialect, where string, opts Options) (*DB, error) {
	db.SetMaxOpenConns(opts.MaxConns)
	db.SetMaxIdleConns(opts.MaxConns)
	ms, err := Migrations(d.name)
	if err != nil {
		db.Close()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), opts.Timeout)
	defer cancel()
	applied, err := migrate(ctx, db, d, ms, opts.Now())
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if len(applied) > 0 {
		opts.Logger.Info("inventory schema migrated", "db", where, "applied", applied)
	}
	return &DB{db: db, d: d, where: where, now: opts.Now}, nil
}
