package sweepcli

import (
	"testing"

	"github.com/dsnscale/dsnscale/internal/testbin"
)

func TestMain(m *testing.M) { testbin.Main(m) }
