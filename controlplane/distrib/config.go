package distrib

import (
	"context"
	"errors"
	"fmt"
	"github.com/dsnscale/dsnscale/controlplane/wire"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dsnscale/dsnscale/controlplane/store"
)

// DefaultRegistryBucket is the JetStream KV bucket holding the DSN registry.
const DefaultRegistryBucket = "dsn-registry"

// Config configures a Distributor. It is pure data: New fills in defaults for zero values.
// AdmissionObserver hears of admissions; it is defined here so that distribution does not
// depend on the backends that record them.
type AdmissionObserver interface {
	OnHello(h *wire.Hello, status string, at time.Time)
}

// Identity is what admission fixed about a DSN: its tenant and its labels.
type Identity struct {
	Tenant string
	Labels map[string]string
}

// Identities gives the admitted identity of a DSN, or false when the DSN has none (it was
// never admitted through a bootstrap token: security is off, or a fleet gateway speaks for
// it). It is defined here so that distribution does not depend on the admission store.
//
// Mark is taken when a Hello arrives and Admitted is asked with it when a worker takes the
// Hello up: the answer must reflect every admission recorded before the mark (one made on
// another replica included), and may come from a cache that is kept that fresh.
type Identities interface {
	Mark() uint64
	Admitted(ctx context.Context, dsn string, mark uint64) (Identity, bool, error)
}

type Config struct {
	// Conn is the control plane's NATS connection (required).
	Conn *nats.Conn
	// JS is a JetStream context on Conn, for the registry and snapshot buckets (required).
	JS jetstream.JetStream
	// Store is the intent store (required).
	Store store.Store
	// Registerer receives the distributor's metrics; nil registers them nowhere.
	Registerer prometheus.Registerer
	// Logger; nil discards logs.
	Logger *slog.Logger
	// Clock; nil is the system clock.
	Clock Clock
	// Observer, if set, hears of every Hello that was decoded and answered (the inventory
	// keeps admission history from it). It must not block.
	Observer AdmissionObserver
	// Identities, if set, holds the tenant and labels of admitted DSNs: such a DSN gets its
	// tenant's view only, and a Hello whose labels contradict the admitted ones is rejected
	// (docs/PROTOCOL.md, Tenant isolation). Without it (or for a DSN it does not know) the
	// Hello's labels are taken as they are and the DSN has no tenant.
	Identities Identities

	// HeartbeatInterval is what DSNs are told to heartbeat at (default 10s).
	HeartbeatInterval time.Duration
	// OfflineAfter marks a DSN offline when it has not been heard from for this long (default
	// 3 heartbeat intervals).
	OfflineAfter time.Duration
	// StragglerDeadline is how long a DSN may stay behind its desired revision before each
	// corrective step: resend, then forced resync, then quarantine (default 30s).
	StragglerDeadline time.Duration
	// CheckInterval is how often stragglers, offline DSNs and sync slots are checked (default
	// StragglerDeadline/4, at most 1s).
	CheckInterval time.Duration
	// MaxConcurrentSyncs bounds the admissions with a delta or a snapshot that have not yet
	// been acked (default 256). Hellos beyond it get a retry-after hint.
	MaxConcurrentSyncs int
	// SyncTimeout frees a sync slot whose DSN has not acked (default 2×StragglerDeadline).
	SyncTimeout time.Duration
	// RetryAfter is the centre of the jittered retry-after hint (default 1s): hints are
	// uniform in [RetryAfter/2, 3·RetryAfter/2).
	RetryAfter time.Duration
	// SnapshotRefresh is how often stale group snapshots are rewritten (default 1m).
	SnapshotRefresh time.Duration
	// HelloWorkers is the size of the pool that handles Hellos (default 8).
	HelloWorkers int
	// HelloQueue bounds the Hellos waiting for a worker (default 16384); excess ones are
	// answered at once with a retry-after hint.
	HelloQueue int
	// HelloMaxWait is how long a Hello may wait for a worker before it is dropped unanswered
	// (default DefaultHelloMaxWait): its DSN has stopped waiting for that answer and will say
	// Hello again, so answering it would only delay the Hellos behind it.
	HelloMaxWait time.Duration
	// CoalesceWindow: store changes that arrive within this long of the first one waiting are
	// distributed together, as one delta per group, so that a burst of writes costs each DSN
	// one push rather than one per write (default DefaultCoalesceWindow, at most
	// MaxCoalesceWindow; NoCoalescing turns it off).
	CoalesceWindow time.Duration
	// MaxPushRate paces pushes, in messages per second (0: unpaced). While pushes wait, new
	// revisions coalesce into fewer, larger pushes.
	MaxPushRate float64
	// MaxInlineDeltaBytes bounds a delta sent inline in an Admission (default 64 KiB); larger
	// catch-ups go through a snapshot.
	MaxInlineDeltaBytes int
	// HistoryBatches is how many past revision batches are kept to build catch-up deltas
	// (default 4096).
	HistoryBatches int
	// RegistryBucket names the KV bucket of the DSN registry (default DefaultRegistryBucket).
	RegistryBucket string
	// Replicas is the replica count of the buckets the distributor creates (default 1).
	Replicas int

	// Replica names this control-plane replica and turns ownership on: several distributors
	// on one bus and one set of buckets then split the DSNs between them, each serving the
	// partitions it leases (see Ownership). Names must be unique among the replicas: 1-64 of
	// [A-Za-z0-9_-]. Empty (the default) serves every DSN, through the queue group
	// wire.QueueGroup, as a single control plane.
	Replica string
	// Partitions is how many partitions DSNs are split into with ownership on (default
	// DefaultPartitions); every replica must use the same count.
	Partitions int
	// Lease is how long a partition lease lasts unless renewed (default DefaultLease); it is
	// renewed every third of it. A replica that dies loses its partitions within a lease
	// period and a third.
	Lease time.Duration
	// OwnersBucket names the KV bucket of partition leases (default DefaultOwnersBucket).
	OwnersBucket string
	// FleetTimeout bounds how long a fleet-wide read waits for the other replicas' answers
	// (default 2s).
	FleetTimeout time.Duration
}

