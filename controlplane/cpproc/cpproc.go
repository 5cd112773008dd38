// Package cpproc runs the reference control plane as a child process (`dsnscale cp serve`) and
// connects to it the way its users do: it reads the addresses, the CA file and the admin
// password file cp serve prints, trusts the CA and logs in.
package cpproc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/client"
)

// ErrNotStarted is returned when the control plane does not come up.
var ErrNotStarted = errors.New("control plane did not start")

// Options say how to run the control plane. Dir is required: the data lives in Dir/data and
// the log in Dir/cp.log.
type Options struct {
	Binary string
	Dir    string
	// Args are extra `cp serve` flags.
	Args []string
	// UserAgent names the API client (default "dsnscale").
	UserAgent string
	// StartTimeout bounds the wait for the addresses and for readiness (default 30s).
	StartTimeout time.Duration
	// Insecure runs it with --insecure: plain HTTP and NATS, no credentials.
	Insecure bool
}

// Process is a running control plane.
type Process struct {
	cmd     *exec.Cmd
	done    chan struct{}
	apiURL  string
	natsURL string
	caPEM   []byte
	api     *client.Client
	logPath string
	adminPW string
}

var line = regexp.MustCompile(`^(api|nats|ca|admin-password) (\S+)$`)

// Start runs the control plane and returns once its API answers ready with the admin logged in.
func Start(ctx context.Context, o Options) (*Process, error) {
	if o.Binary == "" || o.Dir == "" {
		return nil, fmt.Errorf("%w: a binary and a directory are required", ErrNotStarted)
	}
	if o.UserAgent == "" {
		o.UserAgent = "dsnscale"
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 30 * time.Second
	}
	if err := os.MkdirAll(o.Dir, 0o750); err != nil {
		return nil, err
	}
	logPath := filepath.Join(o.Dir, "cp.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	args := append([]string{"cp", "serve", "--data", filepath.Join(o.Dir, "data"),
		"--listen", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0"}, o.Args...)
	if o.Insecure {
		args = append(args, "--insecure")
	}
	cmd := exec.Command(o.Binary, args...)
	cmd.Stderr = logf
	// The control plane must not outlive its parent, even when the parent is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("%w: %s: %w", ErrNotStarted, o.Binary, err)
	}
	p := &Process{cmd: cmd, done: make(chan struct{}), logPath: logPath}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()

	var caFile, pwFile string
	printed := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			m := line.FindStringSubmatch(sc.Text())
			if m == nil {
				continue
			}
			switch m[1] {
			case "api":
				p.apiURL = m[2]
			case "nats":
				p.natsURL = m[2]
				if o.Insecure {
					close(printed) // the last line an insecure cp serve prints
				}
			case "ca":
				caFile = m[2]
			case "admin-password":
				pwFile = m[2]
				close(printed) // the last line cp serve prints
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	fail := func(format string, a ...any) (*Process, error) {
		p.Kill()
		return nil, fmt.Errorf("%w: %s (see %s)", ErrNotStarted, fmt.Sprintf(format, a...), logPath)
	}
	select {
	case <-printed:
	case <-p.done:
		return fail("it exited")
	case <-time.After(o.StartTimeout):
		return fail("no addresses printed in %s", o.StartTimeout)
	case <-ctx.Done():
		return fail("%v", ctx.Err())
	}
	var creds []client.Option
	if !o.Insecure {
		if p.caPEM, err = client.ReadCAFile(caFile); err != nil {
			return fail("%v", err)
		}
		if p.adminPW, err = client.ReadPasswordFile(pwFile); err != nil {
			return fail("%v", err)
		}
		creds = append(creds, client.WithCredentials(AdminUser, p.adminPW))
	}
	hc, err := client.HTTPClient(p.caPEM, 30*time.Second)
	if err != nil {
		return fail("%v", err)
	}
	p.api = client.New(p.apiURL, hc, append(creds, client.WithUserAgent(o.UserAgent))...)
	deadline := time.Now().Add(o.StartTimeout)
	for p.api.Ready(ctx) != nil {
		if time.Now().After(deadline) {
			return fail("not ready in %s", o.StartTimeout)
		}
		select {
		case <-p.done:
			return fail("it exited")
		case <-time.After(20 * time.Millisecond):
		}
	}
	return p, nil
}

// AdminUser is the first admin's name, whose password cp serve writes out.
const AdminUser = "admin"

// AdminCredentials are the first admin's name and password (empty when insecure).
func (p *Process) AdminCredentials() (user, password string) {
	if p.adminPW == "" {
		return "", ""
	}
	return AdminUser, p.adminPW
}

// APIURL is the northbound API's base URL.
func (p *Process) APIURL() string { return p.apiURL }

// NATSURL is where DSNs connect.
func (p *Process) NATSURL() string { return p.natsURL }

// CAPEM is the control plane's CA certificate.
func (p *Process) CAPEM() []byte { return p.caPEM }

// API is a client logged in as the first admin.
func (p *Process) API() *client.Client { return p.api }

// PID is the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// LogPath is the file the control plane logs to.
func (p *Process) LogPath() string { return p.logPath }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop asks the control plane to shut down (SIGTERM) and kills it after 5 s.
func (p *Process) Stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.Kill()
	}
}

// Kill ends the process at once (SIGKILL) and waits for it.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}
