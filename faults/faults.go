// Package faults holds the fault kinds a scenario can inject (the nemesis), one file per kind, and
// a registry that scenario validation checks names and parameters against.
//
// A fault acts on what it is given in an Env: the simulated fleet (restart, crash or hang DSNs) or
// the control plane (kill it, restart it). Faults do not decide when they fire; the scenario engine
// does, and it calls Recover on every fault it injected when a step ends or the run is aborted, so
// Recover must be safe to call at any time, more than once, and after a failed or interrupted
// Inject.
package faults

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Sentinel errors; callers test them with errors.Is.
var (
	// ErrUnknownKind is returned for a spec whose kind is not registered.
	ErrUnknownKind = errors.New("unknown fault kind")
	// ErrDuplicate is returned when a kind is registered twice.
	ErrDuplicate = errors.New("duplicate fault kind")
	// ErrInvalidSpec matches every *SpecError.
	ErrInvalidSpec = errors.New("invalid fault spec")
	// ErrUnsupported is returned when the environment cannot carry out a kind (a control-plane
	// fault against an external control plane, a DSN fault without a fleet).
	ErrUnsupported = errors.New("fault not supported here")
	// ErrNoTargets is returned when a selection matches no DSN.
	ErrNoTargets = errors.New("selection matches no DSN")
)

// Fault is one configured fault, ready to be injected.
type Fault interface {
	// Inject puts the fault in place and returns once it is (a storm spread over a window returns
	// after its last restart). It stops early, returning ctx.Err(), when ctx ends.
	Inject(ctx context.Context) error
	// Recover undoes what is still in effect. It is idempotent and may follow a failed or
	// interrupted Inject.
	Recover(ctx context.Context) error
}

// Targeted is implemented by faults that act on DSNs: Affected lists the DSNs the fault acted on
// so far, which measurements such as storm recovery follow.
type Targeted interface {
	Affected() []string
}

// Scope says what a kind acts on.
type Scope string

// Scopes.
const (
	ScopeDSNs         Scope = "dsns"
	ScopeControlPlane Scope = "control-plane"
	// ScopeNetwork kinds impair the links the harness proxies: a fleet unit's link to the bus
	// or the load generator's link to the API.
	ScopeNetwork Scope = "network"
)

// SpecChecker is implemented by kinds that check a spec beyond its parameters' types (a
// bandwidth above 0, a target that suits the kind).
type SpecChecker interface {
	CheckSpec(spec Spec) error
}

// Kind is a registered type of fault.
type Kind interface {
	// Name is the kind's name in scenario files ("dsn-restart").
	Name() string
	// Description is one line for listings and plans.
	Description() string
	// Scope says whether the kind needs a fleet or a control plane it controls.
	Scope() Scope
	// Params declares the parameters the kind accepts; others are rejected.
	Params() []Param
	// New builds a fault from a spec that Validate accepted.
	New(spec Spec, env Env) (Fault, error)
}

// Spec is a fault as a scenario states it.
type Spec struct {
	Kind   string
	Target Target
	// Params are the kind's parameters as text; each kind types them on use (a duration
	// parameter takes "30s").
	Params map[string]string
}

// DSN is one member of the fleet as faults see it.
type DSN struct {
	ID     string
	Labels map[string]string
}

// Fleet is the part of a fleet that DSN faults drive.
type Fleet interface {
	// DSNs lists the fleet's members.
	DSNs() []DSN
	// Restart stops a DSN and starts it again; it keeps its local config cache, as a rebooted
	// device keeps its disk.
	Restart(ctx context.Context, id string) error
	// Crash stops a DSN abruptly; it stays down until Start.
	Crash(ctx context.Context, id string) error
	// Start starts a crashed DSN again (from its local cache).
	Start(ctx context.Context, id string) error
	// Hang freezes a DSN: alive but silent (no heartbeats, acks or applies) until Resume.
	Hang(ctx context.Context, id string) error
	// Resume undoes Hang.
	Resume(ctx context.Context, id string) error
}

// Batcher is implemented by fleets that act on many DSNs in one call, so that a storm of
// 10,000 restarts is one command rather than 10,000. Batch acts on every DSN in ids, each at a
// point of window (0: all at once), and returns once the actions are scheduled; undo ends what
// is still in effect (it starts crashed DSNs, resumes hung ones).
type Batcher interface {
	Batch(ctx context.Context, verb string, ids []string, window time.Duration) (undo func(context.Context) error, err error)
}

// Verbs a Batcher is asked for.
const (
	VerbRestart = "restart"
	VerbCrash   = "crash"
	VerbHang    = "hang"
)

// ControlPlane is the part of a control plane that control-plane faults drive.
type ControlPlane interface {
	// Kill stops the control plane abruptly (SIGKILL for a process).
	Kill(ctx context.Context) error
	// Start starts it again on the same data.
	Start(ctx context.Context) error
	// Running reports whether it is running.
	Running() bool
}

// Env is what faults act on.
type Env struct {
	Fleet        Fleet        // nil when the run has no fleet the harness controls
	ControlPlane ControlPlane // nil when the control plane is external
	Network      Network      // nil when the harness proxies no link
	Backends     Backends     // nil when the harness runs no backend process
	Clock        Clock        // nil means the system clock
	// Seed makes selections by fraction or count reproducible.
	Seed   int64
	Logger *slog.Logger // nil means slog.Default()
}

func (e Env) clock() Clock {
	if e.Clock == nil {
		return SystemClock{}
	}
	return e.Clock
}

func (e Env) logger() *slog.Logger {
	if e.Logger == nil {
		return slog.Default()
	}
	return e.Logger
}

// Clock is the time source faults pace themselves with.
type Clock interface {
	Now() time.Time
	// After is time.After on this clock.
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// After returns time.After(d).
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// sleep waits d on c, or until ctx ends.
func sleep(ctx context.Context, c Clock, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-c.After(d):
		return nil
	}
}
