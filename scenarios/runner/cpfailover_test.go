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

// The library's cp-failover scenario at a small size: three replicas, one killed while writes
// are under way; no acknowledged write is lost and every SLO holds.
func TestLibraryCPFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("builds dsnscale and runs three control-plane replicas under a small fleet")
	}
	src, err := os.ReadFile("../library/cp-failover.yaml")
	require.NoError(t, err)
	bin, err := testbin.Build()
	require.NoError(t, err)
	run := runScenario(t, "cp-failover.yaml", string(src), map[string]string{"dsns": "30", "writes": "40", "node": "1"}, Options{Binary: bin})
	for _, v := range run.SLOs {
		obs := "missing"
		if v.Observed != nil {
			obs = fmt.Sprint(*v.Observed)
		}
		t.Logf("SLO %s: observed %s pass %v", v.Name, obs, v.Pass)
	}
	assert.Equal(t, reports.ResultPass, run.Result, "%s %v", run.Error, run.Steps)
	var kills int
	for _, f := range run.Faults {
		if f.Kind == "cp-node-kill" {
			kills++
			assert.Empty(t, f.Error)
		}
	}
	assert.Equal(t, 1, kills)
	found := false
	for _, m := range run.Measurements {
		for _, v := range m.Values {
			if v.Name == "acked_writes" && m.Step == "failover" {
				found = true
				require.Empty(t, v.Missing, "acked writes counted")
				assert.Greater(t, v.Value, 0.0)
			}
		}
	}
	assert.True(t, found, "the failover step measured its acknowledged writes")
}
