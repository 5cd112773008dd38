package tsdb_test

import (
	"compress/gzip"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/tsdb"
	"github.com/dsnscale/dsnscale/tsdb/queue"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestParseURL(t *testing.T) {
	tests := []struct {
		url  string
		want tsdb.Target
		err  string
	}{
		{url: "victoriametrics://127.0.0.1:8428", want: tsdb.Target{Kind: tsdb.KindVictoriaMetrics, BaseURL: "http://127.0.0.1:8428"}},
		{url: "http://127.0.0.1:8428/", want: tsdb.Target{Kind: tsdb.KindVictoriaMetrics, BaseURL: "http://127.0.0.1:8428"}},
		{url: "https://u:p@vm.local:443/select/0", want: tsdb.Target{Kind: tsdb.KindVictoriaMetrics, BaseURL: "https://vm.local:443/select/0", User: "u", Password: "p"}},
		{url: "victoriametrics+https://vm:8428", want: tsdb.Target{Kind: tsdb.KindVictoriaMetrics, BaseURL: "https://vm:8428"}},
		{url: "influxdb://127.0.0.1:8086?org=o&bucket=b&token=t", want: tsdb.Target{Kind: tsdb.KindInfluxDB, BaseURL: "http://127.0.0.1:8086", Org: "o", Bucket: "b", Token: "t"}},
		{url: "influxdb+https://h:8086?org=o&bucket=b&token=t", want: tsdb.Target{Kind: tsdb.KindInfluxDB, BaseURL: "https://h:8086", Org: "o", Bucket: "b", Token: "t"}},
		{url: "127.0.0.1:8428", err: "scheme"},
		{url: "prometheus://h:9090", err: `scheme "prometheus"`},
		{url: "victoriametrics://h", err: "want host:port"},
		{url: "victoriametrics://:8428", err: "want host:port"},
		{url: "victoriametrics://h:99999", err: `port "99999"`},
		{url: "victoriametrics://h:8428?x=1", err: "no query parameters"},
		{url: "influxdb://h:8086?org=o&bucket=b", err: `"token" is required`},
		{url: "influxdb://h:8086?org=o&token=secret", err: `"bucket" is required`},
		{url: "influxdb://h:8086?org=o&bucket=b&token=t&precision=s", err: `unknown parameter "precision"`},
		{url: "influxdb://h:8086?org=o&org=p&bucket=b&token=t", err: `parameter "org"`},
		{url: "influxdb://u:p@h:8086?org=o&bucket=b&token=t", err: "token"},
		{url: "http://h:8428#frag", err: "fragment"},
		{url: "http://[::1", err: "bad storage URL"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			got, err := tsdb.ParseURL(tt.url)
			if tt.err != "" {
				require.ErrorIs(t, err, tsdb.ErrBadURL)
				assert.Contains(t, err.Error(), tt.err)
				assert.NotContains(t, err.Error(), "secret", "errors never show a token")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestOpenErrors(t *testing.T) {
	_, err := tsdb.Open("", "", tsdb.Options{})
	require.ErrorIs(t, err, tsdb.ErrBadURL, "embedded without a directory")
	_, err = tsdb.Open("", t.TempDir(), tsdb.Options{Retention: time.Minute})
	require.ErrorIs(t, err, tsdb.ErrInvalid)
	assert.Contains(t, err.Error(), "retention")
	_, err = tsdb.Open("ftp://h:21", t.TempDir(), tsdb.Options{})
	require.ErrorIs(t, err, tsdb.ErrBadURL)

	// Nothing listens on a port we just closed.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	for _, u := range []string{"victoriametrics://" + addr, "influxdb://" + addr + "?org=o&bucket=b&token=t"} {
		_, err = tsdb.Open(u, "", tsdb.Options{Timeout: 2 * time.Second, Logger: quietLogger()})
		require.ErrorIs(t, err, tsdb.ErrUnreachable, u)
		assert.Contains(t, err.Error(), addr)
		assert.NotContains(t, err.Error(), "token=t")
	}
}

func TestUnhealthyVictoriaMetricsIsUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "starting", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	_, err := tsdb.Open(srv.URL, "", tsdb.Options{Logger: quietLogger()})
	require.ErrorIs(t, err, tsdb.ErrUnreachable)
	assert.Contains(t, err.Error(), "HTTP 503")
}

func TestVictoriaMetricsNeedsAnUnderscoreInTheMetricName(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "OK") }))
	defer srv.Close()
	st, err := tsdb.Open(srv.URL, "", tsdb.Options{Logger: quietLogger()})
	require.NoError(t, err)
	defer st.Close()
	app := st.Appender()
	for _, name := range []string{"up", "_up", "up_"} {
		err := app.Append(tsdb.Labels(name), time.Now(), 1)
		require.ErrorIs(t, err, tsdb.ErrInvalid, name)
		assert.Contains(t, err.Error(), "underscore")
	}
	require.NoError(t, app.Append(tsdb.Labels("dsn_up"), time.Now(), 1))
}

// flakyVM is a VictoriaMetrics stand-in for the writer's retry logic: it answers /health and
// fails the first writes with the given status.
type flakyVM struct {
	mu       sync.Mutex
	failures int
	status   int
	bodies   []string
}

func (f *flakyVM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/health" {
		_, _ = io.WriteString(w, "OK")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failures > 0 {
		f.failures--
		w.WriteHeader(f.status)
		_, _ = io.WriteString(w, `{"code":"err","message":"failing on purpose"}`)
		return
	}
	var rd io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rd = zr
	}
	body, _ := io.ReadAll(rd)
	f.bodies = append(f.bodies, string(body))
	w.WriteHeader(http.StatusNoContent)
}

