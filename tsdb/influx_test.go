package tsdb_test

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/tsdb"
)

// fakeInflux answers the InfluxDB 2.x endpoints the client uses with canned data; it checks the
// requests this package sends and its decoding of Flux results, not InfluxDB's behaviour (the
// conformance suite does that when DSNSCALE_INFLUX_URL names a real server).
type fakeInflux struct {
	mu     sync.Mutex
	writes []string
	fluxes []string
	auth   []string
	csv    string
}

func (f *fakeInflux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	switch r.URL.Path {
	case "/ping":
		w.WriteHeader(http.StatusNoContent)
	case "/api/v2/buckets":
		if r.URL.Query().Get("name") != "metrics" {
			_, _ = io.WriteString(w, `{"buckets":[]}`)
			return
		}
		_, _ = io.WriteString(w, `{"buckets":[{"id":"b1","name":"metrics","orgID":"o1","retentionRules":[]}]}`)
	case "/api/v2/write":
		var rd io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			rd = zr
		}
		b, _ := io.ReadAll(rd)
		f.writes = append(f.writes, r.URL.Query().Get("org")+"/"+r.URL.Query().Get("bucket")+"/"+r.URL.Query().Get("precision")+": "+string(b))
		w.WriteHeader(http.StatusNoContent)
	case "/api/v2/query":
		var body struct {
			Query string `json:"query"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		f.fluxes = append(f.fluxes, body.Query)
		w.Header().Set("Content-Type", "text/csv")
		_, _ = io.WriteString(w, f.csv)
	default:
		http.NotFound(w, r)
	}
}

func openFakeInflux(t *testing.T, f *fakeInflux, bucket string) (tsdb.Storage, error) {
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	u := "influxdb://" + strings.TrimPrefix(srv.URL, "http://") + "?org=o1&bucket=" + bucket + "&token=s3cr3t"
	return tsdb.Open(u, "", tsdb.Options{Logger: quietLogger()})
}

const fluxCSV = `#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,string,string,string
#group,false,false,true,true,false,false,true,true,true,true
#default,_result,,,,,,,,,
,result,table,_start,_stop,_time,_value,_field,_measurement,dsn,site
,,0,2024-01-01T00:00:00Z,2024-01-01T01:00:00Z,2024-01-01T00:00:20Z,2.5,value,dsn_cpu_seconds,a,s1
,,0,2024-01-01T00:00:00Z,2024-01-01T01:00:00Z,2024-01-01T00:00:10.007Z,1.5,value,dsn_cpu_seconds,a,s1
,,1,2024-01-01T00:00:00Z,2024-01-01T01:00:00Z,2024-01-01T00:00:10Z,7,value,dsn_cpu_seconds,b,

`

func TestInfluxWriteAndFlux(t *testing.T) {
	f := &fakeInflux{csv: fluxCSV}
	st, err := openFakeInflux(t, f, "metrics")
	require.NoError(t, err)
	defer st.Close()

	app := st.Appender()
	require.NoError(t, app.Append(tsdb.Labels("up", "dsn", "a"), time.UnixMilli(1_704_067_210_007), 1))
	err = app.Append(tsdb.Labels("up", "_field", "x"), time.UnixMilli(1_704_067_210_007), 1)
	require.ErrorIs(t, err, tsdb.ErrInvalid, "labels InfluxDB reserves are refused")
	require.NoError(t, app.Commit(context.Background()))
	require.Equal(t, []string{"o1/metrics/ms: up,dsn=a value=1 1704067210007\n"}, f.writes)

	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	ss, err := st.Select(context.Background(), tsdb.Query{
		Matchers: []tsdb.Matcher{tsdb.MetricName("dsn_cpu_seconds"), tsdb.NotEqual("site", "s2"), tsdb.Regexp("dsn", `a|b"`), tsdb.Equal("in", "x")},
		From:     base, To: base.Add(time.Hour),
	})
	require.NoError(t, err)
	require.Len(t, ss, 2)
	assert.Equal(t, `{__name__="dsn_cpu_seconds",dsn="a",site="s1"}`, ss[0].Labels.String())
	assert.Equal(t, []tsdb.Sample{{Time: base.Add(10*time.Second + 7*time.Millisecond), Value: 1.5}, {Time: base.Add(20 * time.Second), Value: 2.5}},
		ss[0].Samples, "samples come back sorted by time")
	assert.Equal(t, `{__name__="dsn_cpu_seconds",dsn="b"}`, ss[1].Labels.String(), "an empty tag is an absent label")

	wantFlux := `import "regexp"
re2 = regexp.compile(v: "^(?:a|b\")$")
from(bucket: "metrics")
  |> range(start: 2024-01-01T00:00:00Z, stop: 2024-01-01T01:00:00.001Z)
  |> filter(fn: (r) => r._field == "value" and r._measurement == "dsn_cpu_seconds" and (not exists r.site or r.site != "s2") and (exists r.dsn and r.dsn =~ re2) and (exists r["in"] and r["in"] == "x"))`
	require.Len(t, f.fluxes, 1)
	assert.Equal(t, wantFlux, f.fluxes[0])

	_, err = st.Select(context.Background(), tsdb.Query{
		Matchers: []tsdb.Matcher{tsdb.MetricName("dsn_cpu_seconds")},
		From:     base.Add(5 * time.Second), To: base.Add(time.Minute), Step: 20 * time.Second,
	})
	require.NoError(t, err)
	assert.Contains(t, f.fluxes[1], "range(start: 2023-12-31T23:59:45.001Z, stop: 2024-01-01T00:01:00.001Z)")
	assert.Contains(t, f.fluxes[1], `aggregateWindow(every: 20000ms, offset: 5001ms, fn: last, createEmpty: false, timeSrc: "_stop")`)

	for _, a := range f.auth {
		assert.Equal(t, "Token s3cr3t", a)
	}
}

func TestInfluxMissingBucket(t *testing.T) {
	_, err := openFakeInflux(t, &fakeInflux{}, "nope")
	require.ErrorIs(t, err, tsdb.ErrBackend)
	assert.Contains(t, err.Error(), `bucket "nope"`)
	assert.NotContains(t, err.Error(), "s3cr3t")
}
