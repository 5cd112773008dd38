package reports

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/dsnscale/dsnscale/internal/registry"
	"github.com/dsnscale/dsnscale/reports/gate"
)

const compareUsage = `usage: dsnscale compare BASE HEAD [--gate FILE] [--out DIR] [--alpha 0.05] [--tolerance 0.1]
                        [--figure-tolerance NAME=FRACTION]... [--min-runs N] [--allow-different]

Compares the head runs against the base runs. BASE and HEAD are each a run (a directory or its
run.json), a group of repeated runs (dsnscale run NAME --repeat N), or a directory of runs.

A performance figure regresses when its median moves in its worse direction beyond its
tolerance AND the Mann-Whitney U test finds the move significant at --alpha; with too few runs
it is inconclusive (4 runs per side at alpha 0.05). A correctness figure (crashes, lost DSNs,
watch gaps, failed SLOs, broken runs) regresses on any increase. --gate FILE reads alpha,
tolerances, the figures that gate and the runs required from a Gate file; flags override it.

Without --out it prints summary.md; with it, it writes summary.md, junit.xml, compare.html and
compare.json into DIR. Exit codes: 0 no regression, 1 a gated figure regressed, 2 bad input
(runs of different scenarios or parameters, too few runs, unknown figure names), 3 output not
written.`

// CLICompare implements `dsnscale compare BASE HEAD` (see compareUsage).
func CLICompare(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "write summary.md, junit.xml, compare.html and compare.json into this directory (default: print summary.md)")
	gateFile := fs.String("gate", "", "a Gate file: alpha, tolerances, gated figures, runs required")
	alpha := fs.Float64("alpha", DefaultAlpha, "significance level of the U test")
	tolerance := fs.Float64("tolerance", DefaultToleranceFraction, "relative move of a median let pass (0.1 = 10%)")
	minRuns := fs.Int("min-runs", 0, "good runs required on each side")
	allowDifferent := fs.Bool("allow-different", false, "compare runs of different scenarios or parameters instead of refusing")
	var figureTol []string
	fs.Func("figure-tolerance", "NAME=FRACTION: tolerance for one figure (repeatable)", func(s string) error {
		name, v, ok := strings.Cut(s, "=")
		if !ok || strings.TrimSpace(name) == "" {
			return fmt.Errorf("want NAME=FRACTION, got %q", s)
		}
		if _, err := strconv.ParseFloat(v, 64); err != nil {
			return fmt.Errorf("%q is not a number", v)
		}
		figureTol = append(figureTol, s)
		return nil
	})
	fs.Usage = func() {
		fmt.Fprintln(stderr, compareUsage)
		fmt.Fprintln(stderr)
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	if err != nil {
		return ExitBadInput
	}
	fail := func(format string, args ...any) int {
		fmt.Fprintf(stderr, "dsnscale compare: "+format+"\n", args...)
		return ExitBadInput
	}
	if len(pos) != 2 {
		fmt.Fprintf(stderr, "dsnscale compare: want BASE and HEAD, got %d arguments\n", len(pos))
		fs.Usage()
		return ExitBadInput
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	opts := CompareOptions{Alpha: DefaultAlpha, Tolerance: DefaultTolerance()}
	var g *gate.Gate
	if *gateFile != "" {
		if g, err = gate.Load(*gateFile); err != nil {
			fmt.Fprintln(stderr, err)
			return ExitBadInput
		}
		opts.Alpha, opts.MinRuns, opts.Tolerance.Default = g.Alpha, g.Runs, float64(g.Tolerance)
		for i, f := range g.Figures {
			opts.Gate = append(opts.Gate, f.Name)
			if f.Tolerance != 0 {
				if opts.Tolerance.Figures == nil {
					opts.Tolerance.Figures = map[string]float64{}
				}
				opts.Tolerance.Figures[f.Name] = g.ToleranceFor(i)
			}
			if f.Better != "" {
				if opts.Better == nil {
					opts.Better = map[string]Direction{}
				}
				opts.Better[f.Name] = Direction(f.Better)
			}
		}
	}
	if set["alpha"] {
		opts.Alpha = *alpha
	}
	if set["tolerance"] {
		if *tolerance == 0 {
			return fail("--tolerance: must be greater than 0")
		}
		opts.Tolerance.Default = *tolerance
	}
	if set["min-runs"] {
		opts.MinRuns = *minRuns
	}
	opts.AllowDifferent = *allowDifferent
	for _, s := range figureTol {
		name, v, _ := strings.Cut(s, "=")
		f, _ := strconv.ParseFloat(v, 64)
		if opts.Tolerance.Figures == nil {
			opts.Tolerance.Figures = map[string]float64{}
		}
		opts.Tolerance.Figures[name] = f
	}
	if err := opts.withDefaults().Validate(); err != nil {
		return fail("%v", err)
	}

	var sets [2]*RunSet
	for i, p := range pos {
		s, err := LoadSet(p)
		if err != nil {
			return fail("%s: %v", []string{"BASE", "HEAD"}[i], err)
		}
		sets[i] = s
	}
	idx := indexFigures(sets[0], sets[1])
	for _, s := range figureTol {
		name, _, _ := strings.Cut(s, "=")
		if problem := idx.checkTolerance(name); problem != "" {
			return fail("--figure-tolerance %s: %s", name, problem)
		}
	}
	if g != nil {
		if err := g.CheckScenario(idx.scenarios); err != nil {
			fmt.Fprintln(stderr, err)
			return ExitBadInput
		}
		if err := g.CheckFigures(idx.checkGateFigure); err != nil {
			fmt.Fprintln(stderr, err)
			return ExitBadInput
		}
	}

	cmp, err := Compare(sets[0], sets[1], opts)
	if err != nil {
		return fail("%v", err)
	}
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
		fmt.Fprintf(stdout, "%s: %s\n", cmp.Scenario, compareHeadline(cmp))
		for _, f := range CompareFiles {
			fmt.Fprintf(stdout, "wrote %s\n", filepath.Join(*out, f))
		}
	}
	if cmp.Regressed() {
		return ExitRegression
	}
	return ExitOK
}

