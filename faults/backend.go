package faults

import (
	"context"
	"fmt"
	"sync"
)

// ScopeBackend kinds act on a backend of the control plane that the harness runs as a process
// of its own.
const ScopeBackend Scope = "backend"

// BackendProcess is a backend the harness started as a process.
type BackendProcess interface {
	// Kill stops it abruptly (SIGKILL).
	Kill(ctx context.Context) error
	// Start starts it again on the same data.
	Start(ctx context.Context) error
	// Pause freezes it (SIGSTOP) or thaws it (SIGCONT).
	Pause(ctx context.Context, on bool) error
}

// Backends are the backends the harness runs as processes, by name (tsdb, search, inventory).
type Backends interface {
	Backend(name string) (BackendProcess, bool)
}

// backendKind kills or freezes a backend process until recovered.
type backendKind struct {
	name, desc string
	pause      bool
}

func init() {
	MustRegister(&backendKind{name: "backend-kill", desc: "kill a backend process the harness started (SIGKILL); it starts again on its data when recovered"})
	MustRegister(&backendKind{name: "backend-pause", pause: true, desc: "freeze a backend process the harness started (SIGSTOP) until recovered (SIGCONT)"})
}

func (k *backendKind) Name() string        { return k.name }
func (k *backendKind) Description() string { return k.desc }
func (k *backendKind) Scope() Scope        { return ScopeBackend }
func (k *backendKind) Params() []Param     { return []Param{paramBackend} }

// CheckSpec checks the backend's name.
func (k *backendKind) CheckSpec(spec Spec) error {
	b, _ := ParamValues{Decl: k.Params(), Got: spec.Params}.String("backend")
	if !IsBackendPath(b) {
		return specErr("params.backend", "%q, want tsdb, search or inventory", b)
	}
	return nil
}

func (k *backendKind) New(spec Spec, env Env) (Fault, error) {
	name, _ := ParamValues{Decl: k.Params(), Got: spec.Params}.String("backend")
	p, ok := env.Backends.Backend(name)
	if !ok {
		return nil, fmt.Errorf("%w: the harness runs no %s process (controlPlane.backendProcesses)", ErrUnsupported, name)
	}
	return &backendFault{kind: k, env: env, name: name, p: p}, nil
}

type backendFault struct {
	kind *backendKind
	env  Env
	name string
	p    BackendProcess

	mu     sync.Mutex
	acted  bool
	undone bool
}

func (f *backendFault) Inject(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var err error
	if f.kind.pause {
		err = f.p.Pause(ctx, true)
	} else {
		err = f.p.Kill(ctx)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", f.kind.name, f.name, err)
	}
	f.acted = true
	f.env.logger().Info("backend fault injected", "kind", f.kind.name, "backend", f.name)
	return nil
}

// Recover thaws or restarts the backend, once; it runs even when ctx has ended.
func (f *backendFault) Recover(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.acted || f.undone {
		return nil
	}
	f.undone = true
	ctx = context.WithoutCancel(ctx)
	if f.kind.pause {
		return f.p.Pause(ctx, false)
	}
	return f.p.Start(ctx)
}
