package ingest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/wire"
	"github.com/dsnscale/dsnscale/internal/natsserver"
	"github.com/dsnscale/dsnscale/tsdb/queue"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// bus is an embedded NATS server with the control plane's and a DSN fleet's connections.
type bus struct {
	cp, dsn *nats.Conn
}

func startBus(t *testing.T) *bus {
	t.Helper()
	s, err := natsserver.Start(natsserver.Config{StoreDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(s.Stop)
	cp, err := nats.Connect(s.URL(), nats.Name("test-cp"))
	require.NoError(t, err)
	t.Cleanup(cp.Close)
	dsn, err := nats.Connect(s.URL(), nats.Name("test-dsns"))
	require.NoError(t, err)
	t.Cleanup(dsn.Close)
	return &bus{cp: cp, dsn: dsn}
}

// start starts an Ingest on b with embedded backends; edit adjusts the config.
func start(t *testing.T, b *bus, edit func(*Config)) (*Ingest, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg := Config{Conn: b.cp, DataDir: t.TempDir(), Registerer: reg, Logger: quiet(),
		InventoryQueue: fastQueue(), EventQueue: fastQueue(), TelemetryQueue: fastQueue(), EventSeriesWindow: 20 * time.Millisecond}
	if edit != nil {
		edit(&cfg)
	}
	in, err := Start(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = in.Close(ctx)
	})
	return in, reg
}

// fastQueue flushes partial batches quickly, so tests need not wait for the default second.
func fastQueue() queue.Config {
	return queue.Config{FlushInterval: 20 * time.Millisecond, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
}

func (b *bus) publish(t *testing.T, subject string, v any) {
	t.Helper()
	data, err := json.Marshal(v)
	require.NoError(t, err)
	require.NoError(t, b.dsn.Publish(subject, data))
}

func (b *bus) publishRaw(t *testing.T, subject string, data []byte) {
	t.Helper()
	require.NoError(t, b.dsn.Publish(subject, data))
}

func (b *bus) flush(t *testing.T) {
	t.Helper()
	require.NoError(t, b.dsn.Flush())
}

func batch(dsn string, at time.Time, samples ...wire.Sample) wire.TelemetryBatch {
	return wire.TelemetryBatch{DSN: dsn, TimeUnixNano: at.UnixNano(), Samples: samples}
}

// get requests path from h and decodes the JSON answer into out (when not nil).
func get(t *testing.T, h http.Handler, path string, out any) int {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	require.Equal(t, "application/json", rec.Header().Get("Content-Type"), rec.Body.String())
	if out != nil {
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), out), rec.Body.String())
	}
	return rec.Code
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	return port
}

func q(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v.Encode()
}

func unix(t time.Time) string { return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64) }
