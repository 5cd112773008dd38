package inventory_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	neturl "net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/inventory"
	"github.com/dsnscale/dsnscale/inventory/inventorytest"
	"github.com/dsnscale/dsnscale/scripts/testservers"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestSQLiteConformance(t *testing.T) {
	inventorytest.Run(t, func(t *testing.T, place string, now func() time.Time) *inventory.DB {
		db, err := inventory.Open("", place, inventory.Options{Now: now, Logger: quiet()})
		require.NoError(t, err)
		return db
	})
}

func TestPostgresConformance(t *testing.T) {
	url := testservers.Require(t, testservers.PostgresURL)
	var mu sync.Mutex
	schemas := map[string]string{}
	inventorytest.Run(t, func(t *testing.T, place string, now func() time.Time) *inventory.DB {
		mu.Lock()
		schema, ok := schemas[place]
		if !ok {
			schema = newSchema(t, url)
			schemas[place] = schema
		}
		mu.Unlock()
		db, err := inventory.Open(withSearchPath(url, schema), "", inventory.Options{Now: now, Logger: quiet()})
		require.NoError(t, err)
		return db
	})
}

// newSchema creates an empty schema for one test and drops it when the test ends.
func newSchema(t *testing.T, url string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "inventorytest_" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "CREATE SCHEMA "+schema)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	return schema
}

func withSearchPath(url, schema string) string {
	if strings.Contains(url, "?") {
		return url + "&search_path=" + schema
	}
	return url + "?search_path=" + schema
}

func urlWithPassword(raw, password string) (string, error) {
	u, err := neturl.Parse(raw)
	if err != nil {
		return "", err
	}
	u.User = neturl.UserPassword(u.User.Username(), password)
	return u.String(), nil
}

func TestPostgresConcurrentOpensMigrateOnce(t *testing.T) {
	url := testservers.Require(t, testservers.PostgresURL)
	u := withSearchPath(url, newSchema(t, url))
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := inventory.Open(u, "", inventory.Options{Logger: quiet()})
			if err == nil {
				err = db.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	db, err := inventory.Open(u, "", inventory.Options{Logger: quiet()})
	require.NoError(t, err)
	defer db.Close()
	v, err := db.SchemaVersion(context.Background())
	require.NoError(t, err)
	ms, err := inventory.Migrations("postgres")
	require.NoError(t, err)
	require.Equal(t, ms[len(ms)-1].Version, v)
}
