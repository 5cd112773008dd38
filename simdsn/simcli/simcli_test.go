package simcli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane"
	"github.com/dsnscale/dsnscale/internal/natsserver"
	"github.com/dsnscale/dsnscale/simdsn/trafficmap"
)

func writeMap(t *testing.T, old, new string) string {
	t.Helper()
	src := string(trafficmap.DefaultSource())
	if old != "" {
		require.Contains(t, src, old)
		src = strings.Replace(src, old, new, 1)
	}
	p := filepath.Join(t.TempDir(), "map.yaml")
	require.NoError(t, os.WriteFile(p, []byte(src), 0o644))
	return p
}

func runSim(t *testing.T, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestBadInput(t *testing.T) {
	srv, err := natsserver.Start(natsserver.Config{StoreDir: t.TempDir()})
	require.NoError(t, err)
	defer srv.Stop()
	url := srv.URL()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no cp", nil, "--cp is required"},
		{"api url", []string{"--cp", "http://127.0.0.1:8080"}, "not its API URL"},
		{"unknown driver", []string{"--cp", url, "--driver", "k8s"}, `unknown driver: "k8s"`},
		{"negative count", []string{"--cp", url, "--count", "-3"}, "--count must not be negative"},
		{"unknown misbehaviour", []string{"--cp", url, "--map", writeMap(t, "    events: {perMinute: 0.5}", "    events: {perMinute: 0.5}\n    misbehaviours: [melt]")}, `map.yaml:85: groups[3].misbehaviours[0]: unknown misbehaviour "melt"`},
		{"unknown stage set", []string{"--cp", url, "--map", writeMap(t, "    count: 80\n", "    count: 80\n    stages: jittery\n")}, `groups[1].stages: unknown stage set "jittery"`},
		{"probability", []string{"--cp", url, "--map", writeMap(t, "probability: 0.70", "probability: 1.70")}, "probability 1.7 is outside [0,1]"},
		{"negative rate", []string{"--cp", url, "--map", writeMap(t, "connectionsPerSecond: 150", "connectionsPerSecond: -150")}, "groups[1].traffic.connectionsPerSecond: must be a non-negative number, got -150"},
		{"counts", []string{"--cp", url, "--map", writeMap(t, "count: 120", "count: 121")}, `counts do not add up: the racks of site "east" hold 200 DSNs but its groups have 201`},
		{"unknown field", []string{"--cp", url, "--map", writeMap(t, "heartbeat: 10s", "heartbeats: 10s")}, `map.yaml:9: heartbeats: unknown field; did you mean "heartbeat"?`},
		{"unreachable", []string{"--cp", "nats://127.0.0.1:1", "--cp-timeout", "300ms"}, "control plane unreachable: cannot connect to its bus at nats://127.0.0.1:1"},
		{"stray argument", []string{"--cp", url, "extra"}, `unexpected argument "extra"`},
		{"child args", []string{"child", "--unit", "x"}, "--harness, --token and --cache are required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runSim(t, tt.args...)
			assert.Equal(t, ExitUsage, code)
			assert.Contains(t, stderr, tt.want)
		})
	}
}

func TestValidateMap(t *testing.T) {
	var b bytes.Buffer
	ok := writeMap(t, "", "")
	assert.Equal(t, ExitOK, RunValidateMap(ok, &b))
	assert.Contains(t, b.String(), `valid TrafficMap "default": 400 DSNs in 4 groups, 2 sites, 8 racks`)
	assert.True(t, IsTrafficMap(ok))
	b.Reset()
	assert.Equal(t, ExitUsage, RunValidateMap(writeMap(t, "count: 100", "count: 99"), &b))
	assert.Contains(t, b.String(), "counts do not add up")
	assert.Equal(t, ExitUsage, RunValidateMap(filepath.Join(t.TempDir(), "missing.yaml"), &b))
}

func TestRunAgainstControlPlane(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a fleet for seconds: not in -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cp, err := controlplane.Start(ctx, controlplane.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", NATSListen: "127.0.0.1:0"})
	require.NoError(t, err)
	defer cp.Stop()
	require.NoError(t, cp.WaitReady(ctx))
	// The credential flow of a user: the CA and the admin password cp serve wrote, a gateway
	// token the sim creates for itself.
	var out, errb bytes.Buffer
	code := Run(ctx, []string{"--cp", cp.NATSURL(), "--api", cp.APIURL(), "--ca", cp.CAFile(), "--password-file", cp.AdminPasswordFile(),
		"--count", "24", "--boot-spread", "0s", "--duration", "7s", "--progress", "plain"}, &out, &errb)
	require.Equal(t, ExitOK, code, errb.String())
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	assert.Contains(t, lines[0], "sim: 24 DSNs in 8 units, driver inproc")
	assert.Contains(t, out.String(), "sim: t=5s ")
	assert.Contains(t, lines[len(lines)-1], "serving=24/24")

	// Without credentials the secure bus is refused before anything starts.
	code, _, stderr := runSim(t, "--cp", cp.NATSURL(), "--count", "8")
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, stderr, "requires TLS")
	code, _, stderr = runSim(t, "--cp", cp.NATSURL(), "--api", cp.APIURL(), "--ca", cp.CAFile(), "--count", "8")
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, stderr, "exactly one of --token-file and --password-file")
}
