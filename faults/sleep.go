package faults

import (
	"context"
	"time"
)

// Sleep waits d on c, or until ctx ends (whose error it returns). Faults pace themselves this
// way, and so does the scenario runner.
func Sleep(ctx context.Context, c Clock, d time.Duration) error { return sleep(ctx, c, d) }
