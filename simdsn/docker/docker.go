// Package docker is the fleet driver that runs each unit (rack) of DSNs in a container of its
// own: a failure domain that can be killed, paused, restarted or cut off from the network. The
// image is built on the spot, FROM scratch around the static dsnscale binary (no registry is
// needed). Containers use host networking and reach only the harness's loopback endpoints: the
// harness link and the unit's bus proxy, which is what "disconnect" blackholes.
package docker

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ory/dockertest/v3"
	dc "github.com/ory/dockertest/v3/docker"

	"github.com/dsnscale/dsnscale/simdsn/driver"
	"github.com/dsnscale/dsnscale/simdsn/harness"
)

// Name is the driver's registered name.
const Name = "docker"

// ErrNoDocker is returned when no Docker engine answers.
var ErrNoDocker = errors.New("docker: no Docker engine")

func init() { driver.MustRegister(Name, Driver{}) }

// Driver is the docker driver.
type Driver struct{}

// Available reports whether a Docker engine answers (nil) or why not.
func Available() error {
	pool, err := dockertest.NewPool("")
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoDocker, err)
	}
	if err := pool.Client.Ping(); err != nil {
		return fmt.Errorf("%w: %v", ErrNoDocker, err)
	}
	return nil
}

// Launch implements driver.Driver.
func (Driver) Launch(ctx context.Context, p *driver.Plan, records io.Writer) (driver.Deployment, error) {
	pool, err := dockertest.NewPool("")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoDocker, err)
	}
	if err := pool.Client.Ping(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoDocker, err)
	}
	if err := checkStatic(p.Binary); err != nil {
		return nil, err
	}
	log := p.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var id [4]byte
	_, _ = rand.Read(id[:])
	r := &runner{pool: pool, log: log, fleet: hex.EncodeToString(id[:]), res: map[string]*dockertest.Resource{}}
	repo, tag, built, err := buildImage(pool, p.Binary, filepath.Join(p.WorkDir, "docker-context"), log)
	if err != nil {
		return nil, err
	}
	r.repo, r.tag, r.built = repo, tag, built
	d, err := harness.Launch(ctx, p, records, r, harness.Options{ConnectTimeout: 90 * time.Second, Listen: p.HarnessListen, Advertise: p.HarnessAdvertise})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// checkStatic refuses a dynamically linked binary: FROM scratch has no loader or libc.
func checkStatic(path string) error {
	if path == "" {
		return errors.New("docker: no dsnscale binary to put in the image")
	}
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("docker: binary %s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("docker: binary %s is dynamically linked; build it with CGO_ENABLED=0", path)
		}
	}
	return nil
}

// buildImage builds (or reuses) the image for a binary: FROM scratch, the binary, nothing else.
func buildImage(pool *dockertest.Pool, binary, dir string, log *slog.Logger) (repo, tag string, built bool, err error) {
	data, err := os.ReadFile(binary)
	if err != nil {
		return "", "", false, fmt.Errorf("docker: reading binary: %w", err)
	}
	sum := sha256.Sum256(data)
	repo, tag = "dsnscale-sim", hex.EncodeToString(sum[:6])
	if _, err := pool.Client.InspectImage(repo + ":" + tag); err == nil {
		return repo, tag, false, nil // another fleet of the same binary is running
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", "", false, err
	}
	if err := os.WriteFile(filepath.Join(dir, "dsnscale"), data, 0o755); err != nil {
		return "", "", false, err
	}
	dockerfile := "FROM scratch\nCOPY dsnscale /dsnscale\nENTRYPOINT [\"/dsnscale\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o640); err != nil {
		return "", "", false, err
	}
	start := time.Now()
	if err := pool.Client.BuildImage(dc.BuildImageOptions{Name: repo + ":" + tag, ContextDir: dir, Dockerfile: "Dockerfile",
		OutputStream: io.Discard, RmTmpContainer: true}); err != nil {
		return "", "", false, fmt.Errorf("docker: building image: %w", err)
	}
	log.Info("docker: image built", "image", repo+":"+tag, "took", time.Since(start))
	return repo, tag, true, nil
}

type runner struct {
	pool      *dockertest.Pool
	log       *slog.Logger
	fleet     string
	repo, tag string
	built     bool // the image was built by this launch, and is removed with it
	mu        sync.Mutex
	res       map[string]*dockertest.Resource
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
		Repository: r.repo,
		Tag:        r.tag,
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
	var (
		u    driver.Usage
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []error
	)
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := r.stats(ctx, id)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			if st == nil {
				return
			}
			u.CPUSeconds += float64(st.CPUStats.CPUUsage.TotalUsage) / 1e9
			u.MemoryBytes += max(int64(st.MemoryStats.Usage)-int64(st.MemoryStats.Stats.Cache), 0)
		}()
	}
	wg.Wait()
	return u, errors.Join(errs...)
}

// stats reads one sample of a container's statistics.
func (r *runner) stats(ctx context.Context, id string) (*dc.Stats, error) {
	ch := make(chan *dc.Stats, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- r.pool.Client.Stats(dc.StatsOptions{ID: id, Stats: ch, Stream: false, Timeout: 10 * time.Second, Context: ctx})
	}()
	st := <-ch
	if err := <-errc; err != nil {
		return nil, fmt.Errorf("docker: stats of %s: %w", id[:12], err)
	}
	return st, nil
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
	if r.built {
		if err := r.pool.Client.RemoveImage(r.repo + ":" + r.tag); err != nil {
			r.log.Debug("docker: image not removed", "err", err)
		}
	}
	return errors.Join(errs...)
}
