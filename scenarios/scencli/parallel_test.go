package scencli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var roomy = Host{OpenFiles: 20000, MemAvailable: 16 << 30, CPUs: 2}

func TestCheckBeds(t *testing.T) {
	require.NoError(t, checkBeds(roomy, []int{100, 100}))

	// Two beds of 10,000 DSNs: 2×256 MiB + 20,000×512 KiB = 10.3 GiB fit in 16 GiB, but each
	// bed needs 20,512 descriptors.
	err := checkBeds(roomy, []int{10000, 10000})
	require.ErrorIs(t, err, ErrOversubscribed)
	require.ErrorContains(t, err, "open files: the largest bed (10000 DSNs) needs about 20512 descriptors (2 per DSN + 512) > the limit of 20000 (ulimit -n)")
	require.NotContains(t, err.Error(), "memory:")

	small := Host{OpenFiles: 1024, MemAvailable: 600 << 20, CPUs: 2}
	err = checkBeds(small, []int{100, 100, 100})
	require.ErrorIs(t, err, ErrOversubscribed)
	require.ErrorContains(t, err, "memory: about 918 MiB estimated (3 beds × 256 MiB + 300 DSNs × 512 KiB) > 600 MiB available (MemAvailable)")
	require.ErrorContains(t, err, "CPUs: 3 beds > 2 CPUs")
	require.NotContains(t, err.Error(), "open files")

	// Just fitting is not refused.
	require.NoError(t, checkBeds(Host{OpenFiles: 712, MemAvailable: 2*(256<<20) + 200*(512<<10), CPUs: 2}, []int{100, 100}))
	require.Error(t, checkBeds(Host{OpenFiles: 711, MemAvailable: 1 << 40, CPUs: 2}, []int{100, 100}))
}

func TestMemAvailable(t *testing.T) {
	n, err := memAvailable(strings.NewReader("MemTotal:       24000000 kB\nMemFree:         1000 kB\nMemAvailable:   12345678 kB\n"))
	require.NoError(t, err)
	require.Equal(t, int64(12345678)<<10, n)
	for _, bad := range []string{"MemTotal: 1 kB\n", "MemAvailable: 12 MB\n", "MemAvailable: x kB\n", "MemAvailable: -5 kB\n"} {
		_, err := memAvailable(strings.NewReader(bad))
		require.Error(t, err, bad)
	}
	h, err := readHost()
	require.NoError(t, err)
	require.Positive(t, h.MemAvailable)
	require.Positive(t, h.OpenFiles)
	require.Positive(t, h.CPUs)
}

func TestParseParallelArgs(t *testing.T) {
	ra, err := parseRunArgs([]string{"--parallel", "3", "smoke", "steady-state", "--set", "dsns=10", "--oversubscribe"})
	require.NoError(t, err)
	require.Equal(t, 3, ra.parallel)
	require.Equal(t, []string{"smoke", "steady-state"}, ra.targets)
	require.True(t, ra.oversubscribe)
	for args, want := range map[string]string{
		"smoke steady-state":                 `unexpected argument "steady-state": one scenario at a time`,
		"--parallel 0 smoke":                 `--parallel "0": want a number of beds from 1 to 64`,
		"--parallel 1 smoke smoke":           "2 scenarios for --parallel 1",
		"--parallel 2 smoke --repeat 2":      "--parallel does not go with --repeat",
		"--parallel 2 smoke --target f.yaml": "--parallel does not go with",
		"smoke --oversubscribe":              "--oversubscribe goes with --parallel N",
	} {
		_, err := parseRunArgs(strings.Fields(args))
		require.ErrorContains(t, err, want, args)
	}
}

// An oversubscribed request is refused before anything starts: exit 2, the numbers on stderr,
// no group directory; --oversubscribe lets the plan through.
func TestParallelRefusesOversubscription(t *testing.T) {
	host := func() (Host, error) { return Host{OpenFiles: 1024, MemAvailable: 300 << 20, CPUs: 2}, nil }
	p := parallelRun{exe: "/nonexistent", host: host, now: time.Now}
	out := t.TempDir() + "/group"
	ra, err := parseRunArgs([]string{"--parallel", "2", "smoke", "--out", out})
	require.NoError(t, err)
	var stdout, stderr bytes.Buffer
	code := p.do(context.Background(), ra, &stdout, &stderr)
	require.Equal(t, ExitUsage, code, stderr.String())
	require.Contains(t, stderr.String(), "refusing 2 parallel beds")
	require.Contains(t, stderr.String(), "memory: about 612 MiB estimated (2 beds × 256 MiB + 200 DSNs × 512 KiB) > 300 MiB available")
	require.Contains(t, stderr.String(), "--oversubscribe runs them anyway")
	require.NoDirExists(t, out)

	ra.oversubscribe = true
	beds, _, err := p.plan(ra)
	require.NoError(t, err)
	require.Len(t, beds, 2)
	require.Equal(t, "bed-1-smoke", beds[0].Dir)
	require.Equal(t, "bed-2-smoke", beds[1].Dir)
	require.Equal(t, 100, beds[0].DSNs)
}
