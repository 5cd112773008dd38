package audit

import (
	"math"
	"strconv"
	"time"

	"github.com/dsnscale/dsnscale/internal/jsonenc"
)

// appendJSON appends r as encoding/json encodes it (the same fields and names, so that
// json.Unmarshal reads it back), without reflection: a record is encoded for every API call,
// and reflection made that a tenth of what the audit cost a call. r's strings must be valid
// UTF-8 (bounded makes them so).
func (r Record) appendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = jsonenc.AppendString(b, r.ID)
	b = append(b, `,"time":"`...)
	b = r.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	for _, f := range []struct{ name, value string }{{"user", r.User}, {"source", r.Source}} {
		if f.value != "" {
			b = appendField(b, f.name, f.value)
		}
	}
	b = appendField(b, "method", r.Method)
	b = appendField(b, "path", r.Path)
	for _, f := range []struct{ name, value string }{{"verb", r.Verb}, {"kind", r.Kind}, {"tenant", r.Tenant}, {"name", r.Name}} {
		if f.value != "" {
			b = appendField(b, f.name, f.value)
		}
	}
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(r.Status), 10)
	b = appendField(b, "verdict", r.Verdict)
	for _, f := range []struct{ name, value string }{{"binding", r.Binding}, {"reason", r.Reason}} {
		if f.value != "" {
			b = appendField(b, f.name, f.value)
		}
	}
	b = append(b, `,"durationMs":`...)
	d := r.DurationMs
	if math.IsNaN(d) || math.IsInf(d, 0) {
		d = 0 // not a JSON number; never a measured duration
	}
	b = strconv.AppendFloat(b, d, 'g', -1, 64)
	return append(b, '}')
}

func appendField(b []byte, name, value string) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return jsonenc.AppendString(b, value)
}
