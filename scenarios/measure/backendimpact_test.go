package measure

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/loadgen"
)

func TestBackendImpact(t *testing.T) {
	reading := func(dropped, failed, retried string) map[string]float64 {
		text := "dsnscale_queue_dropped_total{queue=\"telemetry\"} " + dropped + "\n" +
			"dsnscale_audit_records_failed_total " + failed + "\n" +
			"dsnscale_tsdb_writes_retried_total " + retried + "\n" +
			"dsnscale_queue_written_total{queue=\"telemetry\"} 900\n"
		got, err := ParseLossCounters(strings.NewReader(text))
		require.NoError(t, err)
		return got
	}
	c := &Counters{}
	c.Add(at(1), reading("10", "0", "3"))  // before the window: where it starts from
	c.Add(at(12), reading("25", "4", "9")) // in the window
	c.Add(at(40), reading("90", "9", "9")) // after it
	reqs := &Requests{}
	for i, class := range []loadgen.ErrorClass{loadgen.ClassOK, loadgen.ClassTimeout, loadgen.ClassOK, loadgen.Class5xx} {
		reqs.Record(&loadgen.Result{Start: at(10 + float64(i)), End: at(10 + float64(i)), Class: class})
	}
	reqs.Record(&loadgen.Result{Start: at(35), End: at(35), Class: loadgen.Class5xx}) // outside

	in := &Input{Window: Window{Start: at(5), End: at(30)}, Counters: c, Requests: reqs}
	v := values(t, measureOne(t, "backend-impact", in))
	assert.Equal(t, 19.0, v["backend_dropped_writes"].Value, "15 dropped and 4 lost in failed writes, in the window only")
	assert.Equal(t, 6.0, v["backend_retried_writes"].Value)
	assert.Equal(t, 2.0, v["backend_api_errors"].Value)

	// Nothing to read: missing, with the reason, never 0.
	none := values(t, measureOne(t, "backend-impact", &Input{Window: in.Window, Counters: &Counters{}, Requests: &Requests{}}))
	assert.Contains(t, none["backend_dropped_writes"].Missing, "not read")
	assert.Contains(t, none["backend_api_errors"].Missing, "no load ran")
	c2 := &Counters{}
	c2.Add(at(1), map[string]float64{"x_dropped_total": 0})
	c2.Add(at(10), map[string]float64{"x_dropped_total": 1})
	noRetries := values(t, measureOne(t, "backend-impact", &Input{Window: in.Window, Counters: c2, Requests: reqs}))
	assert.Contains(t, noRetries["backend_retried_writes"].Missing, "publishes no *_retried_total")
}
