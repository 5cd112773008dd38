package reports

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
)

// Exit codes of CLIReport and CLICompare, the same as every dsnscale command's.
const (
	ExitOK         = 0
	ExitRegression = 1 // compare: a gated figure regressed
	ExitBadInput   = 2 // bad usage, a run record or gate file that is missing or invalid, runs that cannot be compared
	ExitFailure    = 3 // the output could not be written
)

// CLIReport implements `dsnscale report DIR`: it re-renders report.html, summary.md and
// junit.xml from DIR/run.json. It exits ExitOK once the files are written, whatever the run's
// result; ExitBadInput for bad usage or a missing or invalid run.json; ExitFailure when a file
// cannot be written.
func CLIReport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: dsnscale report DIR\n\nRe-renders report.html, summary.md and junit.xml from DIR/run.json.")
	}
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	if err != nil {
		return ExitBadInput
	}
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "dsnscale report: want one run directory, got %d arguments\n", len(pos))
		fs.Usage()
		return ExitBadInput
	}
	dir := pos[0]
	run, err := Load(dir)
	if err != nil {
		fmt.Fprintf(stderr, "dsnscale report: %v\n", err)
		return ExitBadInput
	}
	if err := renderAll(dir, run); err != nil {
		fmt.Fprintf(stderr, "dsnscale report: %v\n", err)
		return ExitFailure
	}
	fmt.Fprintf(stdout, "%s: %s (run %s)\n", run.Scenario.Name, run.Result, run.ID)
	for _, f := range []string{ReportFile, SummaryFile, JUnitFile} {
		fmt.Fprintf(stdout, "wrote %s\n", filepath.Join(dir, f))
	}
	return ExitOK
}

// parseInterspersed parses flags that may come before, between or after the positional
// arguments, as in `compare BASE HEAD --out DIR`.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
