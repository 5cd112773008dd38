package measure

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/faults"
)

func perDSN(t *testing.T, in *Input) map[string]DSNValues {
	t.Helper()
	out := map[string]DSNValues{}
	for _, v := range PerDSN(context.Background(), in) {
		out[v.Name] = v
	}
	require.Len(t, out, 5)
	return out
}

// boot takes a DSN through its boot to serving at rev.
func boot(tl *Timeline, id string, sec float64, rev uint64) {
	tl.State(id, at(sec), "booting", false, false)
	tl.State(id, at(sec+0.1), "booting", false, false) // another stage of the boot
	serve(tl, id, sec+0.5, rev)
}

func TestPerDSN(t *testing.T) {
	ids := []string{"a", "b", "c"}
	tl := NewTimeline(ids)
	revs := &Revisions{}
	revs.Add(Mark{Revision: 1, At: at(0), Source: SourceWrite})
	for _, id := range ids {
		boot(tl, id, 0, 1)
	}
	// Three changes; c applies each 3 s late, a and b within 0.1 s; c never applies the last.
	for i, rev := range []uint64{2, 3, 4} {
		sec := float64(10 + 10*i)
		revs.Add(Mark{Revision: rev, At: at(sec), Source: SourceWrite})
		tl.Applied("a", at(sec+0.1), rev)
		tl.Applied("b", at(sec+0.1), rev)
		if rev < 4 {
			tl.Applied("c", at(sec+3), rev)
		}
	}
	// b is restarted by a fault at 35 and back at 37; a restarts on its own at 40.
	tl.State("b", at(35), "restarting", false, false)
	boot(tl, "b", 36, 4)
	tl.State("a", at(40), "restarting", false, false)
	boot(tl, "a", 41, 4)
	tl.AcksDropped("c", 3)
	in := &Input{Window: Window{Start: at(0), End: at(50), Horizon: at(60)}, DSNs: ids, Timeline: tl, Revisions: revs,
		Injections: []faults.Injection{{Seq: 1, Kind: restartFaultID, Start: at(35), DSNs: []string{"b"}}}}

	got := perDSN(t, in)
	rec := got[DSNRecovery]
	assert.Equal(t, map[string]float64{"b": 1.5}, rec.Values, "b served the current revision 1.5 s after the fault")

	lag := got[DSNLag]
	assert.InDelta(t, 0.1, lag.Values["a"], 1e-9)
	assert.InDelta(t, 3.0, lag.Values["c"], 1e-9, "median of 3, 3 and 30 (never: counted until the horizon)")
	assert.False(t, lag.Censored["c"])

	assert.Equal(t, map[string]float64{"a": 1, "b": 0, "c": 0}, got[DSNRestarts].Values, "b's restart was the fault's; boot stages count once")
	assert.Equal(t, map[string]float64{"a": 0, "b": 0, "c": 3}, got[DSNDroppedAcks].Values)
	assert.Equal(t, "no control-plane API", got[DSNCorrective].Missing)
}

func TestPerDSNCorrectivePages(t *testing.T) {
	item := func(id string, resends, resyncs int) string {
		return fmt.Sprintf(`{"metadata":{"name":%q},"status":{"state":"in-sync","corrective":{"resends":%d,"resyncs":%d,"quarantines":0}}}`, id, resends, resyncs)
	}
	var asked []string
	api := apiFunc(func(path string) (int, []byte) {
		asked = append(asked, path)
		u, _ := url.Parse(path)
		if u.Path != DSNsPath {
			return 404, nil
		}
		if u.Query().Get("continue") == "" {
			return 200, []byte(`{"metadata":{"continue":"b"},"items":[` + item("a", 1, 0) + "," + item("b", 0, 0) + `]}`)
		}
		return 200, []byte(`{"metadata":{},"items":[` + item("c", 4, 2) + "," + item("not-ours", 9, 9) + `]}`)
	})
	tl := NewTimeline([]string{"a", "b", "c"})
	in := &Input{Window: Window{Start: at(0), End: at(10)}, DSNs: []string{"a", "b", "c"}, Timeline: tl, Revisions: &Revisions{}, API: api}
	got := perDSN(t, in)[DSNCorrective]
	assert.Empty(t, got.Missing)
	assert.Equal(t, map[string]float64{"a": 1, "b": 0, "c": 6}, got.Values)
	require.Len(t, asked, 2)
	assert.True(t, strings.Contains(asked[1], "continue=b"), asked[1])
	assert.Equal(t, "the fleet does not count the acks its DSNs drop", perDSN(t, in)[DSNDroppedAcks].Missing)
}
