// Package swarm is the fleet driver that runs the units (racks) of DSNs on a Docker Swarm: one
// service per unit, of one replica, placed by the swarm's scheduler over its nodes.
//
// One service per unit rather than one service of many replicas: a unit is a failure domain
// with an identity (its name, its DSNs), and a replica of a service has none that a command can
// be sent with — every task of a service runs the same arguments, and Swarm cannot stop or
// start one slot of a service while the others run. With a service per unit, a unit's task
// runs `dsnscale sim child --unit <name>`; stopping a unit scales its service to zero and
// lifting the stop scales it back to one; restarting it is a forced update of its service;
// killing it kills its task's container and Swarm's restart policy starts a new one. Killing a
// unit thus takes exactly its DSNs away. Every service carries the placement preference
// "spread over node.id", and Swarm's scheduler puts a service's task on the node that runs the
// fewest tasks, so the units spread over the nodes.
//
// The services run the image of package docker (FROM scratch around the static dsnscale
// binary, built on the spot on this engine; no registry: the engine is not asked to resolve
// the image in one). Tasks use the predefined "host" network and dial the harness link and the
// unit's bus proxy on loopback, so today every task must run on the node of the harness: a
// one-node swarm. Tasks on other nodes need the harness link and the bus proxies reachable
// over the network, which this driver does not provide.
//
// The driver needs a swarm that exists: the engine it talks to (DOCKER_HOST, or the local
// socket) must be a manager of an active swarm (`docker swarm init`). It never creates or
// leaves a swarm itself.
package swarm

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

	"github.com/docker/docker/api/types/swarm"
	"github.com/ory/dockertest/v3"
	dc "github.com/ory/dockertest/v3/docker"

	"github.com/dsnscale/dsnscale/simdsn/driver"
	"github.com/dsnscale/dsnscale/simdsn/harness"
	"github.com/dsnscale/dsnscale/simdsn/internal/dockerkit"
)

// Name is the driver's registered name.
const Name = "swarm"

// ErrNoSwarm is returned when the Docker engine is not a manager of an active swarm.
var ErrNoSwarm = errors.New("swarm: the Docker engine is not a swarm manager")

// Labels on the services and their containers.
const (
	labelFleet = "dsnscale.sim.fleet"
	labelUnit  = "dsnscale.sim.unit"
)

// Timings: a stopped task gets stopGrace to exit on SIGTERM; a failed one is started again
// after restartDelay.
const (
	stopGrace    = 5 * time.Second
	restartDelay = time.Second
	waitTask     = 90 * time.Second
	pollEvery    = 250 * time.Millisecond
)

func init() { driver.MustRegister(Name, Driver{}) }

// Driver is the swarm driver.
type Driver struct{}

// Available reports whether the Docker engine answers and manages an active swarm (nil), or
// why not: an error wrapping dockerkit's ErrNoDocker (as docker.ErrNoDocker) or ErrNoSwarm.
func Available() error {
	_, _, _, err := connect(context.Background())
	return err
}

// connect opens the engine and checks that it manages an active swarm.
func connect(ctx context.Context) (*dockertest.Pool, *api, swarm.Info, error) {
	pool, err := dockerkit.Connect()
	if err != nil {
		return nil, nil, swarm.Info{}, err
	}
	a, err := newAPI(pool.Client)
	if err != nil {
		return nil, nil, swarm.Info{}, err
	}
	info, err := a.swarmInfo(ctx)
	if err != nil {
		return nil, nil, info, fmt.Errorf("%w: %v", dockerkit.ErrNoDocker, err)
	}
	return pool, a, info, checkManager(info)
}

// checkManager tells whether the engine can run services: a manager of an active swarm.
func checkManager(info swarm.Info) error {
	if info.LocalNodeState != swarm.LocalNodeStateActive {
		state := string(info.LocalNodeState)
		if state == "" {
			state = "unknown"
		}
		return fmt.Errorf("%w: its swarm state is %s; run `docker swarm init` on it first (the driver never creates a swarm)", ErrNoSwarm, state)
	}
	if !info.ControlAvailable {
		return fmt.Errorf("%w: node %s is a worker; point DOCKER_HOST at a manager of the swarm", ErrNoSwarm, info.NodeID)
	}
	return nil
}

