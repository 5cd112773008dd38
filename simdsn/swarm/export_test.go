package swarm

import (
	"context"
	"testing"
)

// CheckManager exposes checkManager to the tests.
var CheckManager = checkManager

// EnsureSwarm runs the test on a swarm: the engine's own, or a one-node swarm it creates and
// leaves when the test ends.
func EnsureSwarm(t *testing.T) {
	t.Helper()
	leave, err := LocalSwarm(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := leave(context.Background()); err != nil {
			t.Error(err)
		}
	})
}
