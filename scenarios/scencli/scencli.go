// Package scencli holds the scenario commands of the dsnscale binary: run, validate and list.
// Each is a function returning the process exit code: 0 pass (or ok), 1 an SLO failed, 2 bad
// input or usage, 3 the run broke or was aborted.
package scencli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/dsnscale/dsnscale/internal/cliargs"
	"github.com/dsnscale/dsnscale/reports"
	"github.com/dsnscale/dsnscale/scenarios"
	"github.com/dsnscale/dsnscale/scenarios/runner"
)

// Exit codes.
const (
	ExitOK     = runner.ExitPass
	ExitFailed = runner.ExitFail
	ExitUsage  = runner.ExitInput
	ExitBroken = runner.ExitBroken
)

const runUsage = `usage: dsnscale run NAME|FILE [--set name=value]... [--out DIR] [--plan] [--repeat N] [--target FILE]
       dsnscale run --parallel N NAME|FILE... [--set name=value]... [--out DIR] [--oversubscribe]

Runs a scenario from the library (see dsnscale list) or a file, and writes its report to
runs/<id>/ (or DIR). --plan prints what the run would do and does nothing. --repeat N runs it
N times into one group directory (runs/<time>-<name>-xN, or DIR) with a group.json, for
dsnscale compare. --target FILE runs it against the external control plane a target file
(kind: Target, see docs/TARGETS.md) describes, instead of the scenario's own.

--parallel N runs N test beds at once, bed i running the i-th scenario named (cycling through
them: one name gives N beds of it), each a run of its own with its own control plane, in
runs/<time>-parallel-xN/bed-<i>-<name> (or under DIR), with parallel.md and parallel.json
listing each bed's run directory, verdict and figures; the exit code is the worst bed's. Beds
that would need more memory, descriptors or CPUs than this machine has are refused (exit 2)
unless --oversubscribe.`

// runArgs are the parsed arguments of run.
type runArgs struct {
	target string
	set    []string
	out    string
	plan   bool
	repeat int
	// targetFile is a target file (--target) that replaces the scenario's control plane.
	targetFile string
	// parallel is the number of test beds run at once (--parallel); targets are their
	// scenarios, cycled through.
	parallel      int
	targets       []string
	oversubscribe bool
}

func parseRunArgs(args []string) (runArgs, error) {
	var ra runArgs
	for sc := cliargs.New(args); sc.Next(); {
		if !sc.IsFlag() {
			ra.targets = append(ra.targets, sc.Arg())
			continue
		}
		switch sc.Name() {
		case "set":
			v, err := sc.Value()
			if err != nil {
				return ra, err
			}
			ra.set = append(ra.set, v)
		case "out":
			v, err := sc.Value()
			if err != nil {
				return ra, err
			}
			ra.out = v
		case "repeat":
			v, err := sc.Value()
			if err != nil {
				return ra, err
			}
			if ra.repeat, err = parseRepeat(v); err != nil {
				return ra, err
			}
		case "target":
			v, err := sc.Value()
			if err != nil {
				return ra, err
			}
			ra.targetFile = v
		case "plan":
			if err := sc.NoValue(); err != nil {
				return ra, err
			}
			ra.plan = true
		case "parallel":
			v, err := sc.Value()
			if err != nil {
				return ra, err
			}
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 1 || n > MaxParallel {
				return ra, fmt.Errorf("--parallel %q: want a number of beds from 1 to %d", v, MaxParallel)
			}
			ra.parallel = n
		case "oversubscribe":
			if err := sc.NoValue(); err != nil {
				return ra, err
			}
			ra.oversubscribe = true
		case "h", "help":
			return ra, cliargs.ErrHelp
		default:
			return ra, fmt.Errorf("unknown flag %s", sc.Arg())
		}
	}
	switch {
	case len(ra.targets) == 0:
		return ra, errors.New("which scenario? name one from dsnscale list, or a file")
	case ra.parallel == 0 && len(ra.targets) > 1:
		return ra, fmt.Errorf("unexpected argument %q: one scenario at a time (--parallel N runs several at once)", ra.targets[1])
	case ra.parallel == 0 && ra.oversubscribe:
		return ra, errors.New("--oversubscribe goes with --parallel N")
	case ra.parallel > 0 && (ra.repeat > 0 || ra.plan || ra.targetFile != ""):
		return ra, errors.New("--parallel does not go with --repeat, --plan or --target (each bed has its own control plane)")
	case ra.parallel > 0 && len(ra.targets) > ra.parallel:
		return ra, fmt.Errorf("%d scenarios for --parallel %d: name at most one scenario per bed", len(ra.targets), ra.parallel)
	}
	ra.target = ra.targets[0]
	return ra, nil
}

