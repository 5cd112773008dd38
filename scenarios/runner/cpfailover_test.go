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

// runReplicatedLibrary runs the library scenario file (three control-plane replicas, so the
// built binary) with params, logs its SLOs and checks that it passed.
func runReplicatedLibrary(t *testing.T, file string, params map[string]string) *reports.Run {
	t.Helper()
	if testing.Short() {
		t.Skip("builds dsnscale and runs three control-plane replicas under a small fleet")
	}
	src, err := os.ReadFile("../library/" + file)
	require.NoError(t, err)
	bin, err := testbin.Build()
	require.NoError(t, err)
	run := runScenario(t, file, string(src), params, Options{Binary: bin})
	for _, v := range run.SLOs {
		obs := "missing"
		if v.Observed != nil {
			obs = fmt.Sprint(*v.Observed)
		}
		t.Logf("SLO %s: observed %s pass %v", v.Name, obs, v.Pass)
	}
	// What went wrong, with its first instances: the run directory goes with the test.
	for _, a := range run.Anomalies {
		t.Logf("anomaly %s (%s): %s %v", a.Kind, a.Source, a.Summary, a.Examples)
	}
	assert.Equal(t, reports.ResultPass, run.Result, "%s %v", run.Error, run.Steps)
	return run
}

// faultsOf counts the run's faults of kind and checks that none failed.
func faultsOf(t *testing.T, run *reports.Run, kind string) int {
	t.Helper()
	n := 0
	for _, f := range run.Faults {
		if f.Kind == kind {
			n++
			assert.Empty(t, f.Error)
		}
	}
	return n
}

// The library's cp-failover scenario at a small size: three replicas, one killed while writes
// are under way; no acknowledged write is lost and every SLO holds.
func TestLibraryCPFailover(t *testing.T) {
	run := runReplicatedLibrary(t, "cp-failover.yaml", map[string]string{"dsns": "30", "writes": "40", "node": "1"})
	assert.Equal(t, 1, faultsOf(t, run, "cp-node-kill"))
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
