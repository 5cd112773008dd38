package procstat

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
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

func TestStoppedFollowsSIGSTOPAndSIGCONT(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	stopped, err := Stopped(cmd.Process.Pid)
	require.NoError(t, err)
	assert.False(t, stopped, "a sleeping process is not stopped")
	require.NoError(t, syscall.Kill(cmd.Process.Pid, syscall.SIGSTOP))
	require.Eventually(t, func() bool { s, err := Stopped(cmd.Process.Pid); return err == nil && s }, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, syscall.Kill(cmd.Process.Pid, syscall.SIGCONT))
	require.Eventually(t, func() bool { s, err := Stopped(cmd.Process.Pid); return err == nil && !s }, 10*time.Second, 5*time.Millisecond)
}
