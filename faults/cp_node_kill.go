package faults

import (
	"context"
	"sync"
)

func init() {
	MustRegister(cpNodeKill{})
	MustRegister(cpNodeKill{graceful: true})
}

// cpNodeKill takes one replica of a replicated control plane down, abruptly (cp-node-kill:
// SIGKILL, as a crash or a lost machine does) or as an operator stops it for an upgrade
// (cp-node-stop: SIGTERM, after which it drains its API and hands its leaderships over); the
// others go on serving. It stays down until the fault is recovered, when it starts again on its
// own data and rejoins.
type cpNodeKill struct{ graceful bool }

func (k cpNodeKill) Name() string {
	if k.graceful {
		return "cp-node-stop"
	}
	return "cp-node-kill"
}

func (k cpNodeKill) Description() string {
	if k.graceful {
		return "stop one replica of a replicated control plane as an operator does (SIGTERM: it drains its API and hands its JetStream leaderships over); it stays down until the fault is recovered, then starts on its own data and rejoins"
	}
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
	return &cpNodeKillFault{env: env, cp: cp, node: i, graceful: k.graceful}, nil
}

type cpNodeKillFault struct {
	env      Env
	cp       ControlPlaneNodes
	node     int
	graceful bool

	mu     sync.Mutex
	killed bool
}

func (f *cpNodeKillFault) Inject(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	down, how := f.cp.KillNode, "killed"
	if f.graceful {
		down, how = f.cp.StopNode, "stopped"
	}
	if err := down(ctx, f.node); err != nil {
		return err
	}
	f.killed = true
	f.env.logger().Info("control plane replica "+how, "node", f.node)
	return nil
}

// Recover starts the replica again if the fault left it down.
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
