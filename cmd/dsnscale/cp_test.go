package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
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
