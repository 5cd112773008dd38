package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/internal/testbin"
)

// binary is the dsnscale binary built once for the tests that run it as a process.
var binary string

func TestMain(m *testing.M) {
	var err error
	if binary, err = testbin.Build(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}

// cpProcess is a `dsnscale cp serve` child process.
type cpProcess struct {
	cmd    *exec.Cmd
	apiURL string
	stderr *strings.Builder
}

var apiLine = regexp.MustCompile(`^api (http://\S+)$`)

// startCP starts `dsnscale cp serve --insecure` (plain HTTP: these tests are about the store)
// on dataDir with free ports and waits for /readyz. cp_test.go runs it with its security on.
func startCP(t *testing.T, dataDir string, extra ...string) *cpProcess {
	t.Helper()
	args := append([]string{"cp", "serve", "--data", dataDir, "--listen", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0", "--insecure"}, extra...)
	cmd := exec.Command(binary, args...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	p := &cpProcess{cmd: cmd, stderr: &strings.Builder{}}
	cmd.Stderr = p.stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	lines := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	deadline := time.After(30 * time.Second)
	for p.apiURL == "" {
		select {
		case l, ok := <-lines:
			require.True(t, ok, "cp serve exited before printing its address: %s", p.stderr)
			if m := apiLine.FindStringSubmatch(l); m != nil {
				p.apiURL = m[1]
			}
		case <-deadline:
			t.Fatalf("cp serve printed no address in 30s: %s", p.stderr)
		}
	}
	require.Eventually(t, func() bool {
		resp, err := http.Get(p.apiURL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 20*time.Millisecond, "readyz: %s", p.stderr)
	return p
}

func TestUnknownCommandIsUsageError(t *testing.T) {
	var out, errb strings.Builder
	require.Equal(t, exitUsage, dispatch(context.Background(), []string{"frobnicate"}, &out, &errb))
	require.Contains(t, errb.String(), `unknown command "frobnicate"`)
}

func TestCPServeRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"cp"},
		{"cp", "serve"}, // no --data
		{"cp", "serve", "--data", t.TempDir(), "--listen", "nope"}, // bad address
		{"cp", "serve", "--data", t.TempDir(), "--nats-url", "nats://127.0.0.1:1", "--nats-listen", "127.0.0.1:0"},
		{"cp", "serve", "--data", t.TempDir(), "--log-level", "loud"},
		{"cp", "serve", "--data", t.TempDir(), "--pprof-listen", "0.0.0.0:0"}, // profiles are unauthenticated
	} {
		out, err := exec.Command(binary, args...).CombinedOutput()
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee, "%v: %s", args, out)
		require.Equal(t, exitUsage, ee.ExitCode(), "%v: %s", args, out)
	}
}
