package cpproc

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/internal/testbin"
)

func TestMain(m *testing.M) { testbin.Main(m) }

// patient is a StartTimeout no test waits out: a result that comes back is not a timeout.
const patient = 10 * time.Minute

// A control plane that dies while starting is reported at once, with the end of its log, and
// not after the readiness wait.
func TestEarlyExitIsReportedAtOnceWithTheLog(t *testing.T) {
	bin := testbin.Path(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	_, err = Start(ctx, Options{Binary: bin, Dir: dir, Listen: taken.Addr().String(), StartTimeout: patient})
	require.ErrorIs(t, err, ErrNotStarted)
	require.NoError(t, ctx.Err(), "the start waited for something other than the exit: %v", err)
	assert.Contains(t, err.Error(), "it exited")
	assert.Contains(t, err.Error(), filepath.Join(dir, LogFile))
	assert.Contains(t, err.Error(), "last log lines:")
	assert.Contains(t, err.Error(), "address already in use", "the log's last lines say why")
}

// fakeServe writes a stand-in for `dsnscale cp serve` that prints stdout, writes its pid to
// pidFile and then hangs: a control plane that never becomes ready.
func fakeServe(t *testing.T, stdout string) (bin, pidFile string) {
	t.Helper()
	dir := t.TempDir()
	bin, pidFile = filepath.Join(dir, "dsnscale"), filepath.Join(dir, "pid")
	script := fmt.Sprintf("#!/bin/sh\nprintf '%s'\necho $$ > %s.tmp && mv %s.tmp %s\nexec sleep 600\n", stdout, pidFile, pidFile, pidFile)
	require.NoError(t, os.WriteFile(bin, []byte(script), 0o755))
	return bin, pidFile
}

// waitPID waits for the fake to have written its pid.
func waitPID(t *testing.T, pidFile string) int {
	t.Helper()
	var pid int
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	}, time.Minute, 10*time.Millisecond)
	return pid
}

type result struct{ err error }

// An interrupted start (Ctrl-C: its context ends) returns at once, whichever wait it is in, and
// leaves no process behind.
func TestInterruptedStartEndsAtOnce(t *testing.T) {
	t.Run("waiting for the addresses", func(t *testing.T) {
		bin, pidFile := fakeServe(t, "")
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan result, 1)
		go func() {
			_, err := Start(ctx, Options{Binary: bin, Dir: t.TempDir(), StartTimeout: patient})
			done <- result{err}
		}()
		pid := waitPID(t, pidFile)
		cancel()
		interrupted(t, done, pid)
	})
	t.Run("waiting for readiness", func(t *testing.T) {
		asked := make(chan struct{}, 1)
		api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case asked <- struct{}{}:
			default:
			}
			http.Error(w, "not ready", http.StatusServiceUnavailable)
		}))
		defer api.Close()
		bin, pidFile := fakeServe(t, fmt.Sprintf(`api %s\nnats nats://127.0.0.1:1\n`, api.URL))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan result, 1)
		go func() {
			_, err := Start(ctx, Options{Binary: bin, Dir: t.TempDir(), Insecure: true, StartTimeout: patient})
			done <- result{err}
		}()
		pid := waitPID(t, pidFile)
		select {
		case <-asked:
		case r := <-done:
			t.Fatalf("start ended before asking for readiness: %v", r.err)
		case <-time.After(time.Minute):
			t.Fatal("the start never asked for readiness")
		}
		cancel()
		interrupted(t, done, pid)
	})
}

// interrupted checks that a start whose context was cancelled returned the context's error and
// killed the process.
func interrupted(t *testing.T, done <-chan result, pid int) {
	t.Helper()
	var r result
	select {
	case r = <-done:
	case <-time.After(time.Minute): // far below patient: the start did not wait its timeout out
		t.Fatal("the start did not end when its context did")
	}
	require.ErrorIs(t, r.err, ErrNotStarted)
	require.ErrorIs(t, r.err, context.Canceled)
	assert.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH, "the process is gone")
}

// A restart on the addresses and data of the first start is found at the same URLs, with the
// data, and logs to the same file.
func TestRestartOnTheSameAddresses(t *testing.T) {
	bin := testbin.Path(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	p, err := Start(ctx, Options{Binary: bin, Dir: dir})
	require.NoError(t, err)
	tenant := &model.Object{APIVersion: model.APIVersion, Kind: model.KindTenant, Metadata: model.Metadata{Name: "acme"}}
	_, err = p.API().Create(ctx, tenant)
	require.NoError(t, err)
	require.NoError(t, syscall.Kill(p.PID(), syscall.SIGKILL))
	<-p.Done()
	require.Error(t, p.ExitErr(), "killed, not exited")

	again, err := Start(ctx, Options{Binary: bin, Dir: dir, Listen: p.APIAddr(), NATSListen: p.NATSAddr()})
	require.NoError(t, err)
	defer again.Stop()
	assert.Equal(t, p.APIURL(), again.APIURL())
	assert.Equal(t, p.NATSURL(), again.NATSURL())
	_, err = again.API().Get(ctx, tenant.Key())
	require.NoError(t, err)

	log, err := os.ReadFile(filepath.Join(dir, LogFile))
	require.NoError(t, err)
	assert.Equal(t, 2, strings.Count(string(log), "api "+p.APIURL()+"\n"), "both starts logged what they printed")
	// Even a frozen control plane shuts down cleanly.
	require.NoError(t, syscall.Kill(again.PID(), syscall.SIGSTOP))
	require.NoError(t, again.Shutdown(ctx, time.Minute))
	assert.True(t, again.Exited())
	assert.NoError(t, again.ExitErr(), "SIGTERM is a clean shutdown")
}
