package runner

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// The library's cp-rolling-restart scenario at a small size: each of three replicas is stopped
// (SIGTERM) and started again in turn under API load, with no API error and no DSN losing its
// config.
func TestLibraryCPRollingRestart(t *testing.T) {
	run := runReplicatedLibrary(t, "cp-rolling-restart.yaml", map[string]string{"dsns": "30", "hold": "20s", "down": "4s"})
	assert.Equal(t, 3, faultsOf(t, run, "cp-node-stop"), "each replica was stopped once")
}
