package scenarios

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// withNodeFault is the valid scenario with a control plane cp and, in its storm step, fault
// in place of the DSN restart.
func withNodeFault(cp, fault string) string {
	s := withCP(cp)
	return strings.Replace(s, "      - kind: dsn-restart\n        delay: 5s\n        target: {fraction: 50%}\n        params: {window: 2s}\n", fault, 1)
}

func TestReplicas(t *testing.T) {
	three := "controlPlane:\n  mode: process\n  replicas: 3\n"
	kill := "      - kind: cp-node-kill\n        delay: 5s\n        params: {node: \"2\"}\n"
	s, err := Parse("test.yaml", []byte(withNodeFault(three, kill)), nil, "")
	require.NoError(t, err)
	assert.Equal(t, 3, s.ControlPlane.Replicas)
	assert.Contains(t, describeCP(s.ControlPlane), "3 replicas")

	for _, c := range []struct{ name, cp, fault, want string }{
		{"even", "controlPlane:\n  mode: process\n  replicas: 2\n", kill, "test.yaml:15: controlPlane.replicas: must be 1 or an odd number from 3 to 9 (a majority must survive a loss), got 2"},
		{"four", "controlPlane:\n  mode: process\n  replicas: 4\n", kill, "controlPlane.replicas: must be 1 or an odd number"},
		{"negative", "controlPlane:\n  mode: process\n  replicas: -1\n", kill, "controlPlane.replicas: must be 1 or an odd number"},
		{"in process", "controlPlane:\n  mode: inprocess\n  replicas: 3\n", kill, "controlPlane.replicas: 3 replicas need controlPlane.mode process (the harness runs each as a process), not inprocess"},
		{"external", "controlPlane:\n  mode: external\n  url: https://cp:1\n  natsURL: tls://cp:2\n  replicas: 3\n", kill, "controlPlane.replicas: 3 replicas need controlPlane.mode process"},
		{"node fault on one replica", "controlPlane:\n  mode: process\n", kill, "steps[1].faults[0].kind: cp-node-kill acts on one replica of a replicated control plane: set controlPlane.replicas"},
		{"no such node", three, "      - kind: cp-node-pause\n        params: {node: \"3\"}\n", "steps[1].faults[0].params.node: replica 3 does not exist: the control plane has 3 (0 to 2)"},
		{"fleet links", three, "      - kind: net-partition\n        delay: 5s\n", "steps[1].faults[0].params.path: the fleet's links to a control plane of 3 replicas are not proxied"},
		{"bad node", three, "      - kind: cp-node-kill\n        params: {node: first}\n", "test.yaml:28: steps[1].faults[0].params.node: \"first\" is not a non-negative integer"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("test.yaml", []byte(withNodeFault(c.cp, c.fault)), nil, "")
			require.ErrorIs(t, err, ErrInvalid)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}
