package search

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A stored source gives back the document, its data byte for byte whatever the data holds, and
// a source stored as the whole document's JSON still reads.
func TestStoredSourceRoundTrips(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, d := range []Document{
		{ID: "a", Time: at, Kind: KindEvent, Message: "line one\nline two", Fields: map[string]string{"k": "v\nw"}},
		{ID: "b", Time: at, Kind: KindAudit, Message: "m", Data: `[{"x":"a\"b"},` + "\n" + `{"y":"\n"}]`},
		{ID: "c", Time: at, Kind: KindAudit, Data: "\n\nstarts with newlines"},
	} {
		src, err := encodeSource(d)
		require.NoError(t, err)
		got, err := decodeSource(src)
		require.NoError(t, err)
		assert.Equal(t, d, got, d.ID)
	}
	old, err := json.Marshal(Document{ID: "old", Time: at, Kind: KindAudit, Data: "[1,2]"})
	require.NoError(t, err)
	got, err := decodeSource(string(old))
	require.NoError(t, err)
	assert.Equal(t, "[1,2]", got.Data)
	_, err = decodeSource("{broken\n[]")
	assert.Error(t, err)
}
