package faults

import (
	"context"
	"sync"
)

func init() { MustRegister(cpNodeKill{}) }

// cpNodeKill kills one replica of a replicated control plane; the others go on serving. It
// stays down until the fault is recovered, when it starts again on its own data and rejoins.
type cpNodeKill struct{}

func (cpNodeKill) Name() string { return "cp-node-kill" }

func (cpNodeKill) Description() string {
	return "kill one replica of a replicated control plane (SIGKILL); it stays down until the fault is recovered, then starts on its own data and rejoins"
}

func (cpNodeKill) Scope() Scope       { return ScopeControlPlane }
func (cpNodeKill) Params() []Param    { return []Param{paramNode} }
func (cpNodeKill) NeedsProcess() bool { return true }
func (cpNodeKill) OnNode() bool       { return true }

func (k cpNodeKill) New(spec Spec, env Env) (Fault, error) {
	cp, i, err := nodeOf(k.Name(), spec, env)
	if err != nil {
		return nil, err
	}
	return &cpNodeKillFault{env: env, cp: cp, node: i}, nil
}

type cpNodeKillFault struct {
	env  Env
	cp   ControlPlaneNodes
	node int

	mu     sync.Mutex
	killed bool
}

func (f *cpNodeKillFault) Inject(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.cp.KillNode(ctx, f.node); err != nil {
		return err
	}
	f.killed = true
	f.env.logger().Info("control plane replica killed", "node", f.node)
	return nil
}

// Recover starts the replica again if the kill left it down.
func (f *cpNodeKillFault) Recover(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.killed || f.cp.NodeRunning(f.node) {
		return nil
	}
	if err := f.cp.StartNode(context.WithoutCancel(ctx), f.node); err != nil {
		return err
	}
	f.killed = false
	f.env.logger().Info("control plane replica started again", "node", f.node)
	return nil
}