// Launch implements driver.Driver.
func (Driver) Launch(ctx context.Context, p *driver.Plan, records io.Writer) (driver.Deployment, error) {
	pool, a, info, err := connect(ctx)
	if err != nil {
		return nil, err
	}
	if err := dockerkit.CheckStatic(p.Binary); err != nil {
		return nil, err
	}
	hostNet, err := a.networkID(ctx, "host")
	if err != nil {
		return nil, fmt.Errorf("swarm: the predefined host network: %w", err)
	}
	log := p.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var id [4]byte
	_, _ = rand.Read(id[:])
	r := &runner{api: a, pool: pool, log: log, fleet: hex.EncodeToString(id[:]), node: info.NodeID, hostNet: hostNet,
		units: map[string]*unit{}}
	r.img, err = dockerkit.BuildImage(pool, p.Binary, filepath.Join(p.WorkDir, "docker-context"), log)
	if err != nil {
		return nil, err
	}
	return harness.Launch(ctx, p, records, r, harness.Options{ConnectTimeout: 2 * time.Minute, Listen: p.HarnessListen, Advertise: p.HarnessAdvertise})
}

type unit struct {
	service string // service ID
	paused  string // the container paused by unit-pause, until thawed
}

// runner is a harness.Runner (and Stopper) over swarm services.
type runner struct {
	api     *api
	pool    *dockertest.Pool
	log     *slog.Logger
	fleet   string
	node    string // this engine's node ID: containers are reachable here only
	hostNet string
	img     dockerkit.Image

	mu      sync.Mutex
	units   map[string]*unit
	deadCPU float64 // CPU seconds of task containers the driver killed or replaced
}

func (r *runner) CacheDir(string) string { return "/state" }

// Start creates the unit's service, or scales it back to one task and waits until that task
// runs (lifting a kill or a stop).
func (r *runner) Start(ctx context.Context, name string, c harness.Child) error {
	r.mu.Lock()
	u := r.units[name]
	n := len(r.units)
	r.mu.Unlock()
	if u == nil {
		id, err := r.api.createService(ctx, r.spec(name, n+1, c))
		if err != nil {
			return fmt.Errorf("swarm: service for %s: %w", name, err)
		}
		r.mu.Lock()
		r.units[name] = &unit{service: id}
		r.mu.Unlock()
		return nil
	}
	if err := r.scale(ctx, u.service, 1); err != nil {
		return fmt.Errorf("swarm: starting %s: %w", name, err)
	}
	_, err := r.waitTask(ctx, name, u.service)
	return err
}

// spec is the service of one unit.
func (r *runner) spec(name string, n int, c harness.Child) swarm.ServiceSpec {
	labels := map[string]string{labelFleet: r.fleet, labelUnit: name}
	one := uint64(1)
	grace, delay := stopGrace, restartDelay
	return swarm.ServiceSpec{
		// Unit names need not be valid service names; the label keeps the unit's.
		Annotations: swarm.Annotations{Name: fmt.Sprintf("dsnscale-sim-%s-u%d", r.fleet, n), Labels: labels},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: r.img.Ref(), Args: c.Args, Env: c.Env, Labels: labels, StopGracePeriod: &grace},
			RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny, Delay: &delay},
			Placement: &swarm.Placement{Preferences: []swarm.PlacementPreference{
				{Spread: &swarm.SpreadOver{SpreadDescriptor: "node.id"}},
			}},
			Networks: []swarm.NetworkAttachmentConfig{{Target: r.hostNet}},
		},
		Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &one}},
	}
}

func (r *runner) get(name string) (*unit, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	u := r.units[name]
	if u == nil {
		return nil, fmt.Errorf("%w: %q", driver.ErrUnknownUnit, name)
	}
	return u, nil
}

// scale sets a service's replicas.
func (r *runner) scale(ctx context.Context, service string, replicas uint64) error {
	return r.update(ctx, service, func(s *swarm.ServiceSpec) bool {
		if *s.Mode.Replicated.Replicas == replicas {
			return false
		}
		s.Mode.Replicated.Replicas = &replicas
		return true
	})
}

// update reads a service's spec, changes it, and writes it back at the version read.
func (r *runner) update(ctx context.Context, service string, change func(*swarm.ServiceSpec) bool) error {
	s, err := r.api.service(ctx, service)
	if err != nil {
		return err
	}
	if !change(&s.Spec) {
		return nil
	}
	return r.api.updateService(ctx, service, s.Version.Index, s.Spec)
}

