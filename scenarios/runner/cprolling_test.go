package runner

import (
	"fmt"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/internal/testbin"
	"github.com/dsnscale/dsnscale/reports"
)

// The library's cp-rolling-restart scenario at a small size: each of three replicas is stopped
// (SIGTERM) and started again in turn under API load, with no API error and no DSN losing its
// config.
func TestLibraryCPRollingRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds dsnscale and runs three control-plane replicas under a small fleet")
	}
	src, err := os.ReadFile("../library/cp-rolling-restart.yaml")
	require.NoError(t, err)
	bin, err := testbin.Build()
	require.NoError(t, err)
	run := runScenario(t, "cp-rolling-restart.yaml", string(src), map[string]string{"dsns": "30", "hold": "20s", "down": "4s"}, Options{Binary: bin})
	for _, v := range run.SLOs {
		obs := "missing"
		if v.Observed != nil {
			obs = fmt.Sprint(*v.Observed)
		}
		t.Logf("SLO %s: observed %s pass %v", v.Name, obs, v.Pass)
	}
	assert.Equal(t, reports.ResultPass, run.Result, "%s %v", run.Error, run.Steps)
	var stops int
	for _, f := range run.Faults {
		if f.Kind == "cp-node-stop" {
			stops++
			assert.Empty(t, f.Error)
		}
	}
	assert.Equal(t, 3, stops, "each replica was stopped once")
}
