package api

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/internal/benchfig"
)

func TestBenchmarkRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the cp_api benchmark once (a few seconds)")
	}
	figs, err := runBenchmark(context.Background(), benchfig.Env{WorkDir: t.TempDir(), Logf: t.Logf})
	require.NoError(t, err)
	for _, name := range []string{"cp_api_create_closed8_per_s", "cp_api_txn100_creates_per_s", "cp_validate_policy50_per_s"} {
		assert.Greater(t, figs[name], 0.0, name)
	}
}
