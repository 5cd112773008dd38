package jsonenc

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// Any string, valid UTF-8 or not, appends as valid JSON that reads back as encoding/json reads
// its own encoding of it.
func TestAppendStringReadsBack(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := rapid.OneOf(
			rapid.String(),
			rapid.Map(rapid.SliceOf(rapid.Byte()), func(b []byte) string { return string(b) }),
			rapid.SampledFrom([]string{"", `"quoted" \back\`, "tab\tnew\nline\x00\x1f\x7f", "é ü 日本 \u2028\u2029 😀", "<a&b>", "\xff\xfe"}),
		).Draw(t, "s")
		enc := AppendString([]byte("prefix"), s)
		require.Equal(t, "prefix", string(enc[:6]))
		require.True(t, json.Valid(enc[6:]), "%q", enc[6:])
		var got, want string
		require.NoError(t, json.Unmarshal(enc[6:], &got))
		std, err := json.Marshal(s)
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(std, &want))
		require.Equal(t, want, got)
	})
}
