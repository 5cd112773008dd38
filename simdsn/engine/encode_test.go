package engine

import (
	"encoding/json"
	"math"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/wire"
)

func TestBatchWriterIsJSON(t *testing.T) {
	var w batchWriter
	w.begin("d\"1", 42)
	w.sample("a", "", 1.5)
	w.sample("b", `{"interface":"eth0"}`, 1e-9)
	w.sampleDecision("t/p#0", "allow", 3e22)
	w.end()
	var b wire.TelemetryBatch
	require.NoError(t, json.Unmarshal(w.b, &b))
	assert.Equal(t, wire.TelemetryBatch{DSN: "d\"1", TimeUnixNano: 42, Samples: []wire.Sample{
		{Name: "a", Value: 1.5},
		{Name: "b", Labels: map[string]string{"interface": "eth0"}, Value: 1e-9},
		{Name: "dsn_policy_flows_total", Labels: map[string]string{"action": "allow", "decision": "t/p#0"}, Value: 3e22},
	}}, b)
}

func FuzzBatchWriter(f *testing.F) {
	f.Add("d1", "t/p#0", 1.5, int64(7))
	f.Add("\x00\"\\", "\n", -3e-9, int64(-1))
	f.Fuzz(func(t *testing.T, dsn, label string, v float64, at int64) {
		var w batchWriter
		w.begin(dsn, at)
		w.sample(label, "", v)
		w.sampleDecision(label, "deny", v)
		w.end()
		var b wire.TelemetryBatch
		if err := json.Unmarshal(w.b, &b); err != nil {
			t.Fatalf("not JSON: %v: %s", err, w.b)
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			v = 0
		}
		if b.TimeUnixNano != at || len(b.Samples) != 2 || b.Samples[0].Value != v {
			t.Fatalf("decoded %+v from %s", b, w.b)
		}
		// Strings round-trip exactly when they are valid UTF-8 (JSON replaces invalid bytes).
		if utf8.ValidString(dsn) && b.DSN != dsn {
			t.Fatalf("dsn %q decoded as %q", dsn, b.DSN)
		}
	})
}
