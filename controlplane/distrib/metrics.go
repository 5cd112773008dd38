package distrib

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics is the distributor's own telemetry.
type metrics struct {
	pushes          *prometheus.CounterVec // by push type
	pushBytes       prometheus.Counter
	pushErrors      prometheus.Counter
	acks            *prometheus.CounterVec // by outcome
	hellos          *prometheus.CounterVec // by outcome
	heartbeats      *prometheus.CounterVec // by outcome
	corrective      *prometheus.CounterVec // by action
	queueDepth      *prometheus.GaugeVec   // by queue
	connected       prometheus.Gauge
	known           prometheus.Gauge
	behind          prometheus.Gauge
	maxLag          prometheus.Gauge
	syncsInFlight   prometheus.Gauge
	revision        prometheus.Gauge
	batches         prometheus.Counter
	batchEvents     prometheus.Counter
	batchSeconds    prometheus.Histogram
	coalesceWindow  prometheus.Gauge
	snapshotWrites  *prometheus.CounterVec // by outcome
	snapshotBytes   prometheus.Counter
	registryWrites  *prometheus.CounterVec // by outcome
	ownedPartitions prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "dsnscale", "distrib"
	m := &metrics{
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "pushes_total", Help: "Pushes sent to DSNs, by type."}, []string{"type"}),
		pushBytes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "push_bytes_total", Help: "Bytes of pushes sent to DSNs."}),
		pushErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "push_errors_total", Help: "Pushes the NATS connection refused."}),
		acks: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "acks_total", Help: "Acks received, by outcome."}, []string{"outcome"}),
		hellos: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "hellos_total", Help: "Hellos received, by outcome."}, []string{"outcome"}),
		heartbeats: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "heartbeats_total", Help: "Heartbeats received, by outcome."}, []string{"outcome"}),
		corrective: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "corrective_actions_total", Help: "Corrective actions against stragglers, by action."}, []string{"action"}),
		queueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "queue_depth", Help: "Work waiting, by queue (hello, push, event, registry)."}, []string{"queue"}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "connected_dsns", Help: "DSNs with a live session."}),
		known: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "known_dsns", Help: "DSNs in the registry."}),
		behind: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "dsns_behind", Help: "Connected DSNs whose applied revision is below the desired one."}),
		maxLag: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "revision_lag_max", Help: "Largest desired minus applied revision among connected DSNs."}),
		syncsInFlight: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "syncs_in_flight", Help: "Admissions with a delta or snapshot not yet acked."}),
		revision: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "revision", Help: "The store revision the distributor has processed."}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "batches_total", Help: "Batches of store events distributed."}),
		batchEvents: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "batch_events_total", Help: "Store events distributed."}),
		batchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
			Name: "batch_seconds", Help: "Time to compute and queue the pushes of one batch.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10)}),
		coalesceWindow: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "coalesce_window_seconds", Help: "How long store changes wait for others to be distributed with them, from the first (0: not at all)."}),
		snapshotWrites: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "snapshot_writes_total", Help: "Group snapshots written, by outcome."}, []string{"outcome"}),
		snapshotBytes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "snapshot_bytes_total", Help: "Bytes of group snapshots written."}),
		registryWrites: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "registry_writes_total", Help: "DSN registry writes, by outcome."}, []string{"outcome"}),
		ownedPartitions: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "owned_partitions", Help: "DSN partitions this replica serves (with ownership on)."}),
	}
	if reg == nil {
		return m, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.pushes, m.pushBytes, m.pushErrors, m.acks, m.hellos,
		m.heartbeats, m.corrective, m.queueDepth, m.connected, m.known, m.behind, m.maxLag,
		m.syncsInFlight, m.revision, m.batches, m.batchEvents, m.batchSeconds, m.coalesceWindow, m.snapshotWrites,
		m.snapshotBytes, m.registryWrites, m.ownedPartitions} {
		errs = append(errs, reg.Register(c))
	}
	return m, errors.Join(errs...)
}
