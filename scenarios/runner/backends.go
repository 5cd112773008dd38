package runner

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/dsnscale/dsnscale/faults"
	"github.com/dsnscale/dsnscale/scenarios"
)

// backendReady bounds the wait for a backend process to listen.
const backendReady = time.Minute

// backendProc is a backend the harness runs as a process: started before the control plane,
// stopped after it, killed, frozen and started again by backend faults.
type backendProc struct {
	name string
	spec scenarios.BackendProcess
	addr string // host:port it listens on
	log  string // its output, in the run directory

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	paused bool
}

// backendSet holds the backend processes of a run; it implements faults.Backends.
type backendSet map[string]*backendProc

func (s backendSet) Backend(name string) (faults.BackendProcess, bool) {
	b, ok := s[name]
	return b, ok
}

func newBackendProc(name string, spec scenarios.BackendProcess, dir string) (*backendProc, error) {
	u, err := url.Parse(spec.URL)
	if err != nil || u.Port() == "" {
		return nil, fmt.Errorf("backend %s: URL %q has no host:port", name, spec.URL)
	}
	return &backendProc{name: name, spec: spec, addr: u.Host, log: filepath.Join(dir, "backend-"+name+".log")}, nil
}

// Start starts the process and waits until it accepts connections; a process that exits first
// is reported at once.
func (b *backendProc) Start(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd != nil {
		return nil
	}
	out, err := os.OpenFile(b.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(b.spec.Command[0], b.spec.Command[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = out.Close()
		return fmt.Errorf("backend %s: %w", b.name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		_ = out.Close()
		close(exited)
	}()
	b.cmd, b.exited, b.paused = cmd, exited, false
	deadline := time.Now().Add(backendReady)
	for {
		c, err := net.DialTimeout("tcp", b.addr, time.Second)
		if err == nil {
			_ = c.Close()
			return nil
		}
		select {
		case <-exited:
			b.cmd = nil
			return fmt.Errorf("backend %s exited while starting (see %s)", b.name, b.log)
		case <-ctx.Done():
			b.killLocked()
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			b.killLocked()
			return fmt.Errorf("backend %s: not listening on %s after %s (see %s)", b.name, b.addr, backendReady, b.log)
		}
	}
}

// Kill stops the process abruptly and waits until it has exited.
func (b *backendProc) Kill(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return errors.New("backend " + b.name + " is not running")
	}
	b.killLocked()
	return nil
}

func (b *backendProc) killLocked() {
	_ = b.cmd.Process.Signal(syscall.SIGCONT)
	_ = b.cmd.Process.Kill()
	<-b.exited
	b.cmd, b.paused = nil, false
}

// Pause freezes the process (SIGSTOP) or thaws it (SIGCONT).
func (b *backendProc) Pause(_ context.Context, on bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return errors.New("backend " + b.name + " is not running")
	}
	sig := syscall.SIGCONT
	if on {
		sig = syscall.SIGSTOP
	}
	if err := b.cmd.Process.Signal(sig); err != nil {
		return err
	}
	b.paused = on
	return nil
}

// Stop thaws the process, asks it to end (SIGTERM) and kills it after grace.
func (b *backendProc) Stop(grace time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Signal(syscall.SIGCONT)
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.exited:
		b.cmd = nil
	case <-time.After(grace):
		b.killLocked()
	}
}

// Running reports whether the process runs (frozen or not).
func (b *backendProc) Running() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cmd != nil
}
