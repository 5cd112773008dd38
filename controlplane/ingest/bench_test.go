package ingest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/internal/benchfig"
	"github.com/dsnscale/dsnscale/scripts/testservers"
)

func TestBenchmarkRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the ingestion benchmark briefly (a few seconds)")
	}
	env := benchfig.Env{WorkDir: t.TempDir(), Logf: t.Logf}
	rate, err := benchIngest(context.Background(), env, "", 500*time.Millisecond, time.Second)
	require.NoError(t, err)
	assert.Greater(t, rate, 0.0)
	if os.Getenv(testservers.VMURL) != "" {
		env.WorkDir = t.TempDir()
		rate, err := benchIngest(context.Background(), env, os.Getenv(testservers.VMURL), 500*time.Millisecond, time.Second)
		require.NoError(t, err)
		assert.Greater(t, rate, 0.0)
	}
}
