package target

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/dsnscale/dsnscale/internal/strictyaml"
)

// ErrHook is matched by a hook that failed or timed out.
var ErrHook = errors.New("target: hook")

// Hook is a command the harness runs to act on a replica of the target's control plane (a
// kubectl or docker command, say). The harness never guesses how: without the hook, the fault
// that needs it is refused.
type Hook struct {
	// Command is the program and its arguments; a program with a slash in its name is relative
	// to the target file, else it is looked up in PATH.
	Command []string `yaml:"command" json:"command"`
	// Timeout bounds the command; it is required.
	Timeout time.Duration `yaml:"timeout" json:"timeoutNs"`
}

// Hooks are the commands for faults on the target's control plane, each optional: cp-kill and
// cp-restart need kill and start, cp-pause needs pause and resume.
type Hooks struct {
	Kill   *Hook `yaml:"kill"`
	Start  *Hook `yaml:"start"`
	Pause  *Hook `yaml:"pause"`
	Resume *Hook `yaml:"resume"`
}

func (h *Hooks) named() []struct {
	name string
	hook *Hook
} {
	return []struct {
		name string
		hook *Hook
	}{{"kill", h.Kill}, {"start", h.Start}, {"pause", h.Pause}, {"resume", h.Resume}}
}

// validate checks each hook's fields and that its program exists and is executable, with
// programs relative to dir.
func (h *Hooks) validate(d *strictyaml.Decoder, dir string) {
	for _, n := range h.named() {
		if n.hook == nil {
			continue
		}
		at := "hooks." + n.name
		if n.hook.Timeout <= 0 {
			d.ErrorAt(at+".timeout", "is required and must be positive, got %s", n.hook.Timeout)
		}
		if len(n.hook.Command) == 0 || n.hook.Command[0] == "" {
			d.ErrorAt(at+".command", "is required: the program and its arguments")
			continue
		}
		prog := n.hook.Command[0]
		if strings.Contains(prog, "/") {
			if !filepath.IsAbs(prog) {
				prog = filepath.Join(dir, prog)
			}
			st, err := os.Stat(prog)
			switch {
			case err != nil:
				d.ErrorAt(at+".command", "%s: %v", prog, err)
				continue
			case st.IsDir() || st.Mode()&0o111 == 0:
				d.ErrorAt(at+".command", "%s is not executable", prog)
				continue
			}
			n.hook.Command[0] = prog
		} else if _, err := exec.LookPath(prog); err != nil {
			d.ErrorAt(at+".command", "%s is not in PATH: %v", prog, err)
		}
	}
	if (h.Kill == nil) != (h.Start == nil) {
		d.ErrorAt("hooks", "kill and start go together: a replica killed must be started again")
	}
	if (h.Pause == nil) != (h.Resume == nil) {
		d.ErrorAt("hooks", "pause and resume go together: a replica paused must be resumed")
	}
}

// Run runs the hook within its timeout; the error says how it failed and the end of what it
// printed.
func (h *Hook) Run(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.Command[0], h.Command[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if err == nil {
		return nil
	}
	if ctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("timed out after %s", h.Timeout)
	}
	text := strings.TrimSpace(out.String())
	if len(text) > 500 {
		text = "..." + text[len(text)-500:]
	}
	if text != "" {
		return fmt.Errorf("%w %s (%s): %w: %s", ErrHook, name, strings.Join(h.Command, " "), err, text)
	}
	return fmt.Errorf("%w %s (%s): %w", ErrHook, name, strings.Join(h.Command, " "), err)
}
