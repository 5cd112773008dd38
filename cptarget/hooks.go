package cptarget

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/dsnscale/dsnscale/faults"
	"github.com/dsnscale/dsnscale/target"
)

// hookedCP acts on a target's control plane through the hooks its target file declares: the
// harness runs the commands and never guesses how else to kill or pause a replica.
type hookedCP struct {
	hooks target.Hooks
	api   *clientAPI

	mu   sync.Mutex
	down bool
}

var (
	_ faults.ControlPlane = (*hookedCP)(nil)
	_ faults.Pauser       = (*hookedCP)(nil)
)

func (c *hookedCP) run(ctx context.Context, name string, h *target.Hook) error {
	if h == nil {
		return fmt.Errorf("%w: the target declares no %s hook", faults.ErrUnsupported, name)
	}
	return h.Run(ctx, name)
}

// Kill runs the kill hook.
func (c *hookedCP) Kill(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.run(ctx, "kill", c.hooks.Kill); err != nil {
		return err
	}
	c.down = true
	return nil
}

// Start runs the start hook, then waits, within the hook's timeout, for the API to answer.
func (c *hookedCP) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.run(ctx, "start", c.hooks.Start); err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, c.hooks.Start.Timeout)
	defer cancel()
	for {
		if _, err := c.api.Revision(rctx); err == nil {
			break
		} else if rctx.Err() != nil {
			return fmt.Errorf("%w start: the API did not answer within %s of the hook: %w", target.ErrHook, c.hooks.Start.Timeout, err)
		}
		select {
		case <-rctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	c.down = false
	return nil
}

// Running reports whether the last kill was followed by a start.
func (c *hookedCP) Running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.down
}

// Pause runs the pause hook (on) or the resume hook.
func (c *hookedCP) Pause(ctx context.Context, on bool) error {
	if on {
		return c.run(ctx, "pause", c.hooks.Pause)
	}
	return c.run(ctx, "resume", c.hooks.Resume)
}
