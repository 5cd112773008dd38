package runner

import (
	"os"
	"testing"

	"github.com/dsnscale/dsnscale/internal/testbin"
)

// TestMain removes the dsnscale binary the process tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}
