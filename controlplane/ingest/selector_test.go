package ingest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/wire"
	"github.com/dsnscale/dsnscale/tsdb"
)

func TestParseSelector(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []tsdb.Matcher
		err  string
	}{
		{in: "dsn_cpu_percent", want: []tsdb.Matcher{tsdb.MetricName("dsn_cpu_percent")}},
		{in: "  ns:dsn_cpu:rate5m  ", want: []tsdb.Matcher{tsdb.MetricName("ns:dsn_cpu:rate5m")}},
		{in: `dsn_cpu_percent{}`, want: []tsdb.Matcher{tsdb.MetricName("dsn_cpu_percent")}},
		{in: `dsn_cpu_percent{dsn="a", site!="s1",rack=~"r[0-9]+" , iface!~"lo|dummy.*",}`, want: []tsdb.Matcher{
			tsdb.MetricName("dsn_cpu_percent"), tsdb.Equal("dsn", "a"), tsdb.NotEqual("site", "s1"),
			tsdb.Regexp("rack", "r[0-9]+"), tsdb.NotRegexp("iface", "lo|dummy.*"),
		}},
		{in: `{__name__="x_y", dsn="a\"b\\c\u00e9"}`, want: []tsdb.Matcher{tsdb.Equal("__name__", "x_y"), tsdb.Equal("dsn", "a\"b\\cé")}},
		{in: "{dsn=`a\\b`}", want: []tsdb.Matcher{tsdb.Equal("dsn", `a\b`)}},
		{in: "", err: "empty selector"},
		{in: "{}", err: "empty selector"},
		{in: `{dsn=""}`, err: "matches the empty value"},
		{in: `{dsn!="a"}`, err: "matches the empty value"},
		{in: `{dsn=~"a*"}`, err: "matches the empty value"},
		{in: `x{dsn=~"a*"}`, want: []tsdb.Matcher{tsdb.MetricName("x"), tsdb.Regexp("dsn", "a*")}},
		{in: `x{dsn="a"`, err: "at byte 9: missing '}'"},
		{in: `x{dsn="a`, err: "unterminated string"},
		{in: `x{dsn='a'}`, err: "want a double-quoted string"},
		{in: `x{dsn}`, err: "want =, !=, =~ or !~"},
		{in: `x{dsn=="a"}`, err: "want a double-quoted string"},
		{in: `x{"dsn"="a"}`, err: "want a label name"},
		{in: `x{dsn="a" rack="b"}`, err: "want ',' or '}'"},
		{in: `x{dsn="\q"}`, err: "invalid syntax"},
		{in: "x{dsn=\"a\nb\"}", err: "newline in a string"},
		{in: `x{dsn=~"("}`, err: "missing closing )"},
		{in: `sum(x)`, err: "only a series selector"},
		{in: `x[5m]`, err: "only a series selector"},
		{in: `x y`, err: "only a series selector"},
		{in: `9x`, err: "want a metric name"},
		{in: "x{a=\"\xff\"}", err: "not valid UTF-8"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseSelector(tc.in)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func FuzzParseSelector(f *testing.F) {
	for _, s := range []string{`x`, `x{a="b"}`, `{a=~"b|c",d!~"e"}`, "{a=`b`}", `x{a="\u00e9\""}`, `x{`, `{a=~"("}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := ParseSelector(s)
		if err != nil {
			return
		}
		q := tsdb.Query{Matchers: ms, From: time.Unix(0, 1), To: time.Unix(1, 0)}
		if err := q.Validate(); err != nil {
			t.Fatalf("ParseSelector(%q) accepted matchers the TSDB refuses: %v", s, err)
		}
	})
}

// FuzzDecodeTelemetry checks that whatever a DSN sends is either refused or turned into points
// every TSDB accepts.
func FuzzDecodeTelemetry(f *testing.F) {
	f.Add([]byte(`{"dsn":"d1","timeUnixNano":1700000000000000000,"samples":[{"name":"dsn_cpu_percent","value":1.5},{"name":"x_y","labels":{"a":"b","c":""},"value":-2}]}`))
	f.Add([]byte(`{"dsn":"d1","timeUnixNano":1,"samples":[{"name":"bad name","labels":{"dsn":"x"},"value":1e308}]}`))
	f.Add([]byte(`{"dsn":"","samples":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var m telemetryMsg
		if err := wire.Unmarshal(data, &m); err != nil {
			return
		}
		for i := range m.Samples {
			ls, err := sampleLabels(m.DSN, &m.Samples[i])
			if err != nil {
				continue
			}
			if err := tsdb.ValidateLabels(ls); err != nil {
				t.Fatalf("accepted labels %s the TSDB refuses: %v", ls, err)
			}
			if ls.Get(DSNLabel) != m.DSN {
				t.Fatalf("labels %s do not name the sender %s", ls, m.DSN)
			}
		}
	})
}

// FuzzDecodeEvent checks that an event accepted is a document every search backend accepts.
func FuzzDecodeEvent(f *testing.F) {
	f.Add([]byte(`{"dsn":"d1","timeUnixNano":1700000000000000000,"type":"log","severity":"info","message":"hello","fields":{"a":"b"}}`))
	f.Add([]byte(`{"dsn":"d1","timeUnixNano":99999999999999999,"type":"x","severity":"error","fields":{"":"b"}}`))
	f.Add([]byte(`{"dsn":"d1","timeUnixNano":-1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var m eventMsg
		if err := wire.Unmarshal(data, &m); err != nil {
			return
		}
		d := newSeries("id", &m, time.Now()).document(m.seriesKey())
		if err := d.Validate(); err != nil {
			b, _ := json.Marshal(m)
			t.Fatalf("accepted event %s makes a document the index refuses: %v", b, err)
		}
	})
}
