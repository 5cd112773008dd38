// Package sweepcli holds the sweep command of the dsnscale binary. It returns the process exit
// code: 0 every run passed (or the limit search found the limit), 1 an SLO failed, 2 bad input
// or usage, 3 a run broke or the sweep was interrupted.
package sweepcli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dsnscale/dsnscale/internal/cliargs"
	"github.com/dsnscale/dsnscale/internal/strictyaml"
	"github.com/dsnscale/dsnscale/scenarios"
	"github.com/dsnscale/dsnscale/sweeps"
)

// Exit codes.
const (
	ExitOK     = 0
	ExitFailed = 1
	ExitUsage  = 2
	ExitBroken = 3
)

const usage = `usage: dsnscale sweep FILE|NAME|SCENARIO [--axis param=v1,v2,...]... [--repeat N] [--set k=v]...
                      [--plan] [--until-fail [--max V] [--resolution 10%]] [--budget 30m] [--out DIR]

Runs a scenario at each value of one or two of its parameters (--axis dsns=500,1000,2000), each
point an ordinary run in DIR/points/<value>-<k>/, and writes DIR/sweep.json, report.html,
summary.md and junit.xml (DIR defaults to sweeps/<time>-<name>). The report fits each SLO's
value, the control plane's CPU time and peak RSS against the first axis and answers how many
DSNs stay within every SLO, with an interval from the repeats.

A sweep file (kind Sweep, see sweeps/FORMAT.md) or a library sweep (capacity) names the same
things; flags given with it override it. --until-fail doubles the first axis from its first
value until an SLO fails (or --max, or the budget), then bisects to --resolution. --plan prints
every point and the time the sweep takes by its scenario's steps, and runs nothing.`

type args struct {
	target string
	over   sweeps.Overrides
	plan   bool
	out    string
}

func parse(list []string) (args, error) {
	var a args
	for sc := cliargs.New(list); sc.Next(); {
		if !sc.IsFlag() {
			if err := sc.One(&a.target, "sweep"); err != nil {
				return a, err
			}
			continue
		}
		var err error
		var v string
		switch sc.Name() {
		case "axis":
			if v, err = sc.Value(); err == nil {
				a.over.Axes = append(a.over.Axes, v)
			}
		case "set":
			if v, err = sc.Value(); err == nil {
				a.over.Set = append(a.over.Set, v)
			}
		case "repeat":
			if v, err = sc.Value(); err == nil {
				n, perr := strconv.Atoi(strings.TrimSpace(v))
				if perr != nil || n < 1 || n > sweeps.MaxRepeat {
					err = fmt.Errorf("--repeat %q: want a number of runs from 1 to %d", v, sweeps.MaxRepeat)
				}
				a.over.Repeat = n
			}
		case "budget":
			if v, err = sc.Value(); err == nil {
				d, perr := time.ParseDuration(strings.TrimSpace(v))
				if perr != nil || d <= 0 {
					err = fmt.Errorf("--budget %q: want a positive duration such as 30m", v)
				}
				a.over.Budget = d
			}
		case "max":
			if v, err = sc.Value(); err == nil {
				a.over.Max = v
			}
		case "resolution":
			if v, err = sc.Value(); err == nil {
				a.over.Resolution = v
			}
		case "out":
			if v, err = sc.Value(); err == nil {
				a.out = v
			}
		case "until-fail":
			err = sc.NoValue()
			a.over.UntilFail = true
		case "plan":
			err = sc.NoValue()
			a.plan = true
		case "h", "help":
			return a, cliargs.ErrHelp
		default:
			err = fmt.Errorf("unknown flag %s", sc.Arg())
		}
		if err != nil {
			return a, err
		}
	}
	if a.target == "" {
		return a, errors.New("which sweep? a sweep file, a library sweep (capacity) or a scenario with --axis")
	}
	if (a.over.Max != "" || a.over.Resolution != "") && !a.over.UntilFail {
		return a, errors.New("--max and --resolution bound the limit search: add --until-fail")
	}
	return a, nil
}

// load reads the sweep a target names: a sweep file, a library sweep, or a scenario (by
// file or library name) to sweep with the flags.
func load(target string) (*sweeps.Sweep, error) {
	if st, err := os.Stat(target); err == nil && !st.IsDir() {
		if strictyaml.KindOf(target) == sweeps.Kind {
			return sweeps.Load(target)
		}
		return sweeps.FromScenario(target), nil
	}
	if sweeps.IsLibrary(target) {
		return sweeps.Load(target)
	}
	return sweeps.FromScenario(target), nil
}

// Run is `dsnscale sweep`.
func Run(ctx context.Context, list []string, stdout, stderr io.Writer) int {
	a, err := parse(list)
	if err != nil {
		return cliargs.Refuse(err, "sweep", usage, stdout, stderr)
	}
	sw, err := load(a.target)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return ExitUsage
	}
	if err := sw.Apply(a.over); err != nil {
		fmt.Fprintln(stderr, err)
		return ExitUsage
	}
	plan, err := sweeps.Check(sw)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return ExitUsage
	}
	if a.plan {
		if err := sweeps.WritePlan(stdout, plan); err != nil {
			fmt.Fprintf(stderr, "dsnscale sweep: %v\n", err)
			return ExitBroken
		}
		return ExitOK
	}
	dir := a.out
	if dir == "" {
		dir = sweeps.DefaultDir(time.Now(), sw.Metadata.Name)
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		fmt.Fprintf(stderr, "dsnscale sweep: %s is not empty\n", dir)
		return ExitUsage
	}
	bin, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "dsnscale sweep: cannot find this binary to run the points: %v\n", err)
		return ExitBroken
	}
	r, err := sweeps.Run(ctx, plan, sweeps.Options{Dir: dir, Points: sweeps.ExecRunner{Binary: bin}, Progress: stderr, Seed: 1})
	if r == nil {
		fmt.Fprintf(stderr, "dsnscale sweep: %v\n", err)
		if errors.Is(err, sweeps.ErrDirNotEmpty) {
			return ExitUsage
		}
		return ExitBroken
	}
	fmt.Fprintf(stdout, "sweep %s: %s\n", r.ID, r.Status)
	for _, an := range r.Analysis {
		fmt.Fprintf(stdout, "capacity: %s\n", r.CapacityLine(an))
	}
	if r.Search != nil {
		fmt.Fprintf(stdout, "limit search: %s; %s\n", r.Search.Reason, r.SearchLine())
	}
	fmt.Fprintf(stdout, "report: %s\n", filepath.Join(dir, sweeps.ReportFile))
	if err != nil {
		fmt.Fprintf(stderr, "dsnscale sweep: %v\n", err)
		return ExitBroken
	}
	return r.ExitCode()
}

// Validate is `dsnscale validate FILE` for a sweep file: it checks it against its scenario.
func Validate(path string, stdout, stderr io.Writer) int {
	sw, err := sweeps.Load(path)
	if err == nil {
		var plan *sweeps.Plan
		if plan, err = sweeps.Check(sw); err == nil {
			runs := fmt.Sprintf("%d runs", len(plan.Points))
			if plan.Search != nil {
				runs = "a limit search"
			}
			fmt.Fprintf(stdout, "%s: ok (sweep %s of scenario %s: %s)\n", path, sw.Metadata.Name, plan.Scenario.Metadata.Name, runs)
			return ExitOK
		}
	}
	if errors.Is(err, scenarios.ErrNotFound) || errors.Is(err, sweeps.ErrNotFound) {
		fmt.Fprintf(stderr, "dsnscale: %v\n", err)
	} else {
		fmt.Fprintln(stderr, err)
	}
	return ExitUsage
}
