package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/wire"
	"github.com/dsnscale/dsnscale/scripts/testservers"
	"github.com/dsnscale/dsnscale/tsdb"
	"github.com/dsnscale/dsnscale/tsdb/queue"
)

// hangingServer passes a VictoriaMetrics health check, then never answers anything else: a
// backend that hangs mid-run.
func hangingServer(t *testing.T) string {
	t.Helper()
	release := make(chan struct{})
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			_, _ = io.WriteString(w, "OK")
			return
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() {
		close(release)
		s.Close()
	})
	return s.URL
}

// publishLoad publishes n telemetry batches of size samples and n events, spread over dsns.
func publishLoad(t *testing.T, b *bus, n, size, dsns int, at time.Time) {
	t.Helper()
	samples := make([]wire.Sample, size)
	for i := range samples {
		samples[i] = wire.Sample{Name: "dsn_load_value", Labels: map[string]string{"series": fmt.Sprint(i)}, Value: float64(i)}
	}
	for i := range n {
		dsn := fmt.Sprintf("dsn-%04d", i%dsns)
		b.publish(t, wire.TelemetrySubject(dsn), batch(dsn, at.Add(time.Duration(i/dsns)*time.Second), samples...))
		b.publish(t, wire.EventSubject(dsn), wire.Event{DSN: dsn, TimeUnixNano: at.UnixNano(), Type: "log", Severity: "info",
			Message: fmt.Sprintf("load message %d", i)})
	}
	b.flush(t)
}

func TestHangingTSDBNeverBlocksTheSubscriber(t *testing.T) {
	b := startBus(t)
	in, reg := start(t, b, func(c *Config) {
		c.TSDBURL = hangingServer(t)
		c.BackendTimeout = time.Minute // the hang outlasts the test: only Close ends it
		c.TelemetryQueue = queue.Config{Capacity: 500, BatchSize: 100, FlushInterval: 10 * time.Millisecond}
	})
	const batches, size = 200, 50
	publishLoad(t, b, batches, size, 20, time.Now().Add(-time.Minute))

	// Every message is handled, the events reach the index, the samples that do not fit are
	// dropped and counted.
	require.Eventually(t, func() bool {
		s := in.Stats()
		return s.Telemetry.Received == batches && s.Events.Received == batches && s.Search.Written == batches
	}, 10*time.Second, 10*time.Millisecond, "%+v", in.Stats())
	s := in.Stats()
	assert.Zero(t, s.Telemetry.Dropped+s.Events.Dropped, "NATS dropped nothing: the subscriber never waited")
	assert.Equal(t, uint64(batches*size), s.TSDB.Offered)
	assert.Zero(t, s.TSDB.Written)
	assert.Equal(t, batches*size-500, s.TSDB.Dropped[queue.ReasonFull])
	assert.Equal(t, float64(batches*size-500), gathered(t, reg, "dsnscale_queue_dropped_total", map[string]string{"queue": "telemetry", "reason": "full"}))
	assert.Equal(t, 500.0, gathered(t, reg, "dsnscale_queue_depth", map[string]string{"queue": "telemetry"}))

	var res eventList
	require.Equal(t, 200, get(t, in.Handler(), "/api/v1/events?"+q("q", "load", "dsn", "dsn-0003"), &res))
	assert.Equal(t, batches/20, res.Total)

	// Close gives up at its deadline, counting what it could not write.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	begin := time.Now()
	err := in.Close(ctx)
	assert.Less(t, time.Since(begin), 3*time.Second)
	require.ErrorIs(t, err, queue.ErrCloseTimeout)
	assert.Contains(t, err.Error(), "telemetry queue")
	assert.Equal(t, 500, in.Stats().TSDB.Dropped[queue.ReasonTimeout])
}

// gathered returns the value of the series of metric name with all the given labels.
func gathered(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue next
				}
			}
			return m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

// proxy forwards TCP connections to a server until stopped, then refuses them: a server that
// dies mid-run and comes back on the same port.
type proxy struct {
	t      *testing.T
	target string
	addr   string

	mu    sync.Mutex
	l     net.Listener
	conns []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	p := &proxy{t: t, target: target}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p.addr = l.Addr().String()
	p.serve(l)
	t.Cleanup(p.stop)
	return p
}

