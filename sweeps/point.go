package sweeps

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/dsnscale/dsnscale/reports"
)

// Exit codes of a run, as `dsnscale run` gives them.
const (
	ExitPass   = 0
	ExitFail   = 1
	ExitInput  = 2
	ExitBroken = 3
)

// PointRunner runs one point of a sweep: the scenario with the given parameters, its record
// written to dir.
type PointRunner interface {
	RunPoint(ctx context.Context, scenario string, set map[string]string, dir string) Outcome
}

// Outcome is what one point gave.
type Outcome struct {
	// Exit is the run's exit code: ExitPass, ExitFail, ExitInput or ExitBroken.
	Exit int
	// Run is the run's record; nil when it left none.
	Run *reports.Run
	// Err says what went wrong outside the run's own record.
	Err string
}

// ExecRunner runs each point as `dsnscale run SCENARIO --set ... --out DIR`, a child process
// of the dsnscale binary, so that a point is exactly the run a user gets. The child's output
// goes to DIR.log beside the run's directory.
type ExecRunner struct {
	// Binary is the dsnscale executable.
	Binary string
	// Grace is how long an interrupted run gets to abort cleanly (restore faults, write its
	// record) before it is killed; default 2 minutes.
	Grace time.Duration
}

// RunPoint implements PointRunner.
func (r ExecRunner) RunPoint(ctx context.Context, scenario string, set map[string]string, dir string) Outcome {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return Outcome{Exit: ExitBroken, Err: err.Error()}
	}
	log, err := os.Create(dir + ".log")
	if err != nil {
		return Outcome{Exit: ExitBroken, Err: err.Error()}
	}
	defer log.Close()
	args := []string{"run", scenario}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "--set", k+"="+set[k])
	}
	args = append(args, "--out", dir)
	// The child is not tied to ctx directly: an interrupt asks it to abort (SIGTERM, which it
	// handles as Ctrl-C, and which, unlike SIGINT, a shell never starts it ignoring), and only
	// a child that outstays the grace is killed.
	cmd := exec.Command(r.Binary, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return Outcome{Exit: ExitBroken, Err: fmt.Sprintf("start %s: %v", r.Binary, err)}
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var waitErr error
	select {
	case waitErr = <-done:
	case <-ctx.Done():
		_ = cmd.Process.Signal(syscall.SIGTERM)
		grace := r.Grace
		if grace <= 0 {
			grace = 2 * time.Minute
		}
		select {
		case waitErr = <-done:
		case <-time.After(grace):
			_ = cmd.Process.Kill()
			waitErr = <-done
		}
	}
	out := Outcome{Exit: ExitPass}
	var exit *exec.ExitError
	switch {
	case errors.As(waitErr, &exit):
		out.Exit = exit.ExitCode()
		if out.Exit < 0 { // killed by a signal
			out.Exit, out.Err = ExitBroken, exit.Error()
		}
	case waitErr != nil:
		out.Exit, out.Err = ExitBroken, waitErr.Error()
	}
	if run, err := reports.Load(dir); err == nil {
		out.Run = run
	} else if out.Err == "" && out.Exit != ExitInput {
		out.Err = "no run record: " + err.Error()
	}
	if out.Exit != ExitPass && out.Err == "" && out.Run != nil {
		out.Err = out.Run.Error
	}
	if out.Exit == ExitInput && out.Err == "" {
		out.Err = "the run refused its input; see " + dir + ".log"
	}
	return out
}
