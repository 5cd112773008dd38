package ingest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/wire"
	"github.com/dsnscale/dsnscale/search"
	"github.com/dsnscale/dsnscale/tsdb"
	"github.com/dsnscale/dsnscale/tsdb/queue"
)

// waitWritten waits until the telemetry queue wrote n samples.
func waitWritten(t *testing.T, in *Ingest, n uint64) {
	t.Helper()
	require.Eventually(t, func() bool { return in.Stats().TSDB.Written >= n }, 10*time.Second, 10*time.Millisecond,
		"written %d of %d samples: %+v", in.Stats().TSDB.Written, n, in.Stats())
}

func TestTelemetryOnTheBusIsQueryable(t *testing.T) {
	b := startBus(t)
	in, reg := start(t, b, nil)
	base := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	for i := range 5 {
		at := base.Add(time.Duration(i) * 10 * time.Second)
		for _, dsn := range []string{"dsn-a", "dsn-b"} {
			b.publish(t, wire.TelemetrySubject(dsn), batch(dsn, at,
				wire.Sample{Name: "dsn_cpu_percent", Value: float64(i)},
				wire.Sample{Name: "dsn_interface_rx_bytes_total", Labels: map[string]string{"interface": "eth0", "empty": ""}, Value: float64(100 * i)},
			))
		}
	}
	b.flush(t)
	waitWritten(t, in, 20)

	h := in.Handler()
	var m matrix
	path := "/api/v1/metrics/query?" + q("match", `dsn_cpu_percent{dsn="dsn-a"}`, "from", unix(base), "to", unix(base.Add(time.Minute)))
	require.Equal(t, 200, get(t, h, path, &m))
	require.Equal(t, "success", m.Status)
	require.Equal(t, "matrix", m.Data.ResultType)
	require.Len(t, m.Data.Result, 1)
	assert.Equal(t, map[string]string{"__name__": "dsn_cpu_percent", "dsn": "dsn-a"}, m.Data.Result[0].Metric)
	require.Len(t, m.Data.Result[0].Values, 5)
	for i, v := range m.Data.Result[0].Values {
		assert.Equal(t, base.Add(time.Duration(i)*10*time.Second).UnixMilli(), v.Time.UnixMilli())
		assert.Equal(t, float64(i), v.Value)
	}

	// A regexp over both DSNs, stepped every 20s: the empty label was left out.
	path = "/api/v1/metrics/query?" + q("match", `dsn_interface_rx_bytes_total{dsn=~"dsn-.*",interface="eth0"}`,
		"from", base.Format(time.RFC3339), "to", base.Add(40*time.Second).Format(time.RFC3339), "step", "20s")
	require.Equal(t, 200, get(t, h, path, &m))
	require.Len(t, m.Data.Result, 2)
	for i, s := range m.Data.Result {
		assert.Equal(t, map[string]string{"__name__": "dsn_interface_rx_bytes_total", "dsn": []string{"dsn-a", "dsn-b"}[i], "interface": "eth0"}, s.Metric)
		require.Len(t, s.Values, 3)
		assert.Equal(t, []float64{0, 200, 400}, []float64{s.Values[0].Value, s.Values[1].Value, s.Values[2].Value})
	}

	// The raw JSON is Prometheus': [seconds, "value"].
	rec := rawGet(t, h, "/api/v1/metrics/query?"+q("match", `dsn_cpu_percent{dsn="dsn-b"}`, "from", unix(base), "to", unix(base)))
	assert.Contains(t, rec, fmt.Sprintf(`"values":[[%d,"0"]]`, base.Unix()))

	// A limit truncates and says so.
	require.Equal(t, 200, get(t, h, "/api/v1/metrics/query?"+q("match", `{dsn=~"dsn-.*"}`, "from", unix(base), "to", unix(base.Add(time.Minute)), "limit", "3"), &m))
	assert.Len(t, m.Data.Result, 3)
	assert.True(t, m.Truncated)

	st := in.Stats()
	assert.Equal(t, uint64(10), st.Telemetry.Received)
	assert.Zero(t, st.Telemetry.InvalidTotal())
	assert.Equal(t, uint64(20), st.Samples)

	// The queues and the counters are on the registry.
	assert.Equal(t, 10.0, gathered(t, reg, "dsnscale_ingest_messages_total", map[string]string{"kind": "telemetry"}))
	assert.Equal(t, 20.0, gathered(t, reg, "dsnscale_queue_written_total", map[string]string{"queue": "telemetry"}))
	assert.Equal(t, 0.0, gathered(t, reg, "dsnscale_queue_depth", map[string]string{"queue": "telemetry"}))
	assert.Equal(t, 0.0, gathered(t, reg, "dsnscale_queue_dropped_total", map[string]string{"queue": "events"}))
}

