// Package testbin builds the dsnscale binary for tests that run it as a process (a control
// plane, fleet drivers in child processes or containers, the command line itself). It builds
// once per test process, statically as `make build` does, so that one build serves every such
// test and the containers of the docker driver alike.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// Package is the import path of the dsnscale command.
const Package = "github.com/dsnscale/dsnscale/cmd/dsnscale"

var (
	mu     sync.Mutex
	dir    string
	binary string
)

// Build returns the path of the dsnscale binary, building it on first use. It is for TestMain
// functions; tests call Path.
func Build() (string, error) {
	mu.Lock()
	defer mu.Unlock()
	if binary != "" {
		return binary, nil
	}
	d, err := os.MkdirTemp("", "dsnscale-testbin-")
	if err != nil {
		return "", err
	}
	out := filepath.Join(d, "dsnscale")
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", out, Package)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		_ = os.RemoveAll(d)
		return "", fmt.Errorf("building dsnscale: %w: %s", err, b)
	}
	dir, binary = d, out
	return binary, nil
}

// Path returns the path of the dsnscale binary, building it on first use; a failed build fails
// the test.
func Path(t testing.TB) string {
	t.Helper()
	bin, err := Build()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// Main runs a package's tests and then removes the binary they built: a package whose tests
// use Path has `func TestMain(m *testing.M) { testbin.Main(m) }`.
func Main(m *testing.M) {
	code := m.Run()
	Cleanup()
	os.Exit(code)
}

// Cleanup removes the built binary; Main calls it.
func Cleanup() {
	mu.Lock()
	defer mu.Unlock()
	if dir != "" {
		_ = os.RemoveAll(dir)
	}
	dir, binary = "", ""
}