// Run is `dsnscale run NAME|FILE [--set k=v]... [--out DIR] [--plan] [--repeat N]`.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	ra, err := parseRunArgs(args)
	if err != nil {
		return cliargs.Refuse(err, "run", runUsage, stdout, stderr)
	}
	if ra.parallel > 0 {
		return runParallel(ctx, ra, stdout, stderr)
	}
	set, err := scenarios.ParseSet(ra.set)
	if err != nil {
		fmt.Fprintf(stderr, "dsnscale run: %v\n", err)
		return ExitUsage
	}
	s, err := scenarios.Load(ra.target, set)
	if err != nil {
		printLoadError(stderr, err)
		return ExitUsage
	}
	if ra.targetFile != "" {
		if err := scenarios.UseTarget(s, ra.targetFile); err != nil {
			fmt.Fprintf(stderr, "dsnscale run: --target: %v\n", err)
			return ExitUsage
		}
	}
	if ra.plan {
		if err := scenarios.WritePlan(stdout, s); err != nil {
			fmt.Fprintf(stderr, "dsnscale run: %v\n", err)
			return ExitBroken
		}
		if ra.repeat > 0 {
			fmt.Fprintf(stdout, "\nrepeated %d times into one group directory\n", ra.repeat)
		}
		return ExitOK
	}
	if ra.repeat > 0 {
		return runRepeated(ctx, s, ra, stdout, stderr)
	}
	out, err := runner.Run(ctx, s, runner.Options{Dir: ra.out, Progress: stdout, Terminal: isTerminal(stdout)})
	if out == nil {
		fmt.Fprintf(stderr, "dsnscale run: %v\n", err)
		if errors.Is(err, scenarios.ErrInvalid) {
			return ExitUsage
		}
		return ExitBroken
	}
	printOutcome(stdout, out)
	if err != nil {
		fmt.Fprintf(stderr, "dsnscale run: %v\n", err)
		return ExitBroken
	}
	return out.ExitCode()
}

func printLoadError(w io.Writer, err error) {
	if errors.Is(err, scenarios.ErrNotFound) {
		fmt.Fprintf(w, "dsnscale: %v\n", err)
		return
	}
	// Each problem is on its own line, "file:line: path: message".
	fmt.Fprintln(w, err)
}

func printOutcome(w io.Writer, out *runner.Outcome) {
	run := out.Run
	fmt.Fprintf(w, "\n%s: %s in %s\n", run.ID, strings.ToUpper(string(run.Result)), run.Duration().Round(1e8))
	if run.Error != "" {
		fmt.Fprintf(w, "  %s\n", run.Error)
	}
	if lines := reports.AnomalyLines(run); len(lines) > 0 {
		fmt.Fprintf(w, "  anomalies (%d):\n", len(lines))
		for _, l := range lines {
			fmt.Fprintf(w, "    %s\n", l)
		}
	}
	for _, st := range run.Steps {
		if st.Error != "" && !strings.Contains(run.Error, st.Error) {
			fmt.Fprintf(w, "  step %s: %s\n", st.Name, st.Error)
		}
	}
	for _, v := range run.SLOs {
		mark := "pass"
		if !v.Pass {
			mark = "FAIL"
		}
		obs := "missing"
		if v.Reason != "" {
			obs += ": " + v.Reason
		}
		if v.Observed != nil {
			obs = reports.FormatObserved(*v.Observed, v.Threshold, v.Unit)
		}
		fmt.Fprintf(w, "  %s  %s  (observed %s)\n", mark, v.Name, obs)
	}
	fmt.Fprintf(w, "report: %s\n", filepath.Join(out.Dir, reports.ReportFile))
}

// isTerminal reports whether w is a character device (a terminal) rather than a file or pipe.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Validate is `dsnscale validate FILE|NAME`: it checks a scenario and prints its problems (each
// with file:line and field path) to standard error, or "ok" to standard output.
func Validate(path string) int { return ValidateTo(path, nil, os.Stdout, os.Stderr) }

// ValidateTo checks a scenario with the --set values set, writing to the given streams.
func ValidateTo(path string, set []string, stdout, stderr io.Writer) int {
	values, err := scenarios.ParseSet(set)
	if err != nil {
		fmt.Fprintf(stderr, "dsnscale validate: %v\n", err)
		return ExitUsage
	}
	s, err := scenarios.Load(path, values)
	if err != nil {
		printLoadError(stderr, err)
		return ExitUsage
	}
	fmt.Fprintf(stdout, "%s: ok (scenario %s, %d steps, %d SLOs)\n", s.Source, s.Metadata.Name, len(s.Steps), len(s.SLOs))
	return ExitOK
}

// List is `dsnscale list`: the library scenarios with one-line descriptions.
func List(stdout io.Writer) int {
	entries, err := scenarios.Library()
	if err != nil {
		fmt.Fprintf(stdout, "dsnscale list: %v\n", err)
		return ExitBroken
	}
	width := 0
	for _, e := range entries {
		width = max(width, len(e.Name))
	}
	for _, e := range entries {
		fmt.Fprintf(stdout, "%-*s  %s\n", width, e.Name, e.Description)
	}
	return ExitOK
}
