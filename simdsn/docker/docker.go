// Package docker is the fleet driver that runs each unit (rack) of DSNs in a container of its
// own: a failure domain that can be killed, paused, restarted or cut off from the network. The
// image is built on the spot, FROM scratch around the static dsnscale binary (no registry is
// needed). Containers use host networking and reach only the harness's loopback endpoints: the
// harness link and the unit's bus proxy, which is what "disconnect" blackholes.
package docker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/ory/dockertest/v3"
	dc "github.com/ory/dockertest/v3/docker"

	"github.com/dsnscale/dsnscale/simdsn/driver"
	"github.com/dsnscale/dsnscale/simdsn/harness"
	"github.com/dsnscale/dsnscale/simdsn/internal/dockerkit"
)

// Name is the driver's registered name.
const Name = "docker"

// ErrNoDocker is returned when no Docker engine answers.
var ErrNoDocker = dockerkit.ErrNoDocker

func init() { driver.MustRegister(Name, Driver{}) }

// Driver is the docker driver.
type Driver struct{}

// Available reports whether a Docker engine answers (nil) or why not.
func Available() error {
	_, err := dockerkit.Connect()
	return err
}

// Launch implements driver.Driver.
func (Driver) Launch(ctx context.Context, p *driver.Plan, records io.Writer) (driver.Deployment, error) {
	pool, err := dockerkit.Connect()
	if err != nil {
		return nil, err
	}
	if err := dockerkit.CheckStatic(p.Binary); err != nil {
		return nil, err
	}
	log := p.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var id [4]byte
	_, _ = rand.Read(id[:])
	r := &runner{pool: pool, log: log, fleet: hex.EncodeToString(id[:]), res: map[string]*dockertest.Resource{}}
	r.img, err = dockerkit.BuildImage(pool, p.Binary, filepath.Join(p.WorkDir, "docker-context"), log)
	if err != nil {
		return nil, err
	}
	d, err := harness.Launch(ctx, p, records, r, harness.Options{ConnectTimeout: 90 * time.Second, Listen: p.HarnessListen, Advertise: p.HarnessAdvertise})
	if err != nil {
		return nil, err
	}
	return d, nil
}

type runner struct {
	pool  *dockertest.Pool
	log   *slog.Logger
	fleet string
	img   dockerkit.Image
	mu    sync.Mutex
	res   map[string]*dockertest.Resource
}

func (r *runner) CacheDir(string) string { return "/state" }

func (r *runner) Start(_ context.Context, unit string, c harness.Child) error {
	r.mu.Lock()
	res := r.res[unit]
	r.mu.Unlock()
	if res != nil {
		return r.pool.Client.StartContainer(res.Container.ID, nil)
	}
	res, err := r.pool.RunWithOptions(&dockertest.RunOptions{
		Name:       "dsnscale-sim-" + r.fleet + "-" + unit,
		Repository: r.img.Repo,
		Tag:        r.img.Tag,
		Cmd:        c.Args,
		Env:        c.Env,
		Labels:     map[string]string{"dsnscale.sim.fleet": r.fleet, "dsnscale.sim.unit": unit},
	}, func(hc *dc.HostConfig) {
		hc.NetworkMode = "host"
		hc.PublishAllPorts = false
		hc.AutoRemove = false
		hc.RestartPolicy = dc.RestartPolicy{Name: "no"}
	})
	if err != nil {
		return fmt.Errorf("docker: container for %s: %w", unit, err)
	}
	r.mu.Lock()
	r.res[unit] = res
	r.mu.Unlock()
	return nil
}

func (r *runner) get(unit string) (*dockertest.Resource, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := r.res[unit]
	if res == nil {
		return nil, fmt.Errorf("%w: %q", driver.ErrUnknownUnit, unit)
	}
	return res, nil
}

func (r *runner) Kill(_ context.Context, unit string) error {
	res, err := r.get(unit)
	if err != nil {
		return err
	}
	_ = r.pool.Client.UnpauseContainer(res.Container.ID)
	return r.pool.Client.KillContainer(dc.KillContainerOptions{ID: res.Container.ID, Signal: dc.SIGKILL})
}

func (r *runner) Pause(_ context.Context, unit string, on bool) error {
	res, err := r.get(unit)
	if err != nil {
		return err
	}
	if on {
		return r.pool.Client.PauseContainer(res.Container.ID)
	}
	return r.pool.Client.UnpauseContainer(res.Container.ID)
}

// Stop stops a unit's container gracefully (docker stop: SIGTERM, SIGKILL after 5s).
func (r *runner) Stop(_ context.Context, unit string) error {
	res, err := r.get(unit)
	if err != nil {
		return err
	}
	_ = r.pool.Client.UnpauseContainer(res.Container.ID)
	return r.pool.Client.StopContainer(res.Container.ID, 5)
}

func (r *runner) Restart(_ context.Context, unit string) error {
	res, err := r.get(unit)
	if err != nil {
		return err
	}
	return r.pool.Client.RestartContainer(res.Container.ID, 2)
}

// Usage sums the containers' CPU time and memory as the engine's stats report them.
func (r *runner) Usage(ctx context.Context) (driver.Usage, error) {
	r.mu.Lock()
	ids := make([]string, 0, len(r.res))
	for _, res := range r.res {
		ids = append(ids, res.Container.ID)
	}
	r.mu.Unlock()
	return dockerkit.Usage(ctx, r.pool.Client, ids)
}

func (r *runner) Close(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for unit, res := range r.res {
		_ = r.pool.Client.UnpauseContainer(res.Container.ID)
		if err := r.pool.Purge(res); err != nil {
			errs = append(errs, fmt.Errorf("docker: removing %s: %w", unit, err))
		}
		delete(r.res, unit)
	}
	dockerkit.RemoveImage(r.pool, r.img, r.log)
	return errors.Join(errs...)
}
