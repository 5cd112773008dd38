// Package process is the fleet driver that runs each unit (rack) of DSNs in a child process of
// its own (`dsnscale sim child`), linked to the harness over loopback. Unit faults are signals:
// kill (SIGKILL, then a new process), pause (SIGSTOP/SIGCONT), restart, and disconnect (the
// unit's bus proxy blackholed). Each child keeps a small config cache file per DSN.
package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/dsnscale/dsnscale/simdsn/driver"
	"github.com/dsnscale/dsnscale/simdsn/harness"
)

// Name is the driver's registered name.
const Name = "process"

func init() { driver.MustRegister(Name, Driver{}) }

// Driver is the process driver.
type Driver struct{}

// Launch implements driver.Driver.
func (Driver) Launch(ctx context.Context, p *driver.Plan, records io.Writer) (driver.Deployment, error) {
	if p.Binary == "" {
		return nil, errors.New("process: no dsnscale binary to run")
	}
	if _, err := os.Stat(p.Binary); err != nil {
		return nil, fmt.Errorf("process: binary: %w", err)
	}
	r := &runner{binary: p.Binary, dir: filepath.Join(p.WorkDir, "process"), log: p.Logger, procs: map[string]*proc{}}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Join(r.dir, "logs"), 0o750); err != nil {
		return nil, err
	}
	return harness.Launch(ctx, p, records, r, harness.Options{Listen: p.HarnessListen, Advertise: p.HarnessAdvertise})
}

type proc struct {
	cmd   *exec.Cmd
	child harness.Child
	done  chan struct{}
}

type runner struct {
	binary string
	dir    string
	log    *slog.Logger

	mu      sync.Mutex
	procs   map[string]*proc
	deadCPU float64 // CPU seconds of children that have exited
}

func (r *runner) CacheDir(string) string { return filepath.Join(r.dir, "cache") }

func (r *runner) Start(_ context.Context, unit string, c harness.Child) error {
	r.mu.Lock()
	if p := r.procs[unit]; p != nil {
		select {
		case <-p.done:
		default:
			r.mu.Unlock()
			return fmt.Errorf("process: unit %s is already running", unit)
		}
	}
	r.mu.Unlock()
	logf, err := os.OpenFile(filepath.Join(r.dir, "logs", unit+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	cmd := exec.Command(r.binary, c.Args...)
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The child dies with the harness even if the harness is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("process: starting %s: %w", r.binary, err)
	}
	p := &proc{cmd: cmd, child: c, done: make(chan struct{})}
	r.mu.Lock()
	r.procs[unit] = p
	r.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		logf.Close()
		r.mu.Lock()
		if st := cmd.ProcessState; st != nil {
			r.deadCPU += (st.UserTime() + st.SystemTime()).Seconds()
		}
		r.mu.Unlock()
		close(p.done)
	}()
	return nil
}

func (r *runner) get(unit string) (*proc, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.procs[unit]
	if p == nil {
		return nil, fmt.Errorf("%w: %q", driver.ErrUnknownUnit, unit)
	}
	return p, nil
}

func (r *runner) Kill(ctx context.Context, unit string) error {
	p, err := r.get(unit)
	if err != nil {
		return err
	}
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGCONT) // a paused child must be able to die
	if err := p.cmd.Process.Kill(); err != nil {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *runner) Pause(_ context.Context, unit string, on bool) error {
	p, err := r.get(unit)
	if err != nil {
		return err
	}
	sig := syscall.SIGCONT
	if on {
		sig = syscall.SIGSTOP
	}
	return p.cmd.Process.Signal(sig)
}

func (r *runner) Restart(ctx context.Context, unit string) error {
	p, err := r.get(unit)
	if err != nil {
		return err
	}
	if err := r.Kill(ctx, unit); err != nil {
		return err
	}
	return r.Start(ctx, unit, p.child)
}

// Usage sums CPU time of every child (live and exited) and the resident memory of live ones.
func (r *runner) Usage(context.Context) (driver.Usage, error) {
	r.mu.Lock()
	u := driver.Usage{CPUSeconds: r.deadCPU}
	var pids []int
	for _, p := range r.procs {
		select {
		case <-p.done:
		default:
			pids = append(pids, p.cmd.Process.Pid)
		}
	}
	r.mu.Unlock()
	for _, pid := range pids {
		cpu, rss, err := ProcUsage(pid)
		if err != nil {
			continue
		}
		u.CPUSeconds += cpu
		u.MemoryBytes += rss
	}
	return u, nil
}

func (r *runner) Close(ctx context.Context) error {
	r.mu.Lock()
	procs := make([]*proc, 0, len(r.procs))
	for _, p := range r.procs {
		procs = append(procs, p)
	}
	r.mu.Unlock()
	for _, p := range procs {
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	late := false
	for _, p := range procs {
		if !late {
			select {
			case <-p.done:
				continue
			case <-deadline.C:
				late = true
			case <-ctx.Done():
				late = true
			}
		}
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	return nil
}