func TestRemoteWriteRetriesAndClassifiesErrors(t *testing.T) {
	tests := []struct {
		name     string
		failures int
		status   int
		attempts int
		want     error
		writes   int
	}{
		{"recovers after 5xx", 2, http.StatusServiceUnavailable, 4, nil, 1},
		{"recovers after 429", 1, http.StatusTooManyRequests, 4, nil, 1},
		{"gives up after max attempts", 10, http.StatusInternalServerError, 3, tsdb.ErrBackend, 0},
		{"4xx is not retried", 1, http.StatusBadRequest, 4, tsdb.ErrRejected, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vm := &flakyVM{failures: tt.failures, status: tt.status}
			srv := httptest.NewServer(vm)
			defer srv.Close()
			st, err := tsdb.Open(srv.URL, "", tsdb.Options{MaxAttempts: tt.attempts, MinBackoff: time.Millisecond,
				MaxBackoff: 2 * time.Millisecond, Logger: quietLogger()})
			require.NoError(t, err)
			defer st.Close()
			app := st.Appender()
			require.NoError(t, app.Append(tsdb.Labels("dsn_cpu_seconds", "dsn", "a b,c"), time.UnixMilli(1_700_000_000_123), 1.5))
			err = app.Commit(context.Background())
			if tt.want != nil {
				require.ErrorIs(t, err, tt.want)
			} else {
				require.NoError(t, err)
			}
			vm.mu.Lock()
			defer vm.mu.Unlock()
			require.Len(t, vm.bodies, tt.writes)
			if tt.writes > 0 {
				assert.Equal(t, `dsn_cpu,dsn=a\ b\,c seconds=1.5 1700000000123`+"\n", vm.bodies[0])
			}
		})
	}
}

func TestWriterDropsAndCountsWhenTheBackendIsDead(t *testing.T) {
	vm := &flakyVM{failures: 1 << 30, status: http.StatusServiceUnavailable}
	srv := httptest.NewServer(vm)
	defer srv.Close()
	st, err := tsdb.Open(srv.URL, "", tsdb.Options{MaxAttempts: 1, Logger: quietLogger()})
	require.NoError(t, err)
	defer st.Close()
	w, err := tsdb.NewWriter(st, queue.Config{Name: "telemetry", Capacity: 100, BatchSize: 10, FlushInterval: time.Millisecond,
		MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond, MaxAttempts: 2}, queue.WithLogger(quietLogger()))
	require.NoError(t, err)
	points := make([]tsdb.Point, 250)
	for i := range points {
		points[i] = tsdb.Point{Labels: tsdb.Labels("dsn_cpu_seconds"), Time: time.UnixMilli(int64(1_700_000_000_000 + i)), Value: 1}
	}
	start := time.Now()
	accepted, err := w.Offer(points...)
	require.NoError(t, err)
	assert.Less(t, time.Since(start), time.Second, "Offer does not wait for the backend")
	assert.LessOrEqual(t, accepted, 100)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, w.Close(ctx))
	s := w.Stats()
	assert.Zero(t, s.Written)
	assert.Equal(t, 250, s.DroppedTotal(), "every point is accounted for: %+v", s)
	assert.Equal(t, 250-accepted, s.Dropped[queue.ReasonFull])
	assert.Equal(t, accepted, s.Dropped[queue.ReasonFailed])
}

func TestWriterValidatesAndSkipsRejectedPoints(t *testing.T) {
	st, err := tsdb.Open("", t.TempDir(), tsdb.Options{OutOfOrderWindow: time.Minute, Logger: quietLogger()})
	require.NoError(t, err)
	defer st.Close()
	w, err := tsdb.NewWriter(st, queue.Config{Name: "telemetry", BatchSize: 10, FlushInterval: time.Millisecond}, queue.WithLogger(quietLogger()))
	require.NoError(t, err)
	base := time.UnixMilli(1_700_000_000_000)
	ls := tsdb.Labels("dsn_cpu_seconds", "dsn", "a")
	n, err := w.Offer(
		tsdb.Point{Labels: ls, Time: base, Value: 1},
		tsdb.Point{Labels: tsdb.Labels("bad-name"), Time: base, Value: 1},
		tsdb.Point{Labels: ls, Time: base.Add(time.Second), Value: 2},
	)
	require.ErrorIs(t, err, tsdb.ErrInvalid)
	assert.Contains(t, err.Error(), "point 1")
	assert.Equal(t, 2, n)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.Eventually(t, func() bool { return w.Stats().Written == 2 }, 10*time.Second, time.Millisecond)
	// Far older than the out-of-order window: the engine refuses it, the batch goes on.
	_, err = w.Offer(tsdb.Point{Labels: ls, Time: base.Add(-time.Hour), Value: 0}, tsdb.Point{Labels: ls, Time: base.Add(2 * time.Second), Value: 3})
	require.NoError(t, err)
	require.NoError(t, w.Close(ctx))
	assert.Equal(t, uint64(1), w.Rejected())
	ss, err := st.Select(ctx, tsdb.Query{Matchers: []tsdb.Matcher{tsdb.MetricName("dsn_cpu_seconds")}, From: base.Add(-2 * time.Hour), To: base.Add(time.Hour)})
	require.NoError(t, err)
	require.Len(t, ss, 1)
	assert.Len(t, ss[0].Samples, 3)
}

func TestErrorsAreDistinct(t *testing.T) {
	all := []error{tsdb.ErrBadURL, tsdb.ErrUnreachable, tsdb.ErrInvalid, tsdb.ErrRejected, tsdb.ErrBackend, tsdb.ErrClosed}
	for i, a := range all {
		for j, b := range all {
			assert.Equal(t, i == j, errors.Is(a, b))
		}
		assert.True(t, strings.HasPrefix(a.Error(), "tsdb: "))
	}
}
