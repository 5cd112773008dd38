package reports

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Exit codes of CLIReport and CLICompare, the same as every dsnscale command's.
const (
	ExitOK         = 0
	ExitRegression = 1 // compare: a figure got worse beyond tolerance or an SLO started failing
	ExitBadInput   = 2 // bad usage, or a run record that is missing or invalid
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

// CLICompare implements `dsnscale compare BASE HEAD [--out DIR] [--tolerance 0.1]
// [--figure-tolerance NAME=FRACTION]...`. BASE and HEAD are run directories or run.json files.
// Without --out it prints compare.md on stdout; with it, it writes compare.html and compare.md
// into DIR. It exits ExitOK when nothing regressed, ExitRegression when a figure got worse
// beyond tolerance or an SLO started failing, ExitBadInput for bad usage or an invalid run, and
// ExitFailure when the output cannot be written.
func CLICompare(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "write compare.html and compare.md into this directory (default: print compare.md)")
	tol := DefaultTolerance()
	fs.Float64Var(&tol.Default, "tolerance", DefaultToleranceFraction, "relative change let pass for every figure (0.1 = 10%)")
	fs.Func("figure-tolerance", "NAME=FRACTION: tolerance for one figure (repeatable)", func(s string) error {
		name, v, ok := strings.Cut(s, "=")
		if !ok || strings.TrimSpace(name) == "" {
			return fmt.Errorf("want NAME=FRACTION, got %q", s)
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("%q: %w", v, err)
		}
		if tol.Figures == nil {
			tol.Figures = map[string]float64{}
		}
		tol.Figures[name] = f
		return nil
	})
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: dsnscale compare BASE HEAD [--out DIR] [--tolerance 0.1] [--figure-tolerance NAME=FRACTION]...")
		fmt.Fprintln(stderr, "\nCompares two runs (directories or run.json files). Exit codes: 0 no regression,")
		fmt.Fprintln(stderr, "1 a figure got worse beyond tolerance or an SLO started failing, 2 bad input, 3 output not written.")
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	if err != nil {
		return ExitBadInput
	}
	if len(pos) != 2 {
		fmt.Fprintf(stderr, "dsnscale compare: want BASE and HEAD, got %d arguments\n", len(pos))
		fs.Usage()
		return ExitBadInput
	}
	if tol.Default == 0 {
		fmt.Fprintln(stderr, "dsnscale compare: --tolerance: must be greater than 0")
		return ExitBadInput
	}
	if err := tol.Validate(); err != nil {
		fmt.Fprintf(stderr, "dsnscale compare: %v\n", err)
		return ExitBadInput
	}
	var runs [2]*Run
	for i, p := range pos {
		r, err := loadPath(p)
		if err != nil {
			fmt.Fprintf(stderr, "dsnscale compare: %s: %v\n", []string{"BASE", "HEAD"}[i], err)
			return ExitBadInput
		}
		runs[i] = r
	}
	cmp := Compare(runs[0], runs[1], tol)
	if *out == "" {
		if err := RenderCompareMarkdown(stdout, cmp); err != nil {
			fmt.Fprintf(stderr, "dsnscale compare: %v\n", err)
			return ExitFailure
		}
	} else {
		if err := WriteComparison(*out, cmp); err != nil {
			fmt.Fprintf(stderr, "dsnscale compare: %v\n", err)
			return ExitFailure
		}
		_, headline := compareHeadline(cmp)
		fmt.Fprintln(stdout, headline)
		for _, f := range []string{CompareHTMLFile, CompareMarkdownFile} {
			fmt.Fprintf(stdout, "wrote %s\n", filepath.Join(*out, f))
		}
	}
	if cmp.Regressed() {
		return ExitRegression
	}
	return ExitOK
}

// loadPath loads a run from a run directory or a run.json file.
func loadPath(p string) (*Run, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return Load(p)
	}
	return LoadFile(p)
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
