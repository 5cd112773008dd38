// Package agent is a minimal reference DSN agent: it speaks the southbound protocol of
// docs/PROTOCOL.md using only package wire and a NATS connection. It keeps its applied config
// in memory, serves from it whatever the control plane does, and follows the protocol's rules
// for admission, back-off, snapshots, pushes, acks and heartbeats.
//
// Many agents can share a few connections (see Pool), which is how benchmarks run thousands
// of DSN sessions in one process.
package agent

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	mrand "math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/pki"
	"github.com/dsnscale/dsnscale/controlplane/wire"
)

// Sentinel errors.
var (
	// ErrConfig marks an invalid Config.
	ErrConfig = errors.New("agent: invalid config")
	// ErrRejected is returned by Run when the control plane rejects the agent's Hello.
	ErrRejected = errors.New("agent: rejected by the control plane")
)

// Config configures an Agent. It is pure data: New fills in defaults for zero values.
type Config struct {
	// ID names the DSN: 1-128 characters of [A-Za-z0-9_-].
	ID string
	// Labels are the DSN's labels; they choose its config.
	Labels map[string]string
	// Conn is the NATS connection (required); it may be shared with other agents.
	Conn *nats.Conn
	// Identity, if set, is the DSN's identity on a control plane with security on: Run keeps
	// its certificate renewed over Conn for as long as it runs, so that the next connection
	// (or reconnection) presents one that has not expired. It must be a DSN identity named
	// ID. Nil means no renewal, as on a control plane without security.
	Identity *Identity
	// JS is a JetStream context on Conn for snapshot fetches; nil makes one.
	JS jetstream.JetStream
	// SoftwareVersion is reported in Hello.
	SoftwareVersion string
	// InitialRevision and InitialObjects are the config a DSN loads from its local cache when
	// it starts, and serves until the control plane says otherwise.
	InitialRevision uint64
	InitialObjects  []model.Object
	// Logger; nil discards logs.
	Logger *slog.Logger
	// OnApply, if set, is called (on the agent's goroutine) each time the applied revision
	// advances, with the revision and the time it was applied.
	OnApply func(rev uint64, at time.Time)
	// OnAck, if set, is called (on the agent's goroutine) each time the agent has sent an ack,
	// with the revision acked and the time it was sent.
	OnAck func(rev uint64, at time.Time)
	// HelloTimeout bounds the wait for an Admission (default 5s).
	HelloTimeout time.Duration
	// MinBackoff and MaxBackoff bound the jittered exponential back-off after failed Hellos
	// (defaults 250ms and 30s).
	MinBackoff, MaxBackoff time.Duration
	// QuarantineHold is how long a quarantined agent waits before it says Hello again
	// (default 30s, jittered by ±20%).
	QuarantineHold time.Duration
	// PushBuffer is how many pushes may wait for the agent (default 256); more are dropped by
	// the client library, which the protocol detects as a gap.
	PushBuffer int
	// DropPush, if set, makes the agent ignore pushes for which it returns true: fault
	// injection for tests and drills.
	DropPush func(*wire.Push) bool
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if !wire.ValidID(c.ID) {
		errs = append(errs, fmt.Errorf("ID: %q is not 1-128 characters of [A-Za-z0-9_-]", c.ID))
	}
	if c.Conn == nil {
		errs = append(errs, errors.New("Conn: required"))
	}
	if id := c.Identity; id != nil {
		// Only DSN identities are renewed over the bus, and the control plane renews only the
		// identity of the DSN that asks.
		if id.Role() != pki.RoleDSN {
			errs = append(errs, fmt.Errorf("Identity: a %q identity is not renewed over the bus; want %q", id.Role(), pki.RoleDSN))
		}
		if id.Name() != c.ID {
			errs = append(errs, fmt.Errorf("Identity: names %q, not the agent's ID %q", id.Name(), c.ID))
		}
	}
	h := wire.Hello{Protocol: wire.Version, DSN: "x", Labels: c.Labels, SoftwareVersion: c.SoftwareVersion}
	if err := h.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("Labels/SoftwareVersion: %w", err))
	}
	for i := range c.InitialObjects {
		if o := &c.InitialObjects[i]; o.Kind == "" || o.Metadata.Name == "" {
			errs = append(errs, fmt.Errorf("InitialObjects[%d]: kind and metadata.name are required", i))
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"HelloTimeout", c.HelloTimeout}, {"MinBackoff", c.MinBackoff}, {"MaxBackoff", c.MaxBackoff}, {"QuarantineHold", c.QuarantineHold}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s: %v must not be negative", d.name, d.v))
		}
	}
	if c.MinBackoff > 0 && c.MaxBackoff > 0 && c.MinBackoff > c.MaxBackoff {
		errs = append(errs, fmt.Errorf("MinBackoff: %v exceeds MaxBackoff %v", c.MinBackoff, c.MaxBackoff))
	}
	if c.PushBuffer < 0 {
		errs = append(errs, fmt.Errorf("PushBuffer: %d must not be negative", c.PushBuffer))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.HelloTimeout == 0 {
		c.HelloTimeout = 5 * time.Second
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = 250 * time.Millisecond
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = max(30*time.Second, c.MinBackoff)
	}
	if c.QuarantineHold == 0 {
		c.QuarantineHold = 30 * time.Second
	}
	if c.PushBuffer == 0 {
		c.PushBuffer = 256
	}
	return c
}

