package queue

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the queue's Prometheus metrics, each labelled queue="<Config.Name>":
//
//	dsnscale_queue_depth           items buffered or being written
//	dsnscale_queue_capacity        Config.Capacity
//	dsnscale_queue_offered_total   items passed to Offer
//	dsnscale_queue_written_total   items the sink accepted
//	dsnscale_queue_dropped_total   items dropped, by reason (full, closed, failed, timeout)
//	dsnscale_queue_errors_total    failed sink calls
type metrics struct {
	reg        prometheus.Registerer
	collectors []prometheus.Collector
	offered    prometheus.Counter
	written    prometheus.Counter
	errors     prometheus.Counter
	dropped    *prometheus.CounterVec
}

func newMetrics(cfg Config, reg prometheus.Registerer, depth func() float64) (*metrics, error) {
	labels := prometheus.Labels{"queue": cfg.Name}
	m := &metrics{
		offered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dsnscale_queue_offered_total", Help: "Items passed to Offer.", ConstLabels: labels}),
		written: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dsnscale_queue_written_total", Help: "Items the backend accepted.", ConstLabels: labels}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dsnscale_queue_errors_total", Help: "Failed backend writes, every attempt counted.", ConstLabels: labels}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dsnscale_queue_dropped_total", Help: "Items dropped, by reason.", ConstLabels: labels},
			[]string{"reason"}),
	}
	for _, r := range []string{ReasonFull, ReasonClosed, ReasonFailed, ReasonTimeout} {
		m.dropped.WithLabelValues(r) // export zeros so dashboards and alerts see the series
	}
	cs := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "dsnscale_queue_depth", Help: "Items buffered or being written.", ConstLabels: labels}, depth),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "dsnscale_queue_capacity", Help: "Most items the queue holds.", ConstLabels: labels},
			func() float64 { return float64(cfg.Capacity) }),
		m.offered, m.written, m.errors, m.dropped,
	}
	m.reg, m.collectors = reg, cs
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, done := range cs[:i] {
				reg.Unregister(done)
			}
			return nil, fmt.Errorf("queue %s: registering metrics: %w", cfg.Name, err)
		}
	}
	return m, nil
}

// unregister removes the metrics, so that a queue of the same name can be created again.
func (m *metrics) unregister() {
	for _, c := range m.collectors {
		m.reg.Unregister(c)
	}
}
