package faults

import (
	"context"
	"sync"
	"time"
)

func init() { MustRegister(cpKill{}) }

// cpKill kills the control plane (SIGKILL for a process, an abrupt stop in process); it stays
// down until the fault is recovered, when it starts again on the same data.
type cpKill struct{}

func (cpKill) Name() string { return "cp-kill" }

func (cpKill) Description() string {
	return "kill the control plane; it stays down until the fault is recovered, then starts on the same data"
}

func (cpKill) Scope() Scope { return ScopeControlPlane }

func (cpKill) Params() []Param { return nil }

func (cpKill) New(_ Spec, env Env) (Fault, error) { return &cpFault{env: env}, nil }

// cpFault kills the control plane and, after down (or on Recover when restart is false), starts
// it again.
type cpFault struct {
	env     Env
	restart bool
	down    time.Duration

	mu     sync.Mutex
	killed bool
}

// Momentary reports whether the control plane is started again by Inject itself.
func (f *cpFault) Momentary() bool { return f.restart }

// Inject kills the control plane; for a restart it waits out the downtime and starts it again.
func (f *cpFault) Inject(ctx context.Context) error {
	f.mu.Lock()
	if err := f.env.ControlPlane.Kill(ctx); err != nil {
		f.mu.Unlock()
		return err
	}
	f.killed = true
	f.mu.Unlock()
	f.env.logger().Info("control plane killed", "restart", f.restart)
	if !f.restart {
		return nil
	}
	if err := sleep(ctx, f.env.clock(), f.down); err != nil {
		return err
	}
	return f.start(ctx)
}

// Recover starts the control plane if a kill left it down.
func (f *cpFault) Recover(ctx context.Context) error { return f.start(ctx) }

func (f *cpFault) start(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.killed || f.env.ControlPlane.Running() {
		return nil
	}
	if err := f.env.ControlPlane.Start(ctx); err != nil {
		return err
	}
	f.env.logger().Info("control plane started again")
	return nil
}
