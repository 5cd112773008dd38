package harness

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestChildArgsNameTheUnitByIndex(t *testing.T) {
	dir := t.TempDir()
	units := filepath.Join(dir, "units.json")
	require.NoError(t, os.WriteFile(units, []byte(`[{"name":"r1","site":"s","rack":"r1","dsns":2},{"name":"r2","site":"s","rack":"r2","dsns":1}]`), 0o600))
	a, err := ParseChildArgs([]string{"--harness", "h:1", "--token", "t", "--cache", dir, "--units", units, "--index", "1"}, func(string) string { return "c" }, io.Discard)
	require.NoError(t, err)
	name, err := unitAt(a.UnitsFile, a.Index)
	require.NoError(t, err)
	require.Equal(t, "r2", name)
	_, err = unitAt(units, 2)
	require.ErrorContains(t, err, "no unit at index 2 (2 units)")
	for _, args := range [][]string{
		{"--harness", "h:1", "--token", "t", "--cache", dir},
		{"--harness", "h:1", "--token", "t", "--cache", dir, "--unit", "r1", "--units", units, "--index", "0"},
		{"--harness", "h:1", "--token", "t", "--cache", dir, "--units", units},
		{"--harness", "h:1", "--token", "t", "--cache", dir, "--unit", "r1", "--index", "0"},
	} {
		_, err := ParseChildArgs(args, func(string) string { return "c" }, io.Discard)
		require.ErrorContains(t, err, "name the unit", "%v", args)
	}
}
