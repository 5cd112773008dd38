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
