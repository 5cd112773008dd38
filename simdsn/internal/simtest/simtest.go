// Package simtest helps tests of the simulated fleet: it builds the dsnscale binary (the sim
// subset) that the process and docker drivers start, statically, once per test process.
package simtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

var (
	once   sync.Once
	dir    string
	binary string
	errOut string
)

// Cleanup removes the built binary; call it from TestMain after m.Run.
func Cleanup() {
	if dir != "" {
		_ = os.RemoveAll(dir)
	}
}

// Binary returns the path of a static dsnscale binary with the sim subcommands, building it on
// first use.
func Binary(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		var err error
		dir, err = os.MkdirTemp("", "dsnscale-simtest-")
		if err != nil {
			errOut = err.Error()
			return
		}
		out := filepath.Join(dir, "dsnscale")
		cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", out, "github.com/dsnscale/dsnscale/simdsn/internal/simtest/dsnscale")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
		if b, err := cmd.CombinedOutput(); err != nil {
			errOut = err.Error() + ": " + string(b)
			return
		}
		binary = out
	})
	if binary == "" {
		t.Fatalf("building the dsnscale test binary: %s", errOut)
	}
	return binary
}

// Map is a small traffic map: racks racks of perRack DSNs, one group, fast telemetry.
func Map(racks, perRack int) string {
	var b []byte
	b = fmt.Appendf(b, "apiVersion: dsnscale/v1\nkind: TrafficMap\nname: simtest\nheartbeat: 10s\nsites:\n  - name: s1\n    racks:\n")
	for i := range racks {
		b = fmt.Appendf(b, "      - {name: r%d, dsns: %d}\n", i+1, perRack)
	}
	b = fmt.Appendf(b, `groups:
  - name: g
    count: %d
    labels: {role: web}
    traffic:
      connectionsPerSecond: 20
      activeFlows: 100
      endpoints: 4
      flows:
        - {probability: 0.5, to: {labels: {app: web}}, protocol: tcp, port: 443}
        - {probability: 0.5, to: {labels: {app: db}}, protocol: tcp, port: 5432}
    telemetry: {series: 12, interval: 5s}
`, racks*perRack)
	return string(b)
}
