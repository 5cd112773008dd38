// Package cpproc runs the reference control plane as a child process (`dsnscale cp serve`) and
// connects to it the way its users do: it reads the addresses, the CA file and the admin
// password file cp serve prints, trusts the CA and logs in. Benchmarks, scenarios (through
// package cptarget) and tests all run it this way.
//
// A control plane that exits while starting is reported at once, with the last lines of its log;
// a context that ends while it starts (Ctrl-C) ends the wait at once and kills it.
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
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/client"
)

// ErrNotStarted is returned when the control plane does not come up.
var ErrNotStarted = errors.New("control plane did not start")

// LogFile is the name of the log under Options.Dir.
const LogFile = "cp.log"

// tailLines is how many lines of the log an error quotes.
const tailLines = 5

// Options say how to run the control plane. Dir is required: the data lives in Dir/data (or
// DataDir) and the log in Dir/cp.log, appended to by every start.
type Options struct {
	Binary string
	Dir    string
	// DataDir is cp serve's data directory (default Dir/data). A start on the data of an earlier
	// one finds its intent, its CA and its admin password again.
	DataDir string
	// Listen and NATSListen are the API's and the bus's addresses (default 127.0.0.1:0, a free
	// port). A restart that must be found again by its DSNs passes the addresses the first start
	// got (see Process.APIAddr and NATSAddr).
	Listen, NATSListen string
	// Args are extra `cp serve` flags.
	Args []string
	// UserAgent names the API client (default "dsnscale").
	UserAgent string
	// StartTimeout bounds the wait for the addresses, and then the wait for readiness (default
	// 30s each).
	StartTimeout time.Duration
	// Insecure runs it with --insecure: plain HTTP and NATS, no credentials.
	Insecure bool
}

func (o Options) withDefaults() Options {
	if o.DataDir == "" {
		o.DataDir = filepath.Join(o.Dir, "data")
	}
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	if o.NATSListen == "" {
		o.NATSListen = "127.0.0.1:0"
	}
	if o.UserAgent == "" {
		o.UserAgent = "dsnscale"
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 30 * time.Second
	}
	return o
}

// Process is a running control plane.
type Process struct {
	cmd     *exec.Cmd
	done    chan struct{}
	exitErr error // set before done closes
	apiURL  string
	natsURL string
	caPEM   []byte
	api     *client.Client
	logPath string
	adminPW string
	// nodeName and clusterAddr are the replica's name and route address in its cluster
	// (StartCluster).
	nodeName, clusterAddr string
}

var line = regexp.MustCompile(`^(api|nats|ca|admin-password) (\S+)$`)

// printed is what cp serve prints on stdout once it listens.
type printed struct {
	api, nats, caFile, pwFile string
}