// Stats counts what an agent went through.
type Stats struct {
	Hellos, Retries, Failures   int64 // Hellos sent; retry answers; Hellos without an answer
	Admissions                  int64
	UpToDate, Deltas, Snapshots int64 // how admissions brought the agent up to date
	Pushes, Applied             int64 // pushes received; pushes that advanced the config
	Duplicates, Gaps            int64
	Resyncs, Quarantines        int64
	Rehellos                    int64 // re-Hellos asked by the control plane or after a reconnect
	Acks, Heartbeats            int64
}

type counters struct {
	hellos, retries, failures, admissions, upToDate, deltas, snapshots atomic.Int64
	pushes, applied, duplicates, gaps, resyncs, quarantines, rehellos  atomic.Int64
	acks, heartbeats                                                   atomic.Int64
}

// held is an object of the applied config and its revision.
type held struct {
	obj *model.Object
	rev uint64
}

// Agent is one DSN session.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	bootID string
	kick   chan struct{}
	stores *storeCache
	c      counters

	mu      sync.Mutex // guards objects, for readers outside the agent's goroutine
	objects map[model.Key]held
	applied atomic.Uint64
	state   atomic.Value // string

	// Owned by the Run goroutine.
	session  string
	admitRev uint64
	interval time.Duration
}

// New returns an agent for cfg. It does no I/O: Run does.
func New(cfg Config) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	cfg.Labels = maps.Clone(cfg.Labels)
	var b [8]byte
	_, _ = rand.Read(b[:])
	a := &Agent{
		cfg:     cfg,
		log:     cfg.Logger.With("dsn", cfg.ID),
		bootID:  hex.EncodeToString(b[:]),
		kick:    make(chan struct{}, 1),
		stores:  &storeCache{js: cfg.JS, nc: cfg.Conn},
		objects: make(map[model.Key]held, len(cfg.InitialObjects)),
	}
	for i := range cfg.InitialObjects {
		o := cfg.InitialObjects[i]
		a.objects[o.Key()] = held{obj: &o, rev: revisionOf(&o, cfg.InitialRevision)}
	}
	a.applied.Store(cfg.InitialRevision)
	a.state.Store("starting")
	return a, nil
}

// ID is the DSN's id.
func (a *Agent) ID() string { return a.cfg.ID }

// Applied is the revision of the config in force.
func (a *Agent) Applied() uint64 { return a.applied.Load() }

// State is what the agent is doing: starting, hello, syncing, serving or quarantined.
func (a *Agent) State() string { return a.state.Load().(string) }

// Config returns the applied revision and a copy of the config in force, in key order.
func (a *Agent) Config() (uint64, []model.Object) {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]model.Object, 0, len(a.objects))
	for _, h := range a.objects {
		out = append(out, *h.obj)
	}
	slices.SortFunc(out, func(x, y model.Object) int { return compareKeys(x.Key(), y.Key()) })
	return a.applied.Load(), out
}

// Stats returns the agent's counters.
func (a *Agent) Stats() Stats {
	c := &a.c
	return Stats{
		Hellos: c.hellos.Load(), Retries: c.retries.Load(), Failures: c.failures.Load(),
		Admissions: c.admissions.Load(), UpToDate: c.upToDate.Load(), Deltas: c.deltas.Load(),
		Snapshots: c.snapshots.Load(), Pushes: c.pushes.Load(), Applied: c.applied.Load(),
		Duplicates: c.duplicates.Load(), Gaps: c.gaps.Load(), Resyncs: c.resyncs.Load(),
		Quarantines: c.quarantines.Load(), Rehellos: c.rehellos.Load(), Acks: c.acks.Load(),
		Heartbeats: c.heartbeats.Load(),
	}
}

// Reconnected tells the agent its connection was re-established: it says Hello again. The
// agent also notices reconnects by itself at its next heartbeat; Pool calls this at once.
func (a *Agent) Reconnected() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

func compareKeys(a, b model.Key) int {
	rank := func(k model.Kind) int {
		if i := slices.Index(model.Kinds, k); i >= 0 {
			return i
		}
		return len(model.Kinds)
	}
	if c := cmp.Compare(rank(a.Kind), rank(b.Kind)); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Tenant, b.Tenant); c != 0 {
		return c
	}
	return cmp.Compare(a.Name, b.Name)
}

// jitter returns d scaled by a random factor in [1-f, 1+f).
func jitter(d time.Duration, f float64) time.Duration {
	return time.Duration(float64(d) * (1 - f + 2*f*mrand.Float64()))
}

// sleep waits d or until ctx ends; it reports whether ctx is still alive.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
