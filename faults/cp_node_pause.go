package faults

import (
	"context"
	"sync"
)

func init() { MustRegister(cpNodePause{}) }

// cpNodePause freezes one replica of a replicated control plane: alive, connected and silent,
// the hardest failure for the others to tell from a slow peer.
type cpNodePause struct{}

func (cpNodePause) Name() string { return "cp-node-pause" }

func (cpNodePause) Description() string {
	return "freeze one replica of a replicated control plane (SIGSTOP) until recovered (SIGCONT); the others go on serving"
}

func (cpNodePause) Scope() Scope       { return ScopeControlPlane }
func (cpNodePause) Params() []Param    { return []Param{paramNode} }
func (cpNodePause) NeedsProcess() bool { return true }
func (cpNodePause) OnNode() bool       { return true }

func (k cpNodePause) New(spec Spec, env Env) (Fault, error) {
	cp, i, err := nodeOf(k.Name(), spec, env)
	if err != nil {
		return nil, err
	}
	return &cpNodePauseFault{env: env, cp: cp, node: i}, nil
}

type cpNodePauseFault struct {
	env  Env
	cp   ControlPlaneNodes
	node int

	mu     sync.Mutex
	paused bool
}

func (f *cpNodePauseFault) Inject(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.cp.PauseNode(ctx, f.node, true); err != nil {
		return err
	}
	f.paused = true
	f.env.logger().Info("control plane replica paused", "node", f.node)
	return nil
}

// Recover thaws the replica if it is frozen, even when ctx has ended: a frozen replica must
// never be left behind.
func (f *cpNodePauseFault) Recover(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.paused {
		return nil
	}
	if err := f.cp.PauseNode(context.WithoutCancel(ctx), f.node, false); err != nil {
		return err
	}
	f.paused = false
	f.env.logger().Info("control plane replica resumed", "node", f.node)
	return nil
}
