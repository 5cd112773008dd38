package ingest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/inventory"
	"github.com/dsnscale/dsnscale/search"
	"github.com/dsnscale/dsnscale/tsdb"
	"github.com/dsnscale/dsnscale/tsdb/queue"
)

func TestConfigValidate(t *testing.T) {
	b := startBus(t)
	ok := Config{Conn: b.cp, DataDir: t.TempDir()}
	require.NoError(t, ok.Validate())
	require.NoError(t, ValidateURLs("", "", ""))
	require.NoError(t, ValidateURLs("http://127.0.0.1:8428", "opensearch://127.0.0.1:9200?index=ev", "sqlite:///tmp/inv.db"))
	for _, tc := range []struct {
		name    string
		edit    func(*Config)
		is      []error
		message string
	}{
		{"no conn", func(c *Config) { c.Conn = nil }, []error{ErrConfig}, "Conn: required"},
		{"tsdb scheme", func(c *Config) { c.TSDBURL = "ftp://127.0.0.1:1" }, []error{ErrBadURL, tsdb.ErrBadURL}, `tsdb URL: tsdb: bad storage URL: "ftp://127.0.0.1:1": scheme "ftp"`},
		{"tsdb port", func(c *Config) { c.TSDBURL = "http://127.0.0.1:99999" }, []error{ErrBadURL, tsdb.ErrBadURL}, `port "99999"`},
		{"tsdb no scheme", func(c *Config) { c.TSDBURL = "127.0.0.1:8428" }, []error{ErrBadURL, tsdb.ErrBadURL}, "no scheme"},
		{"search host", func(c *Config) { c.SearchURL = "elasticsearch://localhost" }, []error{ErrBadURL, search.ErrBadURL}, `search URL: search: bad index URL: "elasticsearch://localhost": host "localhost": want host:port`},
		{"search param", func(c *Config) { c.SearchURL = "http://127.0.0.1:9200?index=Bad" }, []error{ErrBadURL, search.ErrBadURL}, `index "Bad"`},
		{"inventory scheme", func(c *Config) { c.InventoryURL = "mysql://127.0.0.1:3306/db" }, []error{ErrBadURL, inventory.ErrBadURL}, `inventory URL: inventory: bad database URL: scheme "mysql"`},
		{"inventory sqlite", func(c *Config) { c.InventoryURL = "sqlite://relative.db" }, []error{ErrBadURL, inventory.ErrBadURL}, "want sqlite:///absolute/path.db"},
		{"inventory postgres", func(c *Config) { c.InventoryURL = "postgres://u:secret@127.0.0.1:99999999/db" }, []error{ErrBadURL, inventory.ErrBadURL}, "inventory URL"},
		{"no data dir", func(c *Config) { c.DataDir, c.TSDBURL = "", "http://127.0.0.1:8428" }, []error{ErrConfig}, "DataDir: required for the embedded search, inventory"},
		{"workers", func(c *Config) { c.Workers = -1 }, []error{ErrConfig}, "Workers: -1"},
		{"too many workers", func(c *Config) { c.Workers = 65 }, []error{ErrConfig}, "Workers: 65, at most 64"},
		{"interval", func(c *Config) { c.InventoryInterval = -time.Second }, []error{ErrConfig}, "InventoryInterval: -1s"},
		{"series window", func(c *Config) { c.EventSeriesWindow = -time.Second }, []error{ErrConfig}, "EventSeriesWindow: -1s"},
		{"series window too long", func(c *Config) { c.EventSeriesWindow = 2 * time.Hour }, []error{ErrConfig}, "EventSeriesWindow: 2h0m0s, at most 1h0m0s"},
		{"series", func(c *Config) { c.MaxEventSeries = -1 }, []error{ErrConfig}, "MaxEventSeries: -1"},
		{"queue", func(c *Config) { c.EventQueue = queue.Config{Capacity: 10, BatchSize: 20} }, []error{ErrConfig, queue.ErrInvalidConfig}, "EventQueue: queue: invalid config: batchSize 20"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			err := c.Validate()
			require.Error(t, err)
			for _, target := range tc.is {
				assert.ErrorIs(t, err, target)
			}
			assert.Contains(t, err.Error(), tc.message)
			assert.NotContains(t, err.Error(), "secret")
			_, startErr := Start(context.Background(), c)
			assert.Equal(t, err, startErr, "Start validates the same way")
			if errors.Is(err, ErrBadURL) {
				assert.Equal(t, err, ValidateURLs(c.TSDBURL, c.SearchURL, c.InventoryURL))
			}
		})
	}
}

func TestStartReportsUnreachableServers(t *testing.T) {
	b := startBus(t)
	port := closedPort(t)
	for _, tc := range []struct {
		name    string
		edit    func(*Config)
		backend error
		message string
	}{
		{"victoriametrics", func(c *Config) { c.TSDBURL = fmt.Sprintf("http://127.0.0.1:%d", port) }, tsdb.ErrUnreachable, "tsdb: tsdb: server unreachable"},
		{"elasticsearch", func(c *Config) { c.SearchURL = fmt.Sprintf("elasticsearch://127.0.0.1:%d", port) }, search.ErrUnreachable, "search: search: server unreachable"},
		{"postgres", func(c *Config) {
			c.InventoryURL = fmt.Sprintf("postgres://u:secret@127.0.0.1:%d/db?sslmode=disable", port)
		}, inventory.ErrUnreachable, "inventory: inventory: database unreachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{Conn: b.cp, DataDir: t.TempDir(), Logger: quiet(), BackendTimeout: 2 * time.Second}
			tc.edit(&c)
			begin := time.Now()
			in, err := Start(context.Background(), c)
			require.Error(t, err)
			assert.Nil(t, in)
			assert.ErrorIs(t, err, ErrUnreachable)
			assert.ErrorIs(t, err, tc.backend)
			assert.Contains(t, err.Error(), tc.message)
			assert.NotContains(t, err.Error(), "secret")
			assert.Less(t, time.Since(begin), 10*time.Second)
		})
	}
	// Nothing was left subscribed by the failed starts.
	assert.Zero(t, b.cp.NumSubscriptions())
}