func (p *proxy) serve(l net.Listener) {
	p.mu.Lock()
	p.l = l
	p.mu.Unlock()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
}

// stop closes the listener and every connection: the port refuses connections.
func (p *proxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.l != nil {
		p.l.Close()
		p.l = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// restart listens again on the same port.
func (p *proxy) restart() {
	l, err := net.Listen("tcp", p.addr)
	require.NoError(p.t, err)
	p.serve(l)
}

func TestVictoriaMetricsDyingMidRun(t *testing.T) {
	vm := testservers.Require(t, testservers.VMURL)
	target, err := tsdb.ParseURL(vm)
	require.NoError(t, err)
	px := newProxy(t, target.BaseURL[len("http://"):])
	b := startBus(t)
	in, _ := start(t, b, func(c *Config) {
		c.TSDBURL = "http://" + px.addr
		c.BackendTimeout = 2 * time.Second
		c.TelemetryQueue = queue.Config{Capacity: 10000, BatchSize: 500, FlushInterval: 20 * time.Millisecond,
			MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
	})
	run := fmt.Sprintf("r%d", time.Now().UnixNano())
	base := time.Now().Add(-5 * time.Minute).Truncate(time.Second)
	send := func(from, to int) {
		for i := from; i < to; i++ {
			b.publish(t, wire.TelemetrySubject("vm-dsn"), batch("vm-dsn", base.Add(time.Duration(i)*time.Second),
				wire.Sample{Name: "dsn_vm_test", Labels: map[string]string{"run": run}, Value: float64(i)}))
			b.publish(t, wire.EventSubject("vm-dsn"), wire.Event{DSN: "vm-dsn", TimeUnixNano: base.UnixNano(), Type: "log", Severity: "info",
				Message: "vm " + run})
		}
		b.flush(t)
	}
	query := func() int {
		require.NoError(t, tsdb.Sync(context.Background(), in.TSDB()))
		var m matrix
		require.Equal(t, 200, get(t, in.Handler(), "/api/v1/metrics/query?"+q("match", fmt.Sprintf(`dsn_vm_test{run=%q}`, run),
			"from", unix(base), "to", unix(base.Add(time.Hour))), &m))
		if len(m.Data.Result) == 0 {
			return 0
		}
		return len(m.Data.Result[0].Values)
	}

	send(0, 10)
	require.Eventually(t, func() bool { return query() == 10 }, 20*time.Second, 100*time.Millisecond)

	// The server dies: writes fail and are retried, queries answer 503, ingestion goes on.
	px.stop()
	send(10, 20)
	// Every event is in the search backend: as a document, or counted in its series'.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		s := in.Stats()
		assert.Positive(c, s.TSDB.Errors, "TSDB write errors")
		assert.EqualValues(c, 20, s.Telemetry.Received, "telemetry received")
		assert.EqualValues(c, 20, s.Events.Received, "events received")
		assert.EqualValues(c, 20, s.Search.Written+s.Events.RolledUp, "events written or rolled up: %+v", s)
	}, 20*time.Second, 20*time.Millisecond)
	var e errorBody
	require.Equal(t, http.StatusServiceUnavailable, get(t, in.Handler(), "/api/v1/metrics/query?match=dsn_vm_test", &e))
	assert.Equal(t, "ServiceUnavailable", e.Reason)
	assert.Zero(t, in.Stats().Telemetry.Dropped)

	// It comes back: the retried batch is written.
	px.restart()
	require.Eventually(t, func() bool { return in.Stats().TSDB.Written == 20 }, 30*time.Second, 50*time.Millisecond, "%+v", in.Stats())
	require.Eventually(t, func() bool { return query() == 20 }, 20*time.Second, 100*time.Millisecond)
	assert.Zero(t, in.Stats().TSDB.DroppedTotal())
	require.False(t, errors.Is(in.Close(context.Background()), queue.ErrCloseTimeout))
}
