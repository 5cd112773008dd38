package faults

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// replicas records what node faults ask of a replicated control plane.
type replicas struct {
	n       int
	running []bool
	calls   []string
}

func newReplicas(n int) *replicas {
	r := &replicas{n: n, running: make([]bool, n)}
	for i := range r.running {
		r.running[i] = true
	}
	return r
}

func (r *replicas) Kill(context.Context) error  { return nil }
func (r *replicas) Start(context.Context) error { return nil }
func (r *replicas) Running() bool               { return true }
func (r *replicas) Nodes() int                  { return r.n }
func (r *replicas) NodeRunning(i int) bool      { return r.running[i] }

func (r *replicas) KillNode(_ context.Context, i int) error {
	r.calls = append(r.calls, fmt.Sprintf("kill %d", i))
	r.running[i] = false
	return nil
}

func (r *replicas) StopNode(_ context.Context, i int) error {
	r.calls = append(r.calls, fmt.Sprintf("stop %d", i))
	r.running[i] = false
	return nil
}

func (r *replicas) StartNode(_ context.Context, i int) error {
	r.calls = append(r.calls, fmt.Sprintf("start %d", i))
	r.running[i] = true
	return nil
}

func (r *replicas) PauseNode(_ context.Context, i int, on bool) error {
	r.calls = append(r.calls, fmt.Sprintf("pause %d %v", i, on))
	return nil
}

func TestNodeFaults(t *testing.T) {
	ctx := context.Background()
	cp := newReplicas(3)
	env := Env{ControlPlane: cp}

	kill, err := Default.New(Spec{Kind: "cp-node-kill", Params: map[string]string{"node": "2"}}, env)
	require.NoError(t, err)
	require.NoError(t, kill.Inject(ctx))
	require.NoError(t, kill.Recover(ctx))
	require.NoError(t, kill.Recover(ctx), "a second recovery starts nothing")

	stop, err := Default.New(Spec{Kind: "cp-node-stop", Params: map[string]string{"node": "1"}}, env)
	require.NoError(t, err)
	require.NoError(t, stop.Inject(ctx))
	require.NoError(t, stop.Recover(ctx))

	pause, err := Default.New(Spec{Kind: "cp-node-pause"}, env)
	require.NoError(t, err)
	require.NoError(t, pause.Recover(ctx), "nothing to thaw before an injection")
	require.NoError(t, pause.Inject(ctx))
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	require.NoError(t, pause.Recover(cctx), "a frozen replica is thawed even when the step's context ended")
	assert.Equal(t, []string{"kill 2", "start 2", "stop 1", "start 1", "pause 0 true", "pause 0 false"}, cp.calls)

	_, err = Default.New(Spec{Kind: "cp-node-kill", Params: map[string]string{"node": "3"}}, env)
	require.ErrorIs(t, err, ErrInvalidSpec)
	assert.ErrorContains(t, err, "params.node: replica 3 does not exist: the control plane has 3 (0 to 2)")

	_, err = Default.New(Spec{Kind: "cp-node-pause"}, Env{ControlPlane: newReplicas(1)})
	require.ErrorIs(t, err, ErrUnsupported)
	_, err = Default.New(Spec{Kind: "cp-node-kill"}, Env{ControlPlane: &recCP{}})
	require.ErrorIs(t, err, ErrUnsupported, "a control plane of one process has no replicas")

	var b bytes.Buffer
	require.NoError(t, Default.WriteKinds(&b))
	assert.Contains(t, b.String(), "cp-node-kill\n")
	assert.Contains(t, b.String(), "  needs: controlPlane.replicas 3 or more\n  node             int, default 0:")
}
