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
	"github.com/dsnscale/dsnscale/scenarios"
	"github.com/dsnscale/dsnscale/scenarios/runner"
	"github.com/dsnscale/dsnscale/target"
)

func init() {
	register("drill", "run a drill against a target with guard rails (drill FILE --target FILE [--yes])", runDrill)
}

const drillUsage = `usage: dsnscale drill FILE --target FILE [--yes] [--out DIR]

Runs a drill (kind: Drill: a scenario with limits on what its faults may hit) against the
control plane a target file describes. Before anything starts it checks every fault against
the limits, prints the plan, tries the target (as dsnscale target check does) and asks for a
confirmation: the drill's name typed on a terminal, or --yes. It writes drill.json, the
journal of what was decided and when, beside the run's report. Exit 0 pass, 1 an SLO failed,
2 bad input or refused, 3 the target is unreachable or the run broke.`

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

	j.Add(drill.EntryStarted, "")
	outcome, err := runner.Run(ctx, s, runner.Options{Dir: *out, Progress: stdout, Terminal: isTerminalFile(stdout)})
	if outcome == nil {
		fmt.Fprintf(stderr, "dsnscale drill: %v\n", err)
		return exitBroken
	}
	detail := string(outcome.Run.Result)
	if err != nil {
		detail += ": " + err.Error()
	}
	j.Add(drill.EntryEnded, detail)
	if werr := j.Write(outcome.Dir); werr != nil {
		fmt.Fprintf(stderr, "dsnscale drill: journal: %v\n", werr)
	}
	fmt.Fprintf(stdout, "\ndrill %s: %s\nreport: %s\njournal: %s/%s\n", d.Metadata.Name, strings.ToUpper(detail), outcome.Dir+"/report.html", outcome.Dir, drill.JournalFile)
	if err != nil {
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