func rawGet(t *testing.T, h http.Handler, path string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	return rec.Body.String()
}

func TestInvalidMessagesAreCountedByReason(t *testing.T) {
	b := startBus(t)
	in, reg := start(t, b, func(c *Config) { c.MaxFutureSkew = time.Minute })
	now := time.Now()
	tel := wire.TelemetrySubject("d1")
	ev := wire.EventSubject("d1")
	good := wire.Sample{Name: "dsn_ok", Value: 1}
	for _, tc := range []struct {
		subject string
		payload any // []byte is sent as is
	}{
		{tel, []byte(`{"dsn":"d1","timeUnixNano":`)},                                            // malformed
		{tel, []byte(`[1,2,3]`)},                                                                // malformed
		{tel, batch("d2", now, good)},                                                           // dsn: another's subject
		{tel, batch("bad id!", now, good)},                                                      // dsn
		{tel, wire.TelemetryBatch{DSN: "d1", Samples: []wire.Sample{good}}},                     // time
		{ev, []byte(`not json`)},                                                                // malformed
		{ev, wire.Event{DSN: "d2", TimeUnixNano: now.UnixNano(), Type: "x", Severity: "info"}},  // dsn
		{ev, wire.Event{DSN: "d1", Type: "x", Severity: "info"}},                                // time
		{ev, wire.Event{DSN: "d1", TimeUnixNano: now.UnixNano(), Type: "x", Severity: "fatal"}}, // content
		{ev, wire.Event{DSN: "d1", TimeUnixNano: now.UnixNano(), Severity: "info"}},             // content: no type
		{ev, wire.Event{DSN: "d1", TimeUnixNano: now.UnixNano(), Type: "x", Severity: "info", Fields: map[string]string{"a b": "c"}}}, // content
		{ev, wire.Event{DSN: "d1", TimeUnixNano: now.UnixNano(), Type: "x", Severity: "info", Message: strings.Repeat("m", search.MaxMessageBytes+1)}},
	} {
		if raw, ok := tc.payload.([]byte); ok {
			b.publishRaw(t, tc.subject, raw)
		} else {
			b.publish(t, tc.subject, tc.payload)
		}
	}
	// One batch with good and bad samples: the bad ones cost only themselves.
	b.publish(t, tel, batch("d1", now, good,
		wire.Sample{Name: "bad-name", Value: 1},
		wire.Sample{Name: "dsn_x", Labels: map[string]string{"dsn": "other"}, Value: 1},
		wire.Sample{Name: "dsn_y", Labels: map[string]string{"__reserved": "v"}, Value: 1},
		wire.Sample{Name: "dsn_z", Labels: map[string]string{"9lives": "v"}, Value: 1},
		wire.Sample{Name: "up", Value: 1},
		wire.Sample{Name: "dsn_", Value: 1},
	))
	// A batch from too far in the future is dropped whole.
	b.publish(t, tel, batch("d1", now.Add(time.Hour), good, good))
	b.flush(t)

	require.Eventually(t, func() bool {
		s := in.Stats()
		return s.Telemetry.Received == 7 && s.Events.Received == 7
	}, 5*time.Second, 10*time.Millisecond)
	waitWritten(t, in, 1)
	s := in.Stats()
	assert.Equal(t, map[string]uint64{ReasonMalformed: 2, ReasonDSN: 2, ReasonTime: 1}, s.Telemetry.Invalid)
	assert.Equal(t, map[string]uint64{ReasonMalformed: 1, ReasonDSN: 1, ReasonTime: 1, ReasonContent: 4}, s.Events.Invalid)
	assert.Equal(t, uint64(1), s.Samples)
	assert.Equal(t, uint64(6+2), s.SamplesInvalid)
	assert.Equal(t, 4.0, gathered(t, reg, "dsnscale_ingest_messages_invalid_total", map[string]string{"kind": "event", "reason": ReasonContent}))
	assert.Zero(t, s.Search.Offered, "no invalid event reaches the index")
}

