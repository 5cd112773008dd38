package swarm

import (
	"context"
	"fmt"

	"github.com/docker/docker/api/types/swarm"

	"github.com/dsnscale/dsnscale/simdsn/internal/dockerkit"
)

// LocalSwarm is for tests and benchmarks, never used by the driver: it makes the engine the
// manager of a one-node swarm advertised on 127.0.0.1 (`docker swarm init --advertise-addr
// 127.0.0.1`) when it is in no swarm, and returns how to leave that swarm again. On an engine
// that already manages a swarm it changes nothing and leave does nothing; an engine in a swarm
// it cannot use (a worker, a swarm in error) is an error.
func LocalSwarm(ctx context.Context) (leave func(context.Context) error, err error) {
	pool, err := dockerkit.Connect()
	if err != nil {
		return nil, err
	}
	a, err := newAPI(pool.Client)
	if err != nil {
		return nil, err
	}
	info, err := a.swarmInfo(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", dockerkit.ErrNoDocker, err)
	}
	if checkManager(info) == nil {
		return func(context.Context) error { return nil }, nil
	}
	if info.LocalNodeState != swarm.LocalNodeStateInactive {
		return nil, checkManager(info)
	}
	if err := a.initSwarm(ctx, swarm.InitRequest{ListenAddr: "127.0.0.1:2377", AdvertiseAddr: "127.0.0.1"}); err != nil {
		return nil, fmt.Errorf("swarm: init: %w", err)
	}
	leave = func(ctx context.Context) error {
		if err := a.leaveSwarm(ctx); err != nil {
			return fmt.Errorf("swarm: leave: %w", err)
		}
		return nil
	}
	info, err = a.swarmInfo(ctx)
	if err == nil {
		err = checkManager(info)
	}
	if err != nil {
		_ = leave(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("swarm: no swarm after init: %w", err)
	}
	return leave, nil
}
