package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/dsnscale/dsnscale/drill"
	"github.com/dsnscale/dsnscale/faults"
	"github.com/dsnscale/dsnscale/scenarios"
	"github.com/dsnscale/dsnscale/scenarios/runner"
	"github.com/dsnscale/dsnscale/target"
)

func init() {
	register("drill", "run a drill against a target with guard rails (drill FILE --target FILE [--yes])", runDrill)
}

const drillUsage = `usage: dsnscale drill FILE|NAME --target FILE [--yes] [--out DIR]

Runs a drill (kind: Drill: a scenario with limits on what its faults may hit; NAME a library
drill such as staging-basic) against the control plane a target file describes. Before
anything starts it checks every fault against the limits, prints the plan, tries the target
(as dsnscale target check does) and asks for a confirmation: the drill's name typed on a
terminal, or --yes. While it runs, its abort conditions (abortWhen) are watched; after it, a
restore check says whether every fault was recovered and the target is back to its
convergence before the drill. It writes drill.json, the journal of what was decided and when,
beside the run's report. Exit 0 pass, 1 an SLO failed or an abort condition ended it, 2 bad
input or refused, 3 the target is unreachable, the run broke or the target is not restored.`

func runDrill(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("drill", flag.ContinueOnError)
	fs.SetOutput(stderr)
	targetFile := fs.String("target", "", "target file (kind: Target) to run the drill against (required)")
	yes := fs.Bool("yes", false, "start without asking (required when not on a terminal)")
	out := fs.String("out", "", "run directory (default runs/<id>)")
	var file string
	rest := args
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		file, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return exitUsage
	}
	if file == "" && fs.NArg() == 1 {
		file = fs.Arg(0)
	} else if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "dsnscale drill: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	if file == "" || *targetFile == "" {
		fmt.Fprintln(stderr, drillUsage)
		return exitUsage
	}
	refuse := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "dsnscale drill: refused: "+format+"\n", a...)
		return exitUsage
	}
	d, err := drill.Load(file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	s, err := d.LoadScenario()
	if err != nil {
		return refuse("scenario %s: %v", d.Scenario, err)
	}
	tf, err := target.Load(*targetFile)
	if err != nil {
		return refuse("--target: %v", err)
	}
	if err := scenarios.UseTarget(s, *targetFile); err != nil {
		return refuse("--target: %v", err)
	}
	if err := d.Limits.CheckLimits(s); err != nil {
		return refuse("%v", err)
	}

	by := "unknown"
	if u, err := user.Current(); err == nil {
		by = u.Username
	}
	j := drill.NewJournal(d, file, tf.Name, by, time.Now)
	l := d.Limits
	fmt.Fprintf(stdout, "drill %s against target %s (%s)\n", d.Metadata.Name, tf.Name, tf.APIURL)
	fmt.Fprintf(stdout, "limits: at most %d DSNs and %.1f%% of the fleet per fault, faults of at most %s, kinds %s\n",
		l.MaxDSNs, 100*float64(l.MaxShare), l.MaxFaultDuration, strings.Join(l.AllowKinds, ", "))
	for _, h := range []struct {
		name string
		hook *target.Hook
	}{{"kill", tf.Hooks.Kill}, {"start", tf.Hooks.Start}, {"pause", tf.Hooks.Pause}, {"resume", tf.Hooks.Resume}} {
		if h.hook != nil {
			fmt.Fprintf(stdout, "hook %s: %s (timeout %s)\n", h.name, strings.Join(h.hook.Command, " "), h.hook.Timeout)
		}
	}
	if err := scenarios.WritePlan(stdout, s); err != nil {
		fmt.Fprintf(stderr, "dsnscale drill: %v\n", err)
		return exitBroken
	}
	fmt.Fprintln(stdout, "to stop: Ctrl-C (SIGINT or SIGTERM); every fault injected is recovered and the fleet stopped before it exits")
	j.Add(drill.EntryPlanned, fmt.Sprintf("scenario %s, %d DSNs, %d steps", s.Metadata.Name, s.Fleet.Size, len(s.Steps)))

	res := target.Check(ctx, &tf.Target, target.CheckOptions{})
	if failed := res.Failed(); failed != nil {
		res.Write(stdout)
		fmt.Fprintf(stderr, "dsnscale drill: target %s: %s: %s\n", tf.Name, failed.Name, failed.Detail)
		if errors.Is(failed.Err, target.ErrCredentials) {
			return exitUsage
		}
		return exitBroken
	}
	j.Add(drill.EntryPreflight, "every piece of the target works")

	switch {
	case *yes:
		j.Add(drill.EntryConfirmed, "--yes")
	case isTerminalFile(os.Stdin) && isTerminalFile(stdout):
		fmt.Fprintf(stdout, "type the drill's name (%s) to start: ", d.Metadata.Name)
		line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
		if strings.TrimSpace(line) != d.Metadata.Name {
			return refuse("not confirmed")
		}
		j.Add(drill.EntryConfirmed, "typed on a terminal")
	default:
		return refuse("not on a terminal: give --yes to start the drill")
	}

	api, err := tf.Target.Client(ctx, 30*time.Second)
	if err == nil {
		var base drill.Baseline
		if base, err = drill.TakeBaseline(ctx, api); err == nil {
			j.Add(drill.EntryBaseline, base.String())
			return runDrillRun(ctx, d, s, j, api, base, *out, stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "dsnscale drill: target %s: the convergence before the drill: %v\n", tf.Name, err)
	return exitBroken
}

// runDrillRun runs the confirmed drill with its abort conditions watched, then checks that the
// target is restored, and writes the journal.
func runDrillRun(ctx context.Context, d *drill.File, s *scenarios.Scenario, j *drill.Journal, api drill.ConvergenceAPI, base drill.Baseline, out string, stdout, stderr io.Writer) int {
	runCtx, abort := context.WithCancelCause(ctx)
	defer abort(nil)
	w := drill.NewWatcher(d.AbortWhen)
	w.Breach = func(i int, c drill.Condition, at time.Time, v float64) {
		j.Add(drill.EntryBreach, fmt.Sprintf("abortWhen[%d] %s: %.1f%% at %s", i, c, 100*v, at.UTC().Format(time.RFC3339)))
	}
	var trip *drill.Trip
	watch := func(smp runner.Sample) {
		if t := w.Observe(smp); t != nil {
			trip = t
			j.Add(drill.EntryAborted, t.Error())
			fmt.Fprintf(stdout, "%v: recovering every fault and stopping the fleet\n", t)
			abort(t)
		}
	}
	for i, c := range d.AbortWhen {
		fmt.Fprintf(stdout, "abort when: [%d] %s\n", i, c)
	}

	j.Add(drill.EntryStarted, "")
	outcome, err := runner.Run(runCtx, s, runner.Options{Dir: out, Progress: stdout, Terminal: isTerminalFile(stdout), Watch: watch})
	if outcome == nil {
		fmt.Fprintf(stderr, "dsnscale drill: %v\n", err)
		return exitBroken
	}
	why := ""
	if outcome.Run.Error != "" {
		why += ": " + outcome.Run.Error
	}
	if err != nil {
		why += ": " + err.Error()
	}
	detail := string(outcome.Run.Result) + why
	j.Add(drill.EntryEnded, detail)

	// The restore check: what the run could not undo, faults never recovered, and the target's
	// convergence against its baseline.
	injected := 0
	for _, f := range outcome.Run.Faults {
		if f.Error != "" {
			msg := fmt.Sprintf("fault %s on %s (step %s): %s", f.Kind, f.Target, f.Step, f.Error)
			j.Add(drill.EntryFaultFailed, msg)
			fmt.Fprintln(stdout, msg)
		}
		if !f.End.IsZero() {
			injected++
		}
	}
	left := append(outcome.Left, drill.Unrecovered(outcome.Run)...)
	if len(left) == 0 {
		j.Add(drill.EntryRecovered, fmt.Sprintf("%d faults injected, every one recovered; the fleet stopped; no proxy left", injected))
	}
	left = append(left, drill.CheckConvergence(context.WithoutCancel(ctx), api, base, d.RestoreTimeout, faults.SystemClock{})...)
	if len(left) == 0 {
		j.Add(drill.EntryRestored, "the target is back to its baseline ("+base.String()+")")
	} else {
		j.Add(drill.EntryNotRestored, strings.Join(left, "; "))
	}
	if werr := j.Write(outcome.Dir); werr != nil {
		fmt.Fprintf(stderr, "dsnscale drill: journal: %v\n", werr)
	}
	result := strings.ToUpper(string(outcome.Run.Result)) + why
	if trip != nil {
		result = "ABORTED: " + trip.Error()
	}
	fmt.Fprintf(stdout, "\ndrill %s: %s\n", d.Metadata.Name, result)
	if len(left) == 0 {
		fmt.Fprintf(stdout, "restore check: passed: every fault recovered, no proxy left, the target back to %s\n", base)
	} else {
		fmt.Fprintf(stdout, "restore check: FAILED: left after the drill:\n")
		for _, l := range left {
			fmt.Fprintf(stdout, "  - %s\n", l)
		}
	}
	fmt.Fprintf(stdout, "report: %s\njournal: %s/%s\n", outcome.Dir+"/report.html", outcome.Dir, drill.JournalFile)
	switch {
	case len(left) > 0:
		fmt.Fprintf(stderr, "dsnscale drill: the target is not restored: %s\n", strings.Join(left, "; "))
		return exitBroken
	case trip != nil:
		return exitFailed
	case err != nil:
		return exitBroken
	}
	return outcome.ExitCode()
}

// isTerminalFile reports whether w is a character device (a terminal).
func isTerminalFile(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
