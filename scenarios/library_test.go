package scenarios

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLibraryScenariosValidate(t *testing.T) {
	entries, err := Library()
	require.NoError(t, err)
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name
		require.NotEmpty(t, e.Description, e.Name)
	}
	require.Subset(t, names, []string{"smoke", "steady-state", "storm-restart", "cp-restart", "stress-network"})
	for _, e := range entries {
		t.Run(e.Name, func(t *testing.T) {
			s, err := Load(e.Name, nil)
			require.NoError(t, err)
			require.Equal(t, e.Name, s.Metadata.Name)
			var b strings.Builder
			require.NoError(t, WritePlan(&b, s))
			t.Log("\n" + b.String())
		})
	}
}
