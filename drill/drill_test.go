package drill

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/scenarios"
)

func TestHits(t *testing.T) {
	for _, c := range []struct {
		t    scenarios.TargetSpec
		want int
	}{
		{scenarios.TargetSpec{Count: 3}, 3},
		{scenarios.TargetSpec{Count: 30}, 20},
		{scenarios.TargetSpec{Fraction: 0.11}, 3},
		{scenarios.TargetSpec{DSNs: []string{"a", "b"}}, 2},
		{scenarios.TargetSpec{Labels: map[string]string{"rack": "r1"}}, 20},
		{scenarios.TargetSpec{}, 20},
	} {
		n, _ := Hits(c.t, 20)
		assert.Equal(t, c.want, n, "%+v", c.t)
	}
}

func FuzzLoad(f *testing.F) {
	f.Add([]byte("apiVersion: dsnscale/v1\nkind: Drill\nmetadata: {name: d}\nscenario: smoke\n" +
		"limits: {maxDSNs: 5, maxShare: 25%, maxFaultDuration: 2m, allowKinds: [dsn-restart]}\n"))
	f.Add([]byte("kind: Drill\nlimits: {}\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "d.yaml")
		require.NoError(t, os.WriteFile(p, data, 0o600))
		d, err := Load(p)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalid)
			return
		}
		require.NotNil(t, d.Limits, "a drill without limits is never accepted")
		require.Positive(t, d.Limits.MaxDSNs)
		require.NotEmpty(t, d.Limits.AllowKinds)
	})
}
