package loadbench

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/dsnscale/dsnscale/controlplane"
)

// target is the system under load.
type target struct {
	url  string
	stop func()
}

// startTarget starts the reference control plane in this process, on loopback, with its data
// under dir. It is the one place the benchmarks get their target from.
func startTarget(ctx context.Context, dir string) (*target, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cp, err := controlplane.Start(ctx, controlplane.Config{DataDir: filepath.Join(dir, "cp"), Listen: "127.0.0.1:0"})
	if err != nil {
		return nil, fmt.Errorf("starting the control plane: %w", err)
	}
	if err := cp.WaitReady(ctx); err != nil {
		cp.Stop()
		return nil, fmt.Errorf("control plane not ready: %w", err)
	}
	return &target{url: cp.APIURL(), stop: cp.Stop}, nil
}