// WhyNotConnected implements harness.Explainer: what the engine says of the unit's latest task
// (a task no node can take says "no suitable node").
func (r *runner) WhyNotConnected(ctx context.Context, name string) string {
	r.mu.Lock()
	u := r.units[name]
	r.mu.Unlock()
	if u == nil {
		return "its service was never created"
	}
	ts, err := r.api.tasks(ctx, map[string][]string{"service": {u.service}})
	if err != nil {
		return "its tasks could not be listed: " + err.Error()
	}
	if len(ts) == 0 {
		return "its service has no task"
	}
	latest := ts[0]
	for _, t := range ts[1:] {
		if t.Meta.CreatedAt.After(latest.Meta.CreatedAt) {
			latest = t
		}
	}
	why := fmt.Sprintf("its task is %s", latest.Status.State)
	if latest.Status.Err != "" {
		why += ": " + latest.Status.Err
	} else if latest.Status.Message != "" {
		why += " (" + latest.Status.Message + ")"
	}
	return why
}

// running returns the service's running tasks.
func (r *runner) running(ctx context.Context, services ...string) ([]swarm.Task, error) {
	ts, err := r.api.tasks(ctx, map[string][]string{"service": services, "desired-state": {"running"}})
	if err != nil {
		return nil, err
	}
	out := ts[:0]
	for _, t := range ts {
		if t.Status.State == swarm.TaskStateRunning && t.Status.ContainerStatus != nil && t.Status.ContainerStatus.ContainerID != "" {
			out = append(out, t)
		}
	}
	return out, nil
}

// container returns the container of a unit's running task ("" when none runs), which must
// be on this engine's node: containers of other nodes are out of this engine's reach.
func (r *runner) container(ctx context.Context, name, service string) (string, error) {
	ts, err := r.running(ctx, service)
	if err != nil {
		return "", fmt.Errorf("swarm: tasks of %s: %w", name, err)
	}
	if len(ts) == 0 {
		return "", nil
	}
	t := ts[0]
	if t.NodeID != r.node {
		return "", fmt.Errorf("%w: unit %s runs on node %s, and only containers of this engine's node (%s) can be paused or killed",
			driver.ErrUnsupported, name, t.NodeID, r.node)
	}
	return t.Status.ContainerStatus.ContainerID, nil
}

// waitTask waits until a unit's service runs a task and returns its container.
func (r *runner) waitTask(ctx context.Context, name, service string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, waitTask)
	defer cancel()
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		id, err := r.container(ctx, name, service)
		if err != nil || id != "" {
			return id, err
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("swarm: no task of %s running within %v: %w", name, waitTask, ctx.Err())
		case <-t.C:
		}
	}
}

// retire counts the CPU time of a container the driver is about to end.
func (r *runner) retire(ctx context.Context, id string) {
	st, err := dockerkit.Stats(ctx, r.pool.Client, id)
	if err != nil {
		r.log.Debug("swarm: last stats", "container", id, "err", err)
		return
	}
	r.mu.Lock()
	r.deadCPU += dockerkit.CPUSeconds(st)
	r.mu.Unlock()
}

// Kill kills the container of the unit's task (SIGKILL). Swarm's restart policy starts a new
// task after restartDelay.
func (r *runner) Kill(ctx context.Context, name string) error {
	u, err := r.get(name)
	if err != nil {
		return err
	}
	id, err := r.container(ctx, name, u.service)
	if err != nil || id == "" {
		return err
	}
	r.retire(ctx, id)
	r.thaw(u, id)
	return r.pool.Client.KillContainer(dc.KillContainerOptions{ID: id, Signal: dc.SIGKILL, Context: ctx})
}

// thaw unpauses a container the driver paused: a paused container cannot die.
func (r *runner) thaw(u *unit, id string) {
	r.mu.Lock()
	paused := u.paused == id
	u.paused = ""
	r.mu.Unlock()
	if paused {
		_ = r.pool.Client.UnpauseContainer(id)
	}
}

