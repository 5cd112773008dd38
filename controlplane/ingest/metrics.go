package ingest

import (
	"fmt"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Message kinds, as in the "kind" label of the ingestion's metrics.
const (
	KindTelemetry = "telemetry"
	KindEvent     = "event"
)

var (
	kinds   = [...]string{KindTelemetry, KindEvent}
	reasons = [...]string{ReasonMalformed, ReasonDSN, ReasonTime, ReasonContent}
)

func kindIndex(kind string) int {
	if kind == KindEvent {
		return 1
	}
	return 0
}

func reasonIndex(reason string) int {
	for i, r := range reasons {
		if r == reason {
			return i
		}
	}
	return 0
}

// counters count what the ingestion did. They are the source of both Stats and the metrics.
type counters struct {
	messages         [len(kinds)]atomic.Uint64
	invalid          [len(kinds)][len(reasons)]atomic.Uint64
	samples          atomic.Uint64
	samplesInvalid   atomic.Uint64
	pollsOK          atomic.Uint64
	pollsFailed      atomic.Uint64
	inventoryInvalid atomic.Uint64
}

// metrics exports the counters, and what NATS and the TSDB writer count, to Prometheus (the
// queues register theirs, labelled queue="telemetry", "events" and "inventory"):
//
//	dsnscale_ingest_messages_total{kind}                 messages received (kind telemetry, event)
//	dsnscale_ingest_messages_invalid_total{kind,reason}  messages refused, by ReasonMalformed, ...
//	dsnscale_ingest_messages_dropped_total{kind}         messages NATS dropped because the
//	                                                     subscriptions fell behind (slow consumer)
//	dsnscale_ingest_events_rolled_up_total               events stored only in the count of their
//	                                                     series (all but its first)
//	dsnscale_ingest_events_rolled_up_dropped_total       events lost with a series the full search
//	                                                     queue refused, beyond its one document
//	dsnscale_ingest_event_series_written_total           event series documents the search queue
//	                                                     took
//	dsnscale_ingest_event_series_held_total              series kept open past their window because
//	                                                     the search queue was full
//	dsnscale_ingest_event_series_open                    event series open now
//	dsnscale_ingest_samples_total                        samples offered to the TSDB queue
//	dsnscale_ingest_samples_invalid_total                samples refused (name, labels, time)
//	dsnscale_ingest_samples_rejected_total               samples the TSDB refused (too old, ...)
//	dsnscale_ingest_inventory_polls_total{result}        fleet polls, by ok or error
//	dsnscale_ingest_inventory_invalid_total              inventory writes the database refused
type metrics struct {
	reg        prometheus.Registerer
	collectors []prometheus.Collector
}

func newMetrics(reg prometheus.Registerer, c *counters, agg *aggregator, dropped func(kind string) float64, rejected func() float64) (*metrics, error) {
	m := &metrics{reg: reg}
	counter := func(name, help string, labels prometheus.Labels, f func() float64) {
		m.collectors = append(m.collectors, prometheus.NewCounterFunc(
			prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels}, f))
	}
	load := func(v *atomic.Uint64) func() float64 { return func() float64 { return float64(v.Load()) } }
	for i, k := range kinds {
		kl := prometheus.Labels{"kind": k}
		counter("dsnscale_ingest_messages_total", "Telemetry and event messages received from DSNs.", kl, load(&c.messages[i]))
		counter("dsnscale_ingest_messages_dropped_total", "Messages NATS dropped because the ingestion subscriptions fell behind.",
			kl, func() float64 { return dropped(k) })
		for j, r := range reasons {
			counter("dsnscale_ingest_messages_invalid_total", "Messages refused as invalid, by reason.",
				prometheus.Labels{"kind": k, "reason": r}, load(&c.invalid[i][j]))
		}
	}
	counter("dsnscale_ingest_events_rolled_up_total", "Events stored only in the count of a series of the same DSN, type, severity and message (all but the first of each series the search queue took).",
		nil, load(&agg.rolledUp))
	counter("dsnscale_ingest_events_rolled_up_dropped_total", "Events lost with a series the full search queue refused, beyond the one document it counts as dropped.",
		nil, load(&agg.lost))
	counter("dsnscale_ingest_event_series_written_total", "Event series documents the search queue took.", nil, load(&agg.written))
	counter("dsnscale_ingest_event_series_held_total", "Times an event series whose window had ended stayed open because the search queue was full (the index is not keeping up).",
		nil, load(&agg.held))
	m.collectors = append(m.collectors, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dsnscale_ingest_event_series_open",
		Help: "Event series open now, waiting for their window to end or for room in the search queue."}, func() float64 { return float64(agg.openSeries()) }))
	counter("dsnscale_ingest_samples_total", "Samples offered to the TSDB queue.", nil, load(&c.samples))
	counter("dsnscale_ingest_samples_invalid_total", "Samples refused for a bad metric name or labels, or a time too far ahead.", nil, load(&c.samplesInvalid))
	counter("dsnscale_ingest_samples_rejected_total", "Samples the TSDB refused one by one (too old, conflicting).", nil, rejected)
	counter("dsnscale_ingest_inventory_polls_total", "Polls of the fleet for the inventory, by result.", prometheus.Labels{"result": "ok"}, load(&c.pollsOK))
	counter("dsnscale_ingest_inventory_polls_total", "Polls of the fleet for the inventory, by result.", prometheus.Labels{"result": "error"}, load(&c.pollsFailed))
	counter("dsnscale_ingest_inventory_invalid_total", "Inventory writes skipped because the database refused them as invalid.", nil, load(&c.inventoryInvalid))
	if reg == nil {
		return m, nil
	}
	for i, col := range m.collectors {
		if err := reg.Register(col); err != nil {
			for _, done := range m.collectors[:i] {
				reg.Unregister(done)
			}
			return nil, fmt.Errorf("%w: registering metrics: %w", ErrConfig, err)
		}
	}
	return m, nil
}

func (m *metrics) unregister() {
	if m == nil || m.reg == nil {
		return
	}
	for _, c := range m.collectors {
		m.reg.Unregister(c)
	}
}
