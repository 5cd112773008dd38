package northbound

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestFailureDetail(t *testing.T) {
	body := `{"code":400,"reason":"BadRequest","message":"revision 9 does not exist yet","field":"fromRevision"}`
	msg, n := failureDetail(strings.NewReader(body))
	assert.Equal(t, "revision 9 does not exist yet", msg)
	assert.Equal(t, int64(len(body)), n)

	msg, _ = failureDetail(strings.NewReader("  upstream gone\n"))
	assert.Equal(t, "upstream gone", msg, "a body that is not the API's error is kept as text")

	long := strings.Repeat("x", 20<<10)
	msg, n = failureDetail(strings.NewReader(long))
	assert.Equal(t, maxDetail+len("…"), len(msg))
	assert.Equal(t, int64(len(long)), n, "every byte is counted, also past what is kept")
}