// Pause pauses (or unpauses) the container of the unit's task; Swarm leaves a paused task be.
func (r *runner) Pause(ctx context.Context, name string, on bool) error {
	u, err := r.get(name)
	if err != nil {
		return err
	}
	if !on {
		r.mu.Lock()
		id := u.paused
		u.paused = ""
		r.mu.Unlock()
		if id == "" {
			return nil
		}
		return r.pool.Client.UnpauseContainer(id)
	}
	id, err := r.container(ctx, name, u.service)
	if err != nil {
		return err
	}
	if id == "" {
		return fmt.Errorf("swarm: unit %s has no running task to pause", name)
	}
	if err := r.pool.Client.PauseContainer(id); err != nil {
		return err
	}
	r.mu.Lock()
	u.paused = id
	r.mu.Unlock()
	return nil
}

// Stop scales the unit's service to zero: Swarm stops its task (SIGTERM, SIGKILL after
// stopGrace) and starts none until Start scales it back.
func (r *runner) Stop(ctx context.Context, name string) error {
	u, err := r.get(name)
	if err != nil {
		return err
	}
	id, err := r.container(ctx, name, u.service)
	if err != nil {
		return err
	}
	if id != "" {
		r.retire(ctx, id)
		r.thaw(u, id)
	}
	if err := r.scale(ctx, u.service, 0); err != nil {
		return fmt.Errorf("swarm: stopping %s: %w", name, err)
	}
	return nil
}

// Restart forces an update of the unit's service: Swarm stops its task and starts a new one.
func (r *runner) Restart(ctx context.Context, name string) error {
	u, err := r.get(name)
	if err != nil {
		return err
	}
	if id, err := r.container(ctx, name, u.service); err == nil && id != "" {
		r.retire(ctx, id)
		r.thaw(u, id)
	}
	if err := r.update(ctx, u.service, func(s *swarm.ServiceSpec) bool {
		s.TaskTemplate.ForceUpdate++
		return true
	}); err != nil {
		return fmt.Errorf("swarm: restarting %s: %w", name, err)
	}
	return nil
}

// Usage sums the CPU time and memory of the running task containers, and the CPU time of the
// containers the driver ended. Containers that Swarm replaced on its own (a task that failed)
// took their CPU time with them.
func (r *runner) Usage(ctx context.Context) (driver.Usage, error) {
	r.mu.Lock()
	services := make([]string, 0, len(r.units))
	for _, u := range r.units {
		services = append(services, u.service)
	}
	dead := r.deadCPU
	r.mu.Unlock()
	ts, err := r.running(ctx, services...)
	if err != nil {
		return driver.Usage{}, fmt.Errorf("swarm: tasks: %w", err)
	}
	ids := make([]string, 0, len(ts))
	for _, t := range ts {
		if t.NodeID != r.node {
			return driver.Usage{}, fmt.Errorf("%w: usage of tasks on other nodes (%s) is out of this engine's reach", driver.ErrUnsupported, t.NodeID)
		}
		ids = append(ids, t.Status.ContainerStatus.ContainerID)
	}
	u, err := dockerkit.Usage(ctx, r.pool.Client, ids)
	u.CPUSeconds += dead
	return u, err
}

// Close removes the services, waits until Swarm has removed their containers, and removes the
// image if this launch built it.
func (r *runner) Close(ctx context.Context) error {
	r.mu.Lock()
	units := r.units
	r.units = map[string]*unit{}
	r.mu.Unlock()
	var errs []error
	for name, u := range units {
		if u.paused != "" {
			_ = r.pool.Client.UnpauseContainer(u.paused)
		}
		if err := r.api.removeService(ctx, u.service); err != nil && !isStatus(err, 404) {
			errs = append(errs, fmt.Errorf("swarm: removing the service of %s: %w", name, err))
		}
	}
	if len(units) > 0 {
		if err := r.waitGone(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	dockerkit.RemoveImage(r.pool, r.img, r.log)
	return errors.Join(errs...)
}

// waitGone waits until no container of the fleet is left on this engine.
func (r *runner) waitGone(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		cs, err := r.pool.Client.ListContainers(dc.ListContainersOptions{All: true, Context: ctx,
			Filters: map[string][]string{"label": {labelFleet + "=" + r.fleet}}})
		if err == nil && len(cs) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("swarm: %d containers of the fleet still there after its services were removed", len(cs))
		case <-t.C:
		}
	}
}
