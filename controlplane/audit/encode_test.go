package audit

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// A record encoded by hand reads back, through encoding/json, as the record itself.
func TestAppendJSONReadsBack(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		str := rapid.OneOf(rapid.String(), rapid.SampledFrom([]string{"", `"quoted" \back\`, "tab\tnew\nline\x00\x1f", "é ü 日本 \u2028\u2029 😀", "<a&b>"}))
		r := Record{
			ID: str.Draw(t, "id"), Time: time.Unix(0, rapid.Int64Range(0, 1<<62).Draw(t, "ns")).UTC(),
			User: str.Draw(t, "user"), Source: str.Draw(t, "source"), Method: str.Draw(t, "method"), Path: str.Draw(t, "path"),
			Verb: str.Draw(t, "verb"), Kind: str.Draw(t, "kind"), Tenant: str.Draw(t, "tenant"), Name: str.Draw(t, "name"),
			Status: rapid.IntRange(0, 999).Draw(t, "status"), Verdict: str.Draw(t, "verdict"), Binding: str.Draw(t, "binding"),
			Reason: str.Draw(t, "reason"), DurationMs: rapid.Float64Range(0, 1e9).Draw(t, "ms"),
		}
		r = bounded(r)
		enc := r.appendJSON(nil)
		require.True(t, json.Valid(enc), "%s", enc)
		var back Record
		require.NoError(t, json.Unmarshal(enc, &back))
		require.Equal(t, r, back)
		var viaJSON map[string]any
		want, err := json.Marshal(r)
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(want, &viaJSON))
		var viaHand map[string]any
		require.NoError(t, json.Unmarshal(enc, &viaHand))
		require.Equal(t, viaJSON, viaHand, "the same fields as encoding/json, omitted alike")
	})
}

// decodeRecord reads what appendJSON wrote without encoding/json, and anything else as
// encoding/json does: a fast path that disagreed with it would index a record other than the
// one stored.
func TestDecodeRecordAsEncodingJSON(t *testing.T) {
	str := rapid.OneOf(rapid.String(), rapid.SampledFrom([]string{"", "admin", "/api/v1/tenants/t1/networks/n-1", `"quoted" \back\`, "tab\tnew\nline\x00\x1f", "é ü 日本 \u2028\u2029 😀", "<a&b>"}))
	record := rapid.Custom(func(t *rapid.T) Record {
		return bounded(Record{
			ID: str.Draw(t, "id"), Time: time.Unix(0, rapid.Int64Range(0, 1<<62).Draw(t, "ns")).UTC(),
			User: str.Draw(t, "user"), Source: str.Draw(t, "source"), Method: str.Draw(t, "method"), Path: str.Draw(t, "path"),
			Verb: str.Draw(t, "verb"), Kind: str.Draw(t, "kind"), Tenant: str.Draw(t, "tenant"), Name: str.Draw(t, "name"),
			Status: rapid.IntRange(-1, 999).Draw(t, "status"), Verdict: str.Draw(t, "verdict"), Binding: str.Draw(t, "binding"),
			Reason: str.Draw(t, "reason"), DurationMs: rapid.Float64Range(0, 1e9).Draw(t, "ms"),
		})
	})
	t.Run("written", func(t *testing.T) {
		rapid.Check(t, func(t *rapid.T) {
			r := record.Draw(t, "record")
			got, err := decodeRecord(r.appendJSON(nil))
			require.NoError(t, err)
			require.Equal(t, r, got)
		})
	})
	t.Run("altered", func(t *testing.T) {
		// Records as written, then cut, spliced or given bytes: whatever encoding/json makes
		// of them, decodeRecord makes too.
		rapid.Check(t, func(t *rapid.T) {
			b := record.Draw(t, "record").appendJSON(nil)
			switch rapid.IntRange(0, 3).Draw(t, "how") {
			case 0:
				b = b[:rapid.IntRange(0, len(b)).Draw(t, "cut")]
			case 1:
				i := rapid.IntRange(0, len(b)).Draw(t, "at")
				ins := rapid.SampledFrom([]string{" ", `"`, ",", ":", "\\", "0", "-", ".", "e", "null", `"ID":"x",`, `"status":01,`, `"durationMs":.5,`, `"time":"2026-01-01T00:00:00Z",`, "\xff", `"extra":1,`}).Draw(t, "ins")
				b = append(b[:i:i], append([]byte(ins), b[i:]...)...)
			case 2:
				i := rapid.IntRange(0, len(b)-1).Draw(t, "at")
				b[i] = rapid.Byte().Draw(t, "byte")
			case 3:
				b = []byte(rapid.SampledFrom([]string{`{}`, `{"status":1e2}`, `{"status":-0}`, `{"durationMs":1E+2}`, `{"status":"1"}`, `{"id":null}`, `{"id":"a","id":"b"}`, `{"Id":"a"}`, `[]`, `{"time":"2026-13-01T00:00:00Z"}`}).Draw(t, "doc"))
			}
			var want Record
			wantErr := json.Unmarshal(b, &want)
			got, err := decodeRecord(b)
			if wantErr != nil {
				require.Error(t, err, "%q", b)
				return
			}
			require.NoError(t, err, "%q", b)
			require.Equal(t, want, got, "%q", b)
		})
	})
}