// Ownership defaults (see Config.Replica).
const (
	DefaultPartitions = 64
	MaxPartitions     = 4096
	DefaultLease      = 6 * time.Second
	// DefaultHelloMaxWait is below the 5 s agents wait for an answer (docs/PROTOCOL.md), so
	// that what is answered still reaches a DSN that waits.
	DefaultHelloMaxWait = 4 * time.Second
	DefaultOwnersBucket = "dsn-owners"
)

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Conn == nil {
		bad("Conn: required")
	}
	if c.JS == nil {
		bad("JS: required")
	}
	if c.Store == nil {
		bad("Store: required")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"HeartbeatInterval", c.HeartbeatInterval}, {"OfflineAfter", c.OfflineAfter},
		{"StragglerDeadline", c.StragglerDeadline}, {"CheckInterval", c.CheckInterval},
		{"SyncTimeout", c.SyncTimeout}, {"RetryAfter", c.RetryAfter},
		{"SnapshotRefresh", c.SnapshotRefresh},
	} {
		if d.v < 0 {
			bad("%s: %v must not be negative", d.name, d.v)
		}
	}
	if c.HelloMaxWait < 0 {
		bad("HelloMaxWait: %v must not be negative", c.HelloMaxWait)
	}
	if c.HeartbeatInterval > 0 && c.HeartbeatInterval < time.Millisecond {
		bad("HeartbeatInterval: %v is below 1ms", c.HeartbeatInterval)
	}
	if c.OfflineAfter > 0 && c.HeartbeatInterval > 0 && c.OfflineAfter <= c.HeartbeatInterval {
		bad("OfflineAfter: %v must exceed HeartbeatInterval %v", c.OfflineAfter, c.HeartbeatInterval)
	}
	for _, n := range []struct {
		name string
		v    int
	}{
		{"MaxConcurrentSyncs", c.MaxConcurrentSyncs}, {"HelloWorkers", c.HelloWorkers},
		{"HelloQueue", c.HelloQueue}, {"MaxInlineDeltaBytes", c.MaxInlineDeltaBytes},
		{"HistoryBatches", c.HistoryBatches}, {"Replicas", c.Replicas},
	} {
		if n.v < 0 {
			bad("%s: %d must not be negative", n.name, n.v)
		}
	}
	if c.Replicas > 5 {
		bad("Replicas: %d, at most 5", c.Replicas)
	}
	if c.CoalesceWindow < 0 && c.CoalesceWindow != NoCoalescing || c.CoalesceWindow > MaxCoalesceWindow {
		bad("CoalesceWindow: %v: want 0 (the default, %v) to %v, or NoCoalescing", c.CoalesceWindow, DefaultCoalesceWindow, MaxCoalesceWindow)
	}
	if c.MaxPushRate < 0 {
		bad("MaxPushRate: %v must not be negative", c.MaxPushRate)
	}
	if c.RegistryBucket != "" && !validBucket(c.RegistryBucket) {
		bad("RegistryBucket: %q is not a valid bucket name ([A-Za-z0-9_-]+)", c.RegistryBucket)
	}
	if c.Replica != "" && (len(c.Replica) > 64 || !validBucket(c.Replica)) {
		bad("Replica: %q is not 1-64 characters of [A-Za-z0-9_-]", c.Replica)
	}
	if c.Partitions < 0 || c.Partitions > MaxPartitions {
		bad("Partitions: %d: want 0 (the default, %d) to %d", c.Partitions, DefaultPartitions, MaxPartitions)
	}
	if c.Lease < 0 || c.Lease > 0 && c.Lease < 30*time.Millisecond {
		bad("Lease: %v: want 0 (the default, %v) or at least 30ms", c.Lease, DefaultLease)
	}
	if c.FleetTimeout < 0 {
		bad("FleetTimeout: %v must not be negative", c.FleetTimeout)
	}
	if c.OwnersBucket != "" && !validBucket(c.OwnersBucket) {
		bad("OwnersBucket: %q is not a valid bucket name ([A-Za-z0-9_-]+)", c.OwnersBucket)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	return nil
}

