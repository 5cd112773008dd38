package measure

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pathAPI answers GETs from a map of path to the statuses it gives in turn (the last one for
// good); a path it does not know is 404.
type pathAPI struct{ answers map[string][]int }

func (a *pathAPI) Get(_ context.Context, path string) (int, []byte, error) {
	st, ok := a.answers[path]
	if !ok {
		return http.StatusNotFound, nil, nil
	}
	if len(st) > 1 {
		a.answers[path] = st[1:]
	}
	if st[0] == 0 {
		return 0, nil, errors.New("connection refused")
	}
	return st[0], nil, nil
}

func TestAckedWrites(t *testing.T) {
	noWait := func(context.Context, time.Duration) error { return nil }
	win := Window{Start: at(0), End: at(60)}

	// Nothing acknowledged: missing, never 0.
	res := measureOne(t, "acked-writes", &Input{Window: win, Acked: &AckedWrites{}, API: &pathAPI{}, Wait: noWait})
	v := values(t, res)
	assert.NotEmpty(t, v["acked_writes"].Missing)
	assert.NotEmpty(t, v["acked_writes_lost"].Missing)

	acked := &AckedWrites{}
	acked.Add(AckedWrite{Path: "/a", At: at(1)})
	acked.Add(AckedWrite{Path: "/b", At: at(2)})
	acked.Add(AckedWrite{Path: "/gone", At: at(3)})
	acked.Add(AckedWrite{Path: "/before", At: at(-1)}) // outside the window: not checked
	acked.Fail()
	// /b is read while the API fails over: refused, then 503, then found.
	// /a is read first from a replica whose view lags: 404 twice, then found.
	api := &pathAPI{answers: map[string][]int{"/a": {404, 404, 200}, "/b": {0, 503, 200}}}
	res = measureOne(t, "acked-writes", &Input{Window: win, Acked: acked, API: api, Wait: noWait})
	v = values(t, res)
	assert.Equal(t, 3.0, v["acked_writes"].Value)
	assert.Equal(t, 1.0, v["acked_writes_lost"].Value)
	require.Len(t, res.Anomalies, 1)
	assert.Equal(t, AnomalyLost, res.Anomalies[0].Kind)
	assert.Equal(t, []string{"/gone"}, res.Anomalies[0].Examples)
	assert.NotEmpty(t, v["failover_write_seconds"].Missing, "nothing was killed")

	// A replica killed at 1.5 s: the first write acknowledged after it came at 2 s. A kill
	// before the window does not count.
	cp := &CPEvents{}
	cp.Add(CPEvent{At: at(-5), Kind: CPKilled})
	cp.Add(CPEvent{At: at(1).Add(500 * time.Millisecond), Kind: CPKilled})
	cp.Add(CPEvent{At: at(2).Add(500 * time.Millisecond), Kind: CPKilled})
	api = &pathAPI{answers: map[string][]int{"/a": {200}, "/b": {200}, "/gone": {200}}}
	res = measureOne(t, "acked-writes", &Input{Window: win, Acked: acked, API: api, Wait: noWait, CP: cp})
	v = values(t, res)
	assert.InDelta(t, 0.5, v["failover_write_seconds"].Value, 1e-9, "from the first kill in the window to the next acknowledged write")

	// An API that never answers fails the measurement rather than counting a loss.
	m, _ := Default.Lookup("acked-writes")
	_, err := m.Measure(context.Background(), &Input{Window: win, Acked: acked, Wait: noWait,
		API: &pathAPI{answers: map[string][]int{"/a": {0}, "/b": {200}, "/gone": {200}}}})
	require.ErrorContains(t, err, "read back /a")
}
