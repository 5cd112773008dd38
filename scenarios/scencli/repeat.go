package scencli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dsnscale/dsnscale/reports"
	"github.com/dsnscale/dsnscale/scenarios"
	"github.com/dsnscale/dsnscale/scenarios/runner"
)

// MaxRepeat bounds --repeat: beyond it a number is a typo.
const MaxRepeat = 1000

// parseRepeat reads the value of --repeat.
func parseRepeat(v string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 1 || n > MaxRepeat {
		return 0, fmt.Errorf("--repeat %q: want a number of runs from 1 to %d", v, MaxRepeat)
	}
	return n, nil
}

// runScenario runs one scenario; runner.Run, or a stand-in in tests.
type runScenario func(ctx context.Context, s *scenarios.Scenario, opts runner.Options) (*runner.Outcome, error)

// repeater runs a scenario several times into one group directory.
type repeater struct {
	run      runScenario
	now      func() time.Time
	terminal bool
}

// runRepeated is `dsnscale run NAME --repeat N`: N runs of s, each in a directory of its own
// under one group directory (--out, or runs/<time>-<name>-xN), with group.json listing them.
//
// group.json is rewritten after every run, so that the runs made so far are listed whatever
// happens next. A run that breaks is recorded as broken and the next one starts; Ctrl-C
// aborts the run under way (recorded as broken) and starts no other. Comparisons leave broken
// runs out of every figure but run.broken. The exit code is 3 when a run broke or the group
// was interrupted, else 1 when an SLO failed in any run, else 0.
func runRepeated(ctx context.Context, s *scenarios.Scenario, ra runArgs, stdout, stderr io.Writer) int {
	r := repeater{run: runner.Run, now: time.Now, terminal: isTerminal(stdout)}
	return r.do(ctx, s, ra, stdout, stderr)
}

func (r repeater) do(ctx context.Context, s *scenarios.Scenario, ra runArgs, stdout, stderr io.Writer) int {
	start := r.now()
	dir := ra.out
	if dir == "" {
		dir = filepath.Join("runs", fmt.Sprintf("%s-x%d", runner.RunID(start, s.Metadata.Name), ra.repeat))
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		fmt.Fprintf(stderr, "dsnscale run: group directory %s is not empty\n", dir)
		return ExitUsage
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintf(stderr, "dsnscale run: %v\n", err)
		return ExitBroken
	}
	g := &reports.Group{
		SchemaVersion: reports.GroupSchemaVersion, ID: filepath.Base(dir), Scenario: s.Metadata.Name,
		Params: s.Values, Repeat: ra.repeat, Status: reports.GroupRunning, Start: start,
	}
	save := func() bool {
		if err := reports.WriteGroup(dir, g); err != nil {
			fmt.Fprintf(stderr, "dsnscale run: %v\n", err)
			return false
		}
		return true
	}
	if !save() {
		return ExitBroken
	}

	width := len(strconv.Itoa(ra.repeat))
	var passed, failed, broken int
	for i := 1; i <= ra.repeat; i++ {
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(stdout, "\n== run %d of %d (group %s)\n", i, ra.repeat, dir)
		entry := reports.GroupRun{Dir: fmt.Sprintf("run-%0*d", width, i)}
		out, err := r.run(ctx, s, runner.Options{Dir: filepath.Join(dir, entry.Dir), Progress: stdout, Terminal: r.terminal})
		switch {
		case out == nil || out.Run == nil:
			entry.Broken, entry.Error = true, errText(err, "the run left no record")
		default:
			entry.ID, entry.Result = out.Run.ID, out.Run.Result
			printOutcome(stdout, out)
			switch {
			case out.Err != nil || out.Run.Result == reports.ResultAborted:
				entry.Broken, entry.Error = true, errText(out.Err, out.Run.Error)
			case err != nil:
				// The record is there; the report around it is not.
				entry.Broken, entry.Error = true, "report not written: "+err.Error()
			}
		}
		if ctx.Err() != nil && entry.Broken && !strings.Contains(entry.Error, "interrupt") {
			entry.Error = "interrupted: " + entry.Error
		}
		switch {
		case entry.Broken:
			broken++
			fmt.Fprintf(stdout, "run %d of %d: BROKEN: %s\n", i, ra.repeat, entry.Error)
		case entry.Result == reports.ResultFail:
			failed++
			fmt.Fprintf(stdout, "run %d of %d: FAIL\n", i, ra.repeat)
		default:
			passed++
			fmt.Fprintf(stdout, "run %d of %d: PASS\n", i, ra.repeat)
		}
		g.Runs = append(g.Runs, entry)
		if !save() {
			return ExitBroken
		}
	}
	g.End = r.now()
	g.Status = reports.GroupComplete
	if len(g.Runs) < ra.repeat || ctx.Err() != nil {
		g.Status = reports.GroupInterrupted
	}
	if !save() {
		return ExitBroken
	}
	fmt.Fprintf(stdout, "\ngroup %s: %d of %d runs made: %d passed, %d failed their SLOs, %d broke\n", dir, len(g.Runs), ra.repeat, passed, failed, broken)
	if g.Status == reports.GroupInterrupted {
		fmt.Fprintln(stdout, "interrupted: the runs made so far are kept and listed in group.json")
	}
	fmt.Fprintf(stdout, "group: %s\ncompare with: dsnscale compare BASE %s\n", filepath.Join(dir, reports.GroupFile), dir)
	switch {
	case broken > 0 || g.Status == reports.GroupInterrupted:
		return ExitBroken
	case failed > 0:
		return ExitFailed
	}
	return ExitOK
}

// errText is err's message, or fallback when there is none.
func errText(err error, fallback string) string {
	switch {
	case err != nil:
		return err.Error()
	case fallback != "":
		return fallback
	}
	return "the run broke"
}
