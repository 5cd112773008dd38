package loadgen

import (
	"sync"
	"sync/atomic"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram range: 1µs to 10 minutes at 3 significant digits. Longer values are clamped to the
// top, which still puts them above every quantile that matters.
const (
	histMinMicros = 1
	histMaxMicros = int64(10 * time.Minute / time.Microsecond)
	histDigits    = 3
)

func newHist() *hdr.Histogram { return hdr.New(histMinMicros, histMaxMicros, histDigits) }

func recordDur(h *hdr.Histogram, d time.Duration) {
	us := d.Microseconds()
	if us < histMinMicros {
		us = histMinMicros
	}
	if us > histMaxMicros {
		us = histMaxMicros
	}
	_ = h.RecordValue(us) // cannot fail: the value is in range
}

// recorder aggregates results into per-operation histograms and counters. One mutex guards
// it: recording is a few hundred nanoseconds, far below a request's cost.
type recorder struct {
	sink          Sink
	lateThreshold time.Duration

	started atomic.Int64
	missed  atomic.Int64

	mu          sync.Mutex
	ops         map[string]*opStats
	latency     *hdr.Histogram
	service     *hdr.Histogram
	classes     map[ErrorClass]int64
	statuses    map[int]int64
	completed   int64
	errors      int64
	interrupted int64
	lateStarts  int64
	maxLate     time.Duration
	lastEnd     time.Time
	samples     []ErrorSample
	sampled     map[ErrorClass]int
}

type opStats struct {
	count, errors     int64
	classes           map[ErrorClass]int64
	latency           *hdr.Histogram
	bytesIn, bytesOut int64
}

func newRecorder(sink Sink, lateThreshold time.Duration) *recorder {
	return &recorder{
		sink:          sink,
		lateThreshold: lateThreshold,
		ops:           map[string]*opStats{},
		latency:       newHist(),
		service:       newHist(),
		classes:       map[ErrorClass]int64{},
		statuses:      map[int]int64{},
		sampled:       map[ErrorClass]int{},
	}
}

// samplesPerClass is how many failed iterations of each error class a summary keeps, so that
// a report can say what went wrong without keeping every failure of a bad run.
const samplesPerClass = 5

// record files one finished iteration and forwards it to the sink.
func (rc *recorder) record(r *Result) {
	rc.mu.Lock()
	if r.End.After(rc.lastEnd) {
		rc.lastEnd = r.End
	}
	if late := r.Start.Sub(r.Intended); late > rc.lateThreshold {
		rc.lateStarts++
		rc.maxLate = max(rc.maxLate, late)
	}
	if r.Interrupt {
		rc.interrupted++
		rc.mu.Unlock()
		rc.forward(r)
		return
	}
	op := rc.ops[r.Op]
	if op == nil {
		op = &opStats{classes: map[ErrorClass]int64{}, latency: newHist()}
		rc.ops[r.Op] = op
	}
	rc.completed++
	op.count++
	op.bytesIn += r.BytesIn
	op.bytesOut += r.BytesOut
	if r.Status != 0 {
		rc.statuses[r.Status]++
	}
	if r.Class != ClassOK {
		rc.errors++
		op.errors++
		rc.classes[r.Class]++
		op.classes[r.Class]++
		if r.Class != ClassNoObject && rc.sampled[r.Class] < samplesPerClass {
			rc.sampled[r.Class]++
			rc.samples = append(rc.samples, newErrorSample(r))
		}
	}
	// An operation that was never sent has no latency worth the name.
	if r.Class != ClassNoObject {
		lat := r.Latency()
		recordDur(rc.latency, lat)
		recordDur(op.latency, lat)
		recordDur(rc.service, r.ServiceTime())
	}
	rc.mu.Unlock()
	rc.forward(r)
}

func (rc *recorder) forward(r *Result) {
	if rc.sink != nil {
		rc.sink.Record(r)
	}
}

// finish fills the parts of a summary the recorder knows.
func (rc *recorder) finish(s *Summary, start time.Time) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	s.Started = rc.started.Load()
	s.Missed = rc.missed.Load()
	s.Completed = rc.completed
	s.Interrupted = rc.interrupted
	s.Errors = rc.errors
	s.ErrorsByClass = copyMap(rc.classes)
	s.ErrorSamples = append([]ErrorSample(nil), rc.samples...)
	s.Statuses = copyMap(rc.statuses)
	s.LateStarts = rc.lateStarts
	s.MaxLateness = rc.maxLate
	s.Latency = quantiles(rc.latency)
	s.ServiceTime = quantiles(rc.service)
	if rc.lastEnd.After(start) {
		s.Elapsed = rc.lastEnd.Sub(start)
	}
	s.Ops = make(map[string]OpSummary, len(rc.ops))
	for name, op := range rc.ops {
		os := OpSummary{
			Count:         op.count,
			Errors:        op.errors,
			ErrorsByClass: copyMap(op.classes),
			Latency:       quantiles(op.latency),
			BytesIn:       op.bytesIn,
			BytesOut:      op.bytesOut,
		}
		if s.Elapsed > 0 {
			os.Throughput = float64(op.count-op.errors) / s.Elapsed.Seconds()
		}
		s.Ops[name] = os
	}
	if s.Elapsed > 0 {
		s.Throughput = float64(rc.completed-rc.errors) / s.Elapsed.Seconds()
	}
}

func quantiles(h *hdr.Histogram) Quantiles {
	if h.TotalCount() == 0 {
		return Quantiles{}
	}
	us := func(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
	return Quantiles{
		Count: h.TotalCount(),
		Mean:  time.Duration(h.Mean() * float64(time.Microsecond)),
		P50:   us(h.ValueAtQuantile(50)),
		P90:   us(h.ValueAtQuantile(90)),
		P99:   us(h.ValueAtQuantile(99)),
		P999:  us(h.ValueAtQuantile(99.9)),
		Max:   us(h.Max()),
	}
}

func copyMap[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