// figureIndex is every figure the compared runs produce, for checking names given by users.
type figureIndex struct {
	figures   map[string]Figure
	names     []string // full names and SLO names, for suggestions
	scenarios []string
}

func indexFigures(sets ...*RunSet) figureIndex {
	idx := figureIndex{figures: map[string]Figure{}}
	seen := map[string]bool{}
	addName := func(n string) {
		if !seen[n] {
			seen[n] = true
			idx.names = append(idx.names, n)
		}
	}
	scen := map[string]bool{}
	for _, s := range sets {
		runs := append([]*Run(nil), s.Runs...)
		for _, b := range s.Broken {
			if b.Run != nil {
				runs = append(runs, b.Run)
			}
		}
		for _, r := range runs {
			if !scen[r.Scenario.Name] {
				scen[r.Scenario.Name] = true
				idx.scenarios = append(idx.scenarios, r.Scenario.Name)
			}
			for _, f := range runFigures(r) {
				if _, ok := idx.figures[f.Name]; !ok {
					idx.figures[f.Name] = f
					addName(f.Name)
					addName(SLOName(f.Name))
				}
			}
		}
	}
	return idx
}

// lookup returns the figures name stands for: the one of that full name, or those of that SLO
// name.
func (idx figureIndex) lookup(name string) []Figure {
	var out []Figure
	for _, n := range idx.names {
		if f, ok := idx.figures[n]; ok && matches(n, name) {
			out = append(out, f)
		}
	}
	return out
}

func (idx figureIndex) unknown(name string) string {
	msg := fmt.Sprintf("no figure of the compared runs is called %q", name)
	if c := registry.Closest(name, idx.names); c != "" {
		msg += fmt.Sprintf("; did you mean %q?", c)
	}
	return msg
}

// checkTolerance says what is wrong with giving name a tolerance, or "". A correctness figure
// takes one for when its base is not clean and it is judged by statistics.
func (idx figureIndex) checkTolerance(name string) string {
	figs := idx.lookup(name)
	if len(figs) == 0 {
		return idx.unknown(name)
	}
	for _, f := range figs {
		if f.Kind == KindInfo {
			return fmt.Sprintf("%s counts what the run did and is not judged", f.Name)
		}
	}
	return ""
}

// checkGateFigure says what is wrong with a gate file's figure entry.
func (idx figureIndex) checkGateFigure(_ int, gf gate.Figure) (field, problem string) {
	figs := idx.lookup(gf.Name)
	if len(figs) == 0 {
		return "name", idx.unknown(gf.Name)
	}
	for _, f := range figs {
		_, known := LookupFigure(f.Name)
		switch {
		case gf.Better != "" && known:
			return "better", fmt.Sprintf("the direction of %s is known (%s is better)", f.Name, f.Better)
		case f.Kind == KindCorrectness && gf.Tolerance == 0:
			return "name", fmt.Sprintf("%s is a correctness figure: it always gates, on any increase from a clean base; list it only to give the tolerance that applies when its base is not clean", f.Name)
		case f.Kind == KindInfo && gf.Better == "":
			return "name", fmt.Sprintf("%s has no better direction and is not judged (for a figure of your own, say better: lower or higher)", f.Name)
		}
	}
	return "", ""
}
