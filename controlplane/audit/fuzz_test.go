package audit

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzParseQuery checks that any query string either parses into a query the search backend
// accepts or is refused with the parameter named.
func FuzzParseQuery(f *testing.F) {
	f.Add("user=alice&verb=get&from=2026-01-01T00:00:00Z&limit=10")
	f.Add("to=2026-01-01T00:00:00Z&from=2027-01-01T00:00:00Z")
	f.Add("text=%ff&limit=-1")
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := ParseQuery(v)
		if err != nil {
			var fe *FieldError
			require.ErrorAs(t, err, &fe)
			require.NotEmpty(t, fe.Field)
			return
		}
		sq := blocks(q, firstBlockTime(q))
		require.NoError(t, sq.Validate())
	})
}
