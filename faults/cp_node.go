package faults

import (
	"context"
	"fmt"
)

// ControlPlaneNodes is implemented by a control plane the harness runs as several replicas: the
// node faults (cp-node-kill, cp-node-stop, cp-node-pause) act on one of them, by index, while the others keep
// serving.
type ControlPlaneNodes interface {
	// Nodes is how many replicas there are.
	Nodes() int
	// KillNode stops replica i abruptly (SIGKILL) and waits for it to be gone.
	KillNode(ctx context.Context, i int) error
	// StopNode stops replica i as an operator does (SIGTERM, so that it drains and hands its
	// work over) and waits for it to be gone.
	StopNode(ctx context.Context, i int) error
	// StartNode starts replica i again on its own data and waits until it serves.
	StartNode(ctx context.Context, i int) error
	// NodeRunning reports whether replica i is running.
	NodeRunning(i int) bool
	// PauseNode freezes replica i (SIGSTOP; it returns once the process has stopped) or thaws
	// it (SIGCONT).
	PauseNode(ctx context.Context, i int, on bool) error
}

// NodeKind is implemented by the kinds that act on one replica of a replicated control plane;
// a scenario must run several for them (controlPlane.replicas).
type NodeKind interface {
	OnNode() bool
}

var paramNode = Param{Name: "node", Type: TypeInt, Default: "0",
	Description: "the replica acted on, by index from 0 (controlPlane.replicas)"}

// nodeOf returns the control plane's replicas and the index spec names, or why a node fault of
// kind cannot act on env's control plane.
func nodeOf(kind string, spec Spec, env Env) (ControlPlaneNodes, int, error) {
	i, err := ParamValues{Decl: []Param{paramNode}, Got: spec.Params}.Int("node")
	if err != nil {
		return nil, 0, err
	}
	cp, ok := env.ControlPlane.(ControlPlaneNodes)
	if !ok || cp.Nodes() < 2 {
		return nil, 0, fmt.Errorf("%w: %s needs a control plane of several replicas (controlPlane.replicas 3, mode process)", ErrUnsupported, kind)
	}
	if i >= cp.Nodes() {
		return nil, 0, &SpecError{Field: "params.node", Err: fmt.Errorf("replica %d does not exist: the control plane has %d (0 to %d)", i, cp.Nodes(), cp.Nodes()-1)}
	}
	return cp, i, nil
}
