package engine

import (
	"math"
	"strconv"

	"github.com/dsnscale/dsnscale/internal/jsonenc"
)

// batchWriter appends a wire.TelemetryBatch as JSON without reflection: telemetry is the bulk
// of what a fleet sends, so its encoding is the hot path.
type batchWriter struct {
	b     []byte
	first bool
}

func (w *batchWriter) begin(dsn string, t int64) {
	w.b = append(w.b, `{"dsn":`...)
	w.b = jsonenc.AppendString(w.b, dsn)
	w.b = append(w.b, `,"timeUnixNano":`...)
	w.b = strconv.AppendInt(w.b, t, 10)
	w.b = append(w.b, `,"samples":[`...)
	w.first = true
}

func (w *batchWriter) sep() {
	if !w.first {
		w.b = append(w.b, ',')
	}
	w.first = false
}

// sample appends one sample; labels is a JSON object or "".
func (w *batchWriter) sample(name, labels string, v float64) {
	w.sep()
	w.b = append(w.b, `{"name":`...)
	w.b = jsonenc.AppendString(w.b, name)
	if labels != "" {
		w.b = append(w.b, `,"labels":`...)
		w.b = append(w.b, labels...)
	}
	w.b = append(w.b, `,"value":`...)
	w.b = appendFloat(w.b, v)
	w.b = append(w.b, '}')
}

func (w *batchWriter) sampleDecision(decision, action string, v float64) {
	w.sep()
	w.b = append(w.b, `{"name":"dsn_policy_flows_total","labels":{"action":`...)
	w.b = jsonenc.AppendString(w.b, action)
	w.b = append(w.b, `,"decision":`...)
	w.b = jsonenc.AppendString(w.b, decision)
	w.b = append(w.b, `},"value":`...)
	w.b = appendFloat(w.b, v)
	w.b = append(w.b, '}')
}

func (w *batchWriter) end() { w.b = append(w.b, "]}"...) }

// appendFloat appends f as encoding/json would (non-finite values become 0: JSON has no NaN).
func appendFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, '0')
	}
	abs := math.Abs(f)
	fmt := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		fmt = 'e'
	}
	b = strconv.AppendFloat(b, f, fmt, -1, 64)
	if fmt == 'e' {
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}