func TestEventsAndLogsAreSearchable(t *testing.T) {
	b := startBus(t)
	in, _ := start(t, b, nil)
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	events := []wire.Event{
		{DSN: "d1", TimeUnixNano: base.UnixNano(), Type: "config-applied", Severity: "info", Message: "applied revision 42", Fields: map[string]string{"revision": "42"}},
		{DSN: "d1", TimeUnixNano: base.Add(time.Second).UnixNano(), Type: "log", Severity: "info", Message: "conntrack sweep removed idle flows"},
		{DSN: "d2", TimeUnixNano: base.Add(2 * time.Second).UnixNano(), Type: "apply-failed", Severity: "error", Message: "vlan 4097 out of range"},
		{DSN: "d2", TimeUnixNano: base.Add(3 * time.Second).UnixNano(), Type: "log", Severity: "warning", Message: "link eth0 renegotiated at 100G"},
	}
	for _, e := range events {
		b.publish(t, wire.EventSubject(e.DSN), e)
	}
	b.flush(t)
	require.Eventually(t, func() bool { return in.Stats().Search.Written == 4 }, 10*time.Second, 10*time.Millisecond)
	// An audit record in the same index is not an event.
	require.NoError(t, in.SearchIndex().Index(context.Background(), search.Document{Time: base, Kind: search.KindAudit, Message: "applied by alice"}))
	require.NoError(t, search.Refresh(context.Background(), in.SearchIndex()))

	h := in.Handler()
	for _, tc := range []struct {
		query string
		want  []string // messages, in time order
		total int
	}{
		{"", []string{events[0].Message, events[1].Message, events[2].Message, events[3].Message}, 4},
		{q("q", "applied"), []string{events[0].Message}, 1},
		{q("dsn", "d2"), []string{events[2].Message, events[3].Message}, 2},
		{q("kind", "log"), []string{events[1].Message, events[3].Message}, 2},
		{q("kind", "event", "severity", "error"), []string{events[2].Message}, 1},
		{q("type", "config-applied", "field.revision", "42"), []string{events[0].Message}, 1},
		{q("field.revision", "43"), nil, 0},
		{q("from", base.Add(time.Second).Format(time.RFC3339), "to", unix(base.Add(2*time.Second))), []string{events[1].Message, events[2].Message}, 2},
		{q("limit", "3"), []string{events[0].Message, events[1].Message, events[2].Message}, 4},
	} {
		t.Run(tc.query, func(t *testing.T) {
			var res eventList
			require.Equal(t, 200, get(t, h, "/api/v1/events?"+tc.query, &res))
			var got []string
			for _, d := range res.Items {
				got = append(got, d.Message)
				assert.NotEmpty(t, d.ID)
			}
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.total, res.Total)
		})
	}
	var res eventList
	require.Equal(t, 200, get(t, h, "/api/v1/events?"+q("q", "vlan"), &res))
	require.Len(t, res.Items, 1)
	d := res.Items[0]
	at := base.Add(2 * time.Second).UTC()
	assert.Equal(t, search.Document{ID: d.ID, Time: at, Kind: search.KindEvent, DSN: "d2",
		Type: "apply-failed", Severity: "error", Message: "vlan 4097 out of range",
		Fields: map[string]string{FieldCount: "1", FieldFirstTime: at.Format(time.RFC3339Nano), FieldLastTime: at.Format(time.RFC3339Nano)}}, d)
}

func TestCloseFlushesWhatIsQueued(t *testing.T) {
	b := startBus(t)
	dir := t.TempDir()
	slow := queue.Config{FlushInterval: time.Hour} // nothing is written before Close
	in, _ := start(t, b, func(c *Config) {
		c.DataDir = dir
		c.TelemetryQueue, c.EventQueue, c.InventoryQueue = slow, slow, slow
	})
	at := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	publishLoad(t, b, 30, 10, 3, at)
	in.OnHello(&wire.Hello{Protocol: wire.Version, DSN: "d1"}, wire.Admitted, at)
	require.Eventually(t, func() bool {
		s := in.Stats()
		return s.Telemetry.Received == 30 && s.Events.Received == 30
	}, 5*time.Second, 5*time.Millisecond)
	s := in.Stats()
	require.Zero(t, s.TSDB.Written+s.Search.Written+s.Inventory.Written)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, in.Close(ctx))
	s = in.Stats()
	assert.Equal(t, uint64(300), s.TSDB.Written)
	assert.Equal(t, uint64(30), s.Search.Written)
	assert.Equal(t, uint64(2), s.Inventory.Written)
	assert.Zero(t, b.cp.NumSubscriptions())
	require.NoError(t, in.Close(ctx), "closing twice is harmless")

	// What was flushed is in the embedded backends' files.
	st, err := tsdb.Open("", filepath.Join(dir, "tsdb"), tsdb.Options{Logger: quiet()})
	require.NoError(t, err)
	defer st.Close()
	series, err := st.Select(ctx, tsdb.Query{Matchers: []tsdb.Matcher{tsdb.MetricName("dsn_load_value")}, From: at, To: at.Add(time.Hour)})
	require.NoError(t, err)
	n := 0
	for _, s := range series {
		n += len(s.Samples)
	}
	assert.Equal(t, 300, n)
	idx, err := search.Open("", filepath.Join(dir, "search"), search.Options{})
	require.NoError(t, err)
	defer idx.Close()
	res, err := idx.Search(ctx, search.Query{Text: "load"})
	require.NoError(t, err)
	assert.Equal(t, 30, res.Total)
}
