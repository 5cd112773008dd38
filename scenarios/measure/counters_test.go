package measure

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const exposition = `# HELP dsnscale_queue_dropped_total Items dropped, by reason.
# TYPE dsnscale_queue_dropped_total counter
dsnscale_queue_dropped_total{queue="events",reason="full"} 577405
dsnscale_queue_dropped_total{queue="telemetry",reason="full"} 0
# HELP dsnscale_ingest_samples_rejected_total Samples the TSDB refused.
# TYPE dsnscale_ingest_samples_rejected_total counter
dsnscale_ingest_samples_rejected_total 12
# HELP dsnscale_queue_offered_total Items passed to Offer.
# TYPE dsnscale_queue_offered_total counter
dsnscale_queue_offered_total{queue="events"} 1.237339e+06
# HELP go_goroutines Number of goroutines.
# TYPE go_goroutines gauge
go_goroutines 42
`

func TestParseLossCounters(t *testing.T) {
	got, err := ParseLossCounters(strings.NewReader(exposition))
	require.NoError(t, err)
	assert.Equal(t, map[string]float64{
		`dsnscale_queue_dropped_total{queue="events",reason="full"}`:    577405,
		`dsnscale_queue_dropped_total{queue="telemetry",reason="full"}`: 0,
		`dsnscale_ingest_samples_rejected_total`:                        12,
	}, got, "only the loss counters")

	_, err = ParseLossCounters(strings.NewReader("not a metric line {"))
	require.Error(t, err)
}

func FuzzParseLossCounters(f *testing.F) {
	f.Add(exposition)
	f.Add("x_dropped_total NaN\nx_dropped_total{a=\"b\"} -1\n")
	f.Fuzz(func(t *testing.T, text string) {
		got, err := ParseLossCounters(strings.NewReader(text))
		if err != nil {
			return
		}
		assert.LessOrEqual(t, len(got), maxCounterSeries)
		for k, v := range got {
			assert.GreaterOrEqual(t, v, 0.0, k)
		}
	})
}

func TestCounterIncreaseAcrossRestarts(t *testing.T) {
	c := &Counters{}
	const key = `x_dropped_total`
	// The first reading is where the run starts from: the control plane had dropped 100
	// before. It drops 50 more, restarts (counters back to 0) and drops 30.
	c.Add(at(1), map[string]float64{key: 100})
	c.Add(at(2), map[string]float64{key: 120})
	c.Add(at(3), map[string]float64{key: 150})
	c.Add(at(4), map[string]float64{key: 10})
	c.Add(at(5), map[string]float64{key: 30})
	// A series that appears later started from 0.
	c.Add(at(5), map[string]float64{"y_dropped_total": 7})
	assert.Equal(t, 80.0, c.Increase(key, at(0), at(10)))
	assert.Equal(t, 50.0, c.Increase(key, at(1), at(3)), "from the reading at 1 to the one at 3")
	assert.Equal(t, 30.0, c.Increase(key, at(3.5), at(10)), "the restart: 10, then 20 more")
	assert.Equal(t, 7.0, c.Increase("y_dropped_total", at(0), at(10)))
	assert.Zero(t, c.Increase(key, at(6), at(10)))
}

func TestCPDrops(t *testing.T) {
	c := &Counters{}
	first, err := ParseLossCounters(strings.NewReader(strings.ReplaceAll(exposition, "577405", "0")))
	require.NoError(t, err)
	c.Add(at(1), first)
	later, err := ParseLossCounters(strings.NewReader(exposition))
	require.NoError(t, err)
	c.Add(at(20), later)
	in := &Input{Window: Window{Start: at(0), End: at(30)}, Counters: c}
	res := measureOne(t, "cp-drops", in)
	v := values(t, res)
	assert.Equal(t, 577405.0, v["cp_dropped_items"].Value)
	assert.Equal(t, 0.0, v["cp_refused_items"].Value, "12 were refused before the run")
	assert.Contains(t, v["cp_rolled_up_items"].Missing, "publishes no *_rolled_up_total or *_aggregated_total counter")
	require.Len(t, res.Anomalies, 1)
	a := res.Anomalies[0]
	assert.Equal(t, AnomalyDropped, a.Kind)
	assert.Equal(t, 577405.0, a.Count)
	assert.Equal(t, `the control plane counted 577,405 dropped: dsnscale_queue_dropped_total{queue="events",reason="full"}`, a.Summary)

	none := values(t, measureOne(t, "cp-drops", &Input{Window: in.Window, Counters: func() *Counters {
		c := &Counters{}
		c.Fail("GET /metrics answered 404")
		return c
	}()}))
	assert.Equal(t, "GET /metrics answered 404", none["cp_dropped_items"].Missing)
}
