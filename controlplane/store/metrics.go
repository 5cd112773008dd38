package store

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the store's Prometheus metrics. They exist whether or not a registerer was given,
// so that the code that updates them needs no checks.
type metrics struct {
	reg         prometheus.Registerer
	registered  []prometheus.Collector
	commits     *prometheus.CounterVec
	latency     prometheus.Histogram
	conflicts   prometheus.Counter
	compactions prometheus.Counter
	watchers    prometheus.Gauge
	eventLog    prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, bucket string) (*metrics, error) {
	labels := prometheus.Labels{"bucket": bucket}
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "dsnscale", Subsystem: "store", Name: name, Help: help, ConstLabels: labels}
	}
	m := &metrics{
		reg: reg,
		commits: prometheus.NewCounterVec(prometheus.CounterOpts(opts("commits_total",
			"Commit calls by result: committed, dry_run, rejected (invalid, precondition or check failed), conflict, failed.")),
			[]string{"result"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "dsnscale", Subsystem: "store", Name: "commit_duration_seconds",
			Help:        "Time of Commit calls that wrote a batch, including the wait for the writer lock.",
			ConstLabels: labels,
			Buckets:     prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		conflicts:   prometheus.NewCounter(prometheus.CounterOpts(opts("conflicts_total", "Commits refused with ErrConflict, by the store or by the server."))),
		compactions: prometheus.NewCounter(prometheus.CounterOpts(opts("compactions_total", "Compactions that raised the horizon."))),
		watchers:    prometheus.NewGauge(prometheus.GaugeOpts(opts("watchers", "Running watches."))),
		eventLog:    prometheus.NewGauge(prometheus.GaugeOpts(opts("event_log_events", "Events held in the in-memory event log."))),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.commits, m.latency, m.conflicts, m.compactions, m.watchers, m.eventLog} {
		if err := reg.Register(c); err != nil {
			m.unregister()
			return nil, fmt.Errorf("store: register metrics: %w", err)
		}
		m.registered = append(m.registered, c)
	}
	return m, nil
}

func (m *metrics) unregister() {
	for _, c := range m.registered {
		m.reg.Unregister(c)
	}
	m.registered = nil
}

func (m *metrics) observeCommit(dryRun, checkFailed bool, err error, took time.Duration) {
	var result string
	switch {
	case err == nil && dryRun:
		result = "dry_run"
	case err == nil:
		result = "committed"
		m.latency.Observe(took.Seconds())
	case checkFailed:
		result = "rejected"
	case errors.Is(err, ErrConflict):
		result = "conflict"
		m.conflicts.Inc()
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrNotFound), errors.Is(err, ErrAlreadyExists), errors.Is(err, ErrClosed):
		result = "rejected"
	default:
		result = "failed"
	}
	m.commits.WithLabelValues(result).Inc()
}
