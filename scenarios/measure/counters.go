package measure

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// MetricsPath is where a control plane publishes its metrics in the Prometheus text format.
const MetricsPath = "/metrics"

// LossCounter says what a family of counters counts. A control plane's counters are recognised
// by the end of their names, as Prometheus names them: a control plane of another make is read
// the same way when it follows the convention.
type LossCounter struct {
	Suffix  string
	Anomaly string
	What    string
}

// LossCounters are the counter families the harness reads from the control plane's metrics.
var LossCounters = []LossCounter{
	{"_dropped_total", AnomalyDropped, "dropped"},
	{"_rejected_total", AnomalyRefused, "refused"},
	{"_invalid_total", AnomalyRefused, "refused as invalid"},
	{"_rolled_up_total", AnomalyRolledUp, "rolled up"},
	{"_aggregated_total", AnomalyRolledUp, "kept only in aggregate"},
}

// lossCounter returns the family a metric name belongs to.
func lossCounter(name string) (LossCounter, bool) {
	for _, c := range LossCounters {
		if strings.HasSuffix(name, c.Suffix) {
			return c, true
		}
	}
	return LossCounter{}, false
}

// maxCounterSeries bounds how many counter series one scrape keeps, so that a control plane
// labelling its counters per DSN cannot fill the harness's memory.
const maxCounterSeries = 2000

// ParseLossCounters reads a Prometheus text exposition and returns the value of every counter
// series of a LossCounters family, keyed "name{label="value",...}" with labels sorted.
func ParseLossCounters(r io.Reader) (map[string]float64, error) {
	fams, err := parseExposition(r)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	out := map[string]float64{}
	for _, name := range sortedKeys(fams) {
		if _, ok := lossCounter(name); !ok && !strings.HasSuffix(name, "_failed_total") && !isRetryCounter(name) {
			continue
		}
		f := fams[name]
		for _, m := range f.GetMetric() {
			var v float64
			switch {
			case m.GetCounter() != nil:
				v = m.GetCounter().GetValue()
			case m.GetUntyped() != nil:
				v = m.GetUntyped().GetValue()
			default:
				continue
			}
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				continue
			}
			if len(out) >= maxCounterSeries {
				return out, nil
			}
			out[seriesKey(name, m.GetLabel())] = v
		}
	}
	return out, nil
}

// parseExposition parses a text exposition. The parser panics on some malformed input (a
// sample line with no metric name after a TYPE line); that is an error here like any other.
func parseExposition(r io.Reader) (fams map[string]*dto.MetricFamily, err error) {
	defer func() {
		if p := recover(); p != nil {
			fams, err = nil, fmt.Errorf("malformed exposition: %v", p)
		}
	}()
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(r)
}

func seriesKey(name string, labels []*dto.LabelPair) string {
	if len(labels) == 0 {
		return name
	}
	parts := make([]string, len(labels))
	for i, l := range labels {
		parts[i] = fmt.Sprintf("%s=%q", l.GetName(), l.GetValue())
	}
	sort.Strings(parts)
	return name + "{" + strings.Join(parts, ",") + "}"
}

// CounterSample is one reading of a counter.
type CounterSample struct {
	At    time.Time
	Value float64
}

// Counters records the control plane's loss counters (see LossCounters) over a run, as its
// metrics endpoint reported them. It is safe for concurrent use.
type Counters struct {
	mu      sync.Mutex
	series  map[string][]CounterSample
	scrapes int
	first   time.Time
	failure string
}

// Add records one reading of every counter series.
func (c *Counters) Add(at time.Time, values map[string]float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.series == nil {
		c.series = map[string][]CounterSample{}
	}
	if c.scrapes == 0 {
		c.first = at
	}
	c.scrapes++
	for k, v := range values {
		c.series[k] = append(c.series[k], CounterSample{at, v})
	}
}

// Fail records why a reading could not be taken.
func (c *Counters) Fail(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failure = reason
}

// Read says whether any reading was taken, and if none why.
func (c *Counters) Read() (bool, string) {
	if c == nil {
		return false, "the control plane's metrics were not read"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.scrapes > 0 {
		return true, ""
	}
	if c.failure == "" {
		return false, "the control plane's metrics were not read"
	}
	return false, c.failure
}

// Keys lists the counter series seen, sorted.
func (c *Counters) Keys() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return sortedKeys(c.series)
}

// Since returns how much a counter series grew from start to now, where now is a reading
// taken after every recorded one (nil when none was taken): a measurement that settles after
// the run reads the counters again rather than trust the last periodic reading.
func (c *Counters) Since(key string, start time.Time, now map[string]float64) float64 {
	c.mu.Lock()
	samples := c.series[key]
	c.mu.Unlock()
	total := c.Increase(key, start, time.Unix(1<<62, 0))
	v, ok := now[key]
	if !ok {
		return total
	}
	last := 0.0 // a series first seen now started from 0, as in Increase
	if n := len(samples); n > 0 {
		last = samples[n-1].Value
	}
	if v >= last {
		return total + v - last
	}
	return total + v // the control plane restarted since the last reading
}

// Increase returns how much a counter series grew over [start, end]: from its last reading at
// or before start to its last reading at or before end. The first reading of the run is where
// every counter it holds starts (a control plane may have counted before the run); a series
// that appears later started from 0 since. A reading below the one before it is a restart of
// the control plane, whose counters start again from 0.
func (c *Counters) Increase(key string, start, end time.Time) float64 {
	c.mu.Lock()
	samples, first := c.series[key], c.first
	c.mu.Unlock()
	prev, total := 0.0, 0.0
	for i, s := range samples {
		if s.At.After(end) {
			break
		}
		if !s.At.After(start) || (i == 0 && s.At.Equal(first)) {
			prev = s.Value
			continue
		}
		if s.Value >= prev {
			total += s.Value - prev
		} else {
			total += s.Value
		}
		prev = s.Value
	}
	return total
}
