package faults

import (
	"context"
	"fmt"
	"sync"
)

func init() { MustRegister(cpPause{}) }

// Pauser is implemented by control planes the harness can freeze: a process it started
// (SIGSTOP, SIGCONT).
type Pauser interface {
	// Pause freezes the control plane (on) or thaws it.
	Pause(ctx context.Context, on bool) error
}

// ProcessOnly is implemented by kinds that need the control plane to run as a process of its
// own (controlPlane.mode process): one in the harness's process cannot be frozen alone.
type ProcessOnly interface {
	NeedsProcess() bool
}

// cpPause freezes the control plane: a slow control plane rather than a dead one. Its
// connections stay open, nothing is answered, and everything queued is handled when it thaws.
type cpPause struct{}

func (cpPause) Name() string { return "cp-pause" }

func (cpPause) Description() string {
	return "freeze the control plane's process (SIGSTOP) until recovered (SIGCONT): alive, connected and silent"
}

func (cpPause) Scope() Scope       { return ScopeControlPlane }
func (cpPause) Params() []Param    { return nil }
func (cpPause) NeedsProcess() bool { return true }

func (cpPause) New(_ Spec, env Env) (Fault, error) {
	p, ok := env.ControlPlane.(Pauser)
	if !ok {
		return nil, fmt.Errorf("%w: cp-pause needs a control plane in a process of its own (controlPlane.mode process)", ErrUnsupported)
	}
	return &cpPauseFault{env: env, p: p}, nil
}

type cpPauseFault struct {
	env Env
	p   Pauser

	mu     sync.Mutex
	paused bool
}

func (f *cpPauseFault) Inject(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.p.Pause(ctx, true); err != nil {
		return err
	}
	f.paused = true
	f.env.logger().Info("control plane paused")
	return nil
}

// Recover thaws the control plane if it is frozen. It runs even when ctx has ended: a frozen
// control plane must never be left behind.
func (f *cpPauseFault) Recover(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.paused {
		return nil
	}
	if err := f.p.Pause(context.WithoutCancel(ctx), false); err != nil {
		return err
	}
	f.paused = false
	f.env.logger().Info("control plane resumed")
	return nil
}
