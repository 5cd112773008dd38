package procstat

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestReadSelfSeesItsOwnMemoryAndCPU(t *testing.T) {
	before, err := Read(0)
	require.NoError(t, err)
	// Touch 64 MiB and burn some CPU: both must show.
	buf := make([]byte, 64<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	x := 0
	for i := 0; i < 200_000_000; i++ {
		x += i
	}
	after, err := Read(os.Getpid())
	require.NoError(t, err)
	require.Greater(t, after.RSSBytes, before.RSSBytes+32<<20)
	require.GreaterOrEqual(t, after.PeakRSS, after.RSSBytes)
	require.Greater(t, after.CPUSeconds, before.CPUSeconds)
	require.NotZero(t, x+int(buf[len(buf)-1]))
}

func TestReadMissingProcess(t *testing.T) {
	_, err := Read(1 << 30)
	require.ErrorIs(t, err, ErrUnavailable)
}
