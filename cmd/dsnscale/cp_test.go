package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/client"
	"github.com/dsnscale/dsnscale/controlplane/model"
)

var serveLine = regexp.MustCompile(`^(api|nats|ca|admin-password) (\S+)$`)

// TestServeSecureByDefault runs `dsnscale cp serve` as users do, with no security flag: it
// prints an https API, a tls bus, the CA file and the admin password file, and the API takes
// only callers who logged in with that password and trust that CA.
func TestServeSecureByDefault(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(binary, "cp", "serve", "--data", dir, "--listen", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	got := map[string]string{}
	lines := make(chan string, 8)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	deadline := time.After(30 * time.Second)
	for got["admin-password"] == "" {
		select {
		case l, ok := <-lines:
			require.True(t, ok, "cp serve exited: %s", &stderr)
			if m := serveLine.FindStringSubmatch(l); m != nil {
				got[m[1]] = m[2]
			}
		case <-deadline:
			t.Fatalf("cp serve printed %v in 30s: %s", got, &stderr)
		}
	}
	assert.True(t, strings.HasPrefix(got["api"], "https://"), got["api"])
	assert.True(t, strings.HasPrefix(got["nats"], "tls://"), got["nats"])
	assert.Equal(t, filepath.Join(dir, "ca", "ca.crt"), got["ca"])
	assert.Equal(t, filepath.Join(dir, "admin-password"), got["admin-password"])

	ca, err := client.ReadCAFile(got["ca"])
	require.NoError(t, err)
	pw, err := client.ReadPasswordFile(got["admin-password"])
	require.NoError(t, err)
	hc, err := client.HTTPClient(ca, 10*time.Second)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.Eventually(t, func() bool { return client.New(got["api"], hc).Ready(ctx) == nil }, 30*time.Second, 20*time.Millisecond)

	_, err = client.New(got["api"], hc).Revision(ctx)
	assert.Equal(t, http.StatusUnauthorized, client.StatusCode(err), "no token, no answer")
	_, err = client.New(got["api"], nil).Revision(ctx)
	assert.Error(t, err, "a client that does not trust the CA is refused")
	admin := client.New(got["api"], hc, client.WithCredentials("admin", pw))
	_, err = admin.Create(ctx, &model.Object{APIVersion: model.APIVersion, Kind: model.KindTenant, Metadata: model.Metadata{Name: "acme"}})
	require.NoError(t, err)
}

func TestServeSecurityFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--insecure", "--admin-password-file", "x"},
		{"--insecure", "--tls-cert", "a", "--tls-key", "b"},
		{"--tls-cert", "a"},
		{"--token-ttl", "25h"},
	} {
		var out, errb strings.Builder
		code := dispatch(context.Background(), append([]string{"cp", "serve", "--data", t.TempDir()}, args...), &out, &errb)
		assert.Equal(t, exitUsage, code, "%v: %s", args, errb.String())
	}
}

// TestServeClusterFlags runs `dsnscale cp serve` with bad cluster settings: each exits 2 at
// once with a message naming the problem.
func TestServeClusterFlags(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	require.NoError(t, os.WriteFile(pw, []byte("a-long-enough-password-1\n"), 0o600))
	base := []string{"--cluster", "c1", "--node-name", "a", "--cluster-listen", "127.0.0.1:7101", "--admin-password-file", pw}
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"fewer than 3 nodes", append(slices.Clone(base), "--peers", "127.0.0.1:7102"), "R3 needs at least 3 nodes"},
		{"no peers", base, "R3 needs at least 3 nodes"},
		{"own address among peers", append(slices.Clone(base), "--peers", "127.0.0.1:7102,localhost:7101"), "is this node's own cluster address"},
		{"duplicate peers", append(slices.Clone(base), "--peers", "127.0.0.1:7102,nats-route://127.0.0.1:7102,127.0.0.1:7103"), `peers[1] "nats-route://127.0.0.1:7102" repeats peers[0]`},
		{"no node name", []string{"--cluster", "c1", "--cluster-listen", "127.0.0.1:7101", "--peers", "127.0.0.1:7102,127.0.0.1:7103", "--admin-password-file", pw}, "a node name (--node-name) is required"},
		{"peers without a cluster", []string{"--node-name", "a", "--peers", "127.0.0.1:7102,127.0.0.1:7103"}, "need a cluster name (--cluster)"},
		{"cluster with nats-url", append(slices.Clone(base), "--peers", "127.0.0.1:7102,127.0.0.1:7103", "--nats-url", "nats://127.0.0.1:4222"), "cluster and nats-url are exclusive"},
		{"no fixed cluster port", []string{"--cluster", "c1", "--node-name", "a", "--cluster-listen", "127.0.0.1:0", "--peers", "127.0.0.1:7102,127.0.0.1:7103", "--admin-password-file", pw}, "needs a fixed port"},
		{"no shared admin password", []string{"--cluster", "c1", "--node-name", "a", "--cluster-listen", "127.0.0.1:7101", "--peers", "127.0.0.1:7102,127.0.0.1:7103"}, "--admin-password-file"},
		{"replicas without a cluster", []string{"--replicas", "3"}, "replicas 3 need a cluster"},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"cp", "serve", "--data", t.TempDir(), "--listen", "127.0.0.1:0"}, c.args...)
			if !slices.Contains(c.args, "--nats-url") {
				args = append(args, "--nats-listen", "127.0.0.1:0")
			}
			cmd := exec.Command(binary, args...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit, "cp serve %v did not fail: %s", c.args, &stderr)
			assert.Equal(t, exitUsage, exit.ExitCode(), "%s", &stderr)
			assert.Contains(t, stderr.String(), c.want)
		})
	}
}