// Start runs the control plane and returns once its API answers ready with the admin logged in.
// A control plane that exits first is an ErrNotStarted quoting the end of its log; when ctx
// ends first the process is killed and ctx's error returned.
func Start(ctx context.Context, o Options) (*Process, error) {
	if o.Binary == "" || o.Dir == "" {
		return nil, fmt.Errorf("%w: a binary and a directory are required", ErrNotStarted)
	}
	o = o.withDefaults()
	if err := os.MkdirAll(o.Dir, 0o750); err != nil {
		return nil, err
	}
	logPath := filepath.Join(o.Dir, LogFile)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	args := append([]string{"cp", "serve", "--data", o.DataDir, "--listen", o.Listen, "--nats-listen", o.NATSListen}, o.Args...)
	if o.Insecure {
		args = append(args, "--insecure")
	}
	cmd := exec.Command(o.Binary, args...)
	cmd.Stderr = logf
	// The control plane must not outlive its parent, even when the parent is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// A pipe of our own rather than cmd.StdoutPipe: Wait would close that one as the process
	// exits, and the last lines it printed could be lost.
	stdout, w, err := os.Pipe()
	if err != nil {
		_ = logf.Close()
		return nil, err
	}
	cmd.Stdout = w
	err = cmd.Start()
	_ = w.Close()
	if err != nil {
		_ = stdout.Close()
		_ = logf.Close()
		return nil, &startError{msg: fmt.Sprintf("start %s: %v", o.Binary, err), cause: err}
	}
	p := &Process{cmd: cmd, done: make(chan struct{}), logPath: logPath}
	var copied sync.WaitGroup
	copied.Add(1)
	lines := make(chan printed, 1)
	go func() {
		defer copied.Done()
		p.readStdout(stdout, logf, o.Insecure, lines)
		_ = stdout.Close()
	}()
	go func() {
		err := cmd.Wait()
		copied.Wait() // the last lines are in the log before anyone is told of the exit
		_ = logf.Close()
		p.exitErr = err
		close(p.done)
	}()

	fail := func(err error) (*Process, error) {
		p.Kill()
		if ctx.Err() != nil {
			return nil, &startError{msg: fmt.Sprintf("start %s: %v", o.Binary, ctx.Err()), cause: ctx.Err()}
		}
		return nil, &startError{msg: fmt.Sprintf("start %s: %v (see %s)%s", o.Binary, err, logPath, p.LogTail(tailLines)), cause: err}
	}
	timeout := time.NewTimer(o.StartTimeout)
	defer timeout.Stop()
	var pr printed
	select {
	case pr = <-lines:
	case <-p.done:
		return fail(p.exitError())
	case <-timeout.C:
		return fail(fmt.Errorf("no addresses printed in %s", o.StartTimeout))
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	p.apiURL, p.natsURL = pr.api, pr.nats
	timeout.Reset(o.StartTimeout) // readiness gets a bound of its own
	var creds []client.Option
	if !o.Insecure {
		if p.caPEM, err = client.ReadCAFile(pr.caFile); err != nil {
			return fail(err)
		}
		if p.adminPW, err = client.ReadPasswordFile(pr.pwFile); err != nil {
			return fail(err)
		}
		creds = append(creds, client.WithCredentials(AdminUser, p.adminPW))
	}
	hc, err := client.HTTPClient(p.caPEM, 30*time.Second)
	if err != nil {
		return fail(err)
	}
	p.api = client.New(p.apiURL, hc, append(creds, client.WithUserAgent(o.UserAgent))...)
	for {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := p.api.Ready(rctx)
		cancel()
		if err == nil {
			return p, nil
		}
		select {
		case <-p.done:
			return fail(p.exitError())
		case <-timeout.C:
			return fail(fmt.Errorf("not ready in %s: %w", o.StartTimeout, err))
		case <-ctx.Done():
			return fail(ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// readStdout copies cp serve's stdout to the log and hands over the addresses and credential
// files it prints, once it has printed the last of them.
func (p *Process) readStdout(stdout io.Reader, log io.Writer, insecure bool, out chan<- printed) {
	var pr printed
	sent := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		_, _ = fmt.Fprintln(log, sc.Text())
		m := line.FindStringSubmatch(sc.Text())
		if m == nil || sent {
			continue
		}
		switch m[1] {
		case "api":
			pr.api = m[2]
		case "nats":
			pr.nats = m[2]
		case "ca":
			pr.caFile = m[2]
		case "admin-password":
			pr.pwFile = m[2]
		}
		// admin-password is the last line cp serve prints; nats the last an insecure one prints.
		if m[1] == "admin-password" || (insecure && m[1] == "nats") {
			out <- pr
			sent = true
		}
	}
	_, _ = io.Copy(log, stdout)
}

// startError is why a control plane did not start. It matches ErrNotStarted and its cause (a
// context's error, say).
type startError struct {
	msg   string
	cause error
}

func (e *startError) Error() string { return e.msg }

func (e *startError) Unwrap() []error { return []error{ErrNotStarted, e.cause} }

// exitError describes how the process ended.
func (p *Process) exitError() error {
	if p.exitErr != nil {
		return fmt.Errorf("it exited: %w", p.exitErr)
	}
	return errors.New("it exited (status 0)")
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

// APIAddr and NATSAddr are the host:port the API and the bus listen on, for a restart on the
// same addresses.
func (p *Process) APIAddr() string  { return hostPort(p.apiURL) }
func (p *Process) NATSAddr() string { return hostPort(p.natsURL) }

func hostPort(u string) string {
	_, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	host, _, _ := strings.Cut(rest, "/")
	return host
}

// CAPEM is the control plane's CA certificate.
func (p *Process) CAPEM() []byte { return p.caPEM }

// API is a client logged in as the first admin.
func (p *Process) API() *client.Client { return p.api }

// PID is the process id, for signals of the caller's own (SIGSTOP, SIGCONT) and for resource
// sampling.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// LogPath is the file the control plane logs to.
func (p *Process) LogPath() string { return p.logPath }

// LogTail is "; last log lines: a | b | c" with the last n lines of the log, or "" for an empty
// log: what a report of a crash quotes.
func (p *Process) LogTail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil || len(strings.TrimSpace(string(b))) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "; last log lines: " + strings.Join(lines, " | ")
}

// Done is closed when the process has ended (and its log is complete).
func (p *Process) Done() <-chan struct{} { return p.done }

// ExitErr is how the process ended (nil for status 0); it is valid once Done is closed.
func (p *Process) ExitErr() error {
	<-p.done
	return p.exitErr
}

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
func (p *Process) Stop() { _ = p.Shutdown(context.Background(), 5*time.Second) }

// Shutdown asks the control plane to shut down (SIGTERM, after a SIGCONT in case it is frozen)
// and waits up to grace (or until ctx ends) before it kills it; it returns an error when it had
// to.
func (p *Process) Shutdown(ctx context.Context, grace time.Duration) error {
	_ = p.cmd.Process.Signal(syscall.SIGCONT) // a frozen (SIGSTOP) control plane must be able to stop
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-t.C:
	case <-ctx.Done():
	}
	p.Kill()
	return fmt.Errorf("control plane did not stop on SIGTERM within %s; killed", grace)
}

// Kill ends the process at once (SIGKILL) and waits for it.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}
