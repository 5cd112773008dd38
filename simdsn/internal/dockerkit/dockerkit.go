// Package dockerkit holds what the container drivers (docker, swarm) share: the connection to
// the Docker engine, the image built FROM scratch around the static dsnscale binary (no
// registry is involved), and the containers' resource use as the engine's stats report it.
package dockerkit

import (
	"context"
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
)

// ErrNoDocker is returned when no Docker engine answers.
var ErrNoDocker = errors.New("docker: no Docker engine")

// Connect opens a pool on the engine of the environment (DOCKER_HOST or the local socket) and
// checks that it answers.
func Connect() (*dockertest.Pool, error) {
	pool, err := dockertest.NewPool("")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoDocker, err)
	}
	if err := pool.Client.Ping(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoDocker, err)
	}
	return pool, nil
}

// CheckStatic refuses a dynamically linked binary: FROM scratch has no loader or libc.
func CheckStatic(path string) error {
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

// Image is the image of one dsnscale binary.
type Image struct {
	Repo, Tag string
	// Built tells that this launch built the image, so that it removes it when done.
	Built bool
}

// Ref is the image's local reference, repo:tag.
func (i Image) Ref() string { return i.Repo + ":" + i.Tag }

// BuildImage builds (or reuses) the image for a binary: FROM scratch, the binary, nothing else.
// dir is the build context, created if needed.
func BuildImage(pool *dockertest.Pool, binary, dir string, log *slog.Logger) (Image, error) {
	data, err := os.ReadFile(binary)
	if err != nil {
		return Image{}, fmt.Errorf("docker: reading binary: %w", err)
	}
	sum := sha256.Sum256(data)
	img := Image{Repo: "dsnscale-sim", Tag: hex.EncodeToString(sum[:6])}
	if _, err := pool.Client.InspectImage(img.Ref()); err == nil {
		return img, nil // another fleet of the same binary is running
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return Image{}, err
	}
	if err := os.WriteFile(filepath.Join(dir, "dsnscale"), data, 0o755); err != nil {
		return Image{}, err
	}
	dockerfile := "FROM scratch\nCOPY dsnscale /dsnscale\nENTRYPOINT [\"/dsnscale\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o640); err != nil {
		return Image{}, err
	}
	start := time.Now()
	if err := pool.Client.BuildImage(dc.BuildImageOptions{Name: img.Ref(), ContextDir: dir, Dockerfile: "Dockerfile",
		OutputStream: io.Discard, RmTmpContainer: true}); err != nil {
		return Image{}, fmt.Errorf("docker: building image: %w", err)
	}
	log.Info("docker: image built", "image", img.Ref(), "took", time.Since(start))
	img.Built = true
	return img, nil
}

// RemoveImage removes the image if this launch built it; an image still in use by another
// fleet stays.
func RemoveImage(pool *dockertest.Pool, img Image, log *slog.Logger) {
	if !img.Built {
		return
	}
	if err := pool.Client.RemoveImage(img.Ref()); err != nil {
		log.Debug("docker: image not removed", "err", err)
	}
}

// Usage sums the containers' CPU time and memory (without page cache) as the engine's stats
// report them.
func Usage(ctx context.Context, client *dc.Client, ids []string) (driver.Usage, error) {
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
			st, err := Stats(ctx, client, id)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			u.CPUSeconds += CPUSeconds(st)
			u.MemoryBytes += max(int64(st.MemoryStats.Usage)-int64(st.MemoryStats.Stats.Cache), 0)
		}()
	}
	wg.Wait()
	return u, errors.Join(errs...)
}

// CPUSeconds is the CPU time a container has used, from one sample of its stats.
func CPUSeconds(st *dc.Stats) float64 { return float64(st.CPUStats.CPUUsage.TotalUsage) / 1e9 }

// Stats reads one sample of a container's statistics.
func Stats(ctx context.Context, client *dc.Client, id string) (*dc.Stats, error) {
	ch := make(chan *dc.Stats, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- client.Stats(dc.StatsOptions{ID: id, Stats: ch, Stream: false, Timeout: 10 * time.Second, Context: ctx})
	}()
	st := <-ch
	if err := <-errc; err != nil {
		return nil, fmt.Errorf("docker: stats of %s: %w", short(id), err)
	}
	if st == nil {
		return nil, fmt.Errorf("docker: stats of %s: no sample", short(id))
	}
	return st, nil
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