func validBucket(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return s != ""
}

// withDefaults returns c with zero values replaced by defaults.
func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = SystemClock()
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = 10 * time.Second
	}
	if c.OfflineAfter == 0 {
		c.OfflineAfter = 3 * c.HeartbeatInterval
	}
	if c.StragglerDeadline == 0 {
		c.StragglerDeadline = 30 * time.Second
	}
	if c.CheckInterval == 0 {
		c.CheckInterval = min(c.StragglerDeadline/4, time.Second)
		c.CheckInterval = max(c.CheckInterval, time.Millisecond)
	}
	if c.MaxConcurrentSyncs == 0 {
		c.MaxConcurrentSyncs = 256
	}
	if c.SyncTimeout == 0 {
		c.SyncTimeout = 2 * c.StragglerDeadline
	}
	if c.RetryAfter == 0 {
		c.RetryAfter = time.Second
	}
	if c.SnapshotRefresh == 0 {
		c.SnapshotRefresh = time.Minute
	}
	switch c.CoalesceWindow {
	case 0:
		c.CoalesceWindow = DefaultCoalesceWindow
	case NoCoalescing:
		c.CoalesceWindow = 0
	}
	if c.HelloWorkers == 0 {
		c.HelloWorkers = 8
	}
	if c.HelloMaxWait == 0 {
		c.HelloMaxWait = DefaultHelloMaxWait
	}
	if c.HelloQueue == 0 {
		c.HelloQueue = 16384
	}
	if c.MaxInlineDeltaBytes == 0 {
		c.MaxInlineDeltaBytes = 64 << 10
	}
	if c.HistoryBatches == 0 {
		c.HistoryBatches = 4096
	}
	if c.RegistryBucket == "" {
		c.RegistryBucket = DefaultRegistryBucket
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Partitions == 0 {
		c.Partitions = DefaultPartitions
	}
	if c.Lease == 0 {
		c.Lease = DefaultLease
	}
	if c.OwnersBucket == "" {
		c.OwnersBucket = DefaultOwnersBucket
	}
	if c.FleetTimeout == 0 {
		c.FleetTimeout = 2 * time.Second
	}
	return c
}

// Coalescing bounds (see Config.CoalesceWindow).
const (
	DefaultCoalesceWindow = 20 * time.Millisecond
	MaxCoalesceWindow     = 100 * time.Millisecond
	// NoCoalescing as CoalesceWindow distributes every batch of changes as soon as it is read.
	NoCoalescing = -1
)

// Clock tells the time and makes tickers and timers; tests inject a controllable one.
type Clock interface {
	Now() time.Time
	NewTicker(d time.Duration) Ticker
	// After delivers the time on the channel once d has passed.
	After(d time.Duration) <-chan time.Time
}

// Ticker delivers ticks on C until stopped.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

// SystemClock returns the clock of the operating system.
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) NewTicker(d time.Duration) Ticker { return systemTicker{time.NewTicker(d)} }

func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

type systemTicker struct{ t *time.Ticker }

func (t systemTicker) C() <-chan time.Time { return t.t.C }
func (t systemTicker) Stop()               { t.t.Stop() }
