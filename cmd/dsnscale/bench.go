package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"

	"github.com/dsnscale/dsnscale/internal/benchfig"
)

func init() {
	register("bench", "run the benchmarks and print their figures as JSON (bench [--only AREA])", runBench)
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	only := fs.String("only", "", "run only benchmarks whose area starts with this (cp, sim, tsdb, search, inventory, loadgen)")
	out := fs.String("out", "bench/latest.json", "also write the JSON here (empty: do not)")
	list := fs.Bool("list", false, "list the benchmarks and exit")
	runs := fs.Int("runs", 0, "runs per benchmark (0: each benchmark's own default)")
	match := fs.String("run", "", "run only benchmarks whose name matches this regular expression")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	benches := benchfig.Select(*only)
	if *match != "" {
		re, err := regexp.Compile(*match)
		if err != nil {
			fmt.Fprintf(stderr, "dsnscale bench: --run: %v\n", err)
			return exitUsage
		}
		kept := benches[:0]
		for _, b := range benches {
			if re.MatchString(b.Name) {
				kept = append(kept, b)
			}
		}
		benches = kept
	}
	if *runs < 0 {
		fmt.Fprintln(stderr, "dsnscale bench: --runs must not be negative")
		return exitUsage
	}
	for i := range benches {
		if *runs > 0 {
			benches[i].Runs = *runs
		}
	}
	if *list {
		for _, b := range benches {
			fmt.Fprintf(stdout, "%-40s %s\n", b.Name, b.Area)
		}
		return exitOK
	}
	if len(benches) == 0 {
		fmt.Fprintf(stderr, "dsnscale bench: no benchmark matches --only %q --run %q\n", *only, *match)
		return exitUsage
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "dsnscale bench: %v\n", err)
		return exitBroken
	}
	work, err := os.MkdirTemp("", "dsnscale-bench-")
	if err != nil {
		fmt.Fprintf(stderr, "dsnscale bench: %v\n", err)
		return exitBroken
	}
	defer os.RemoveAll(work)
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }
	res := benchfig.RunAll(ctx, benches, work, self, logf)
	data, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		fmt.Fprintf(stderr, "dsnscale bench: %v\n", err)
		return exitBroken
	}
	fmt.Fprintln(stdout, string(data))
	if *out != "" {
		if err := os.MkdirAll(filepath.Dir(*out), 0o755); err == nil {
			err = os.WriteFile(*out, append(data, '\n'), 0o644)
		}
		if err != nil {
			fmt.Fprintf(stderr, "dsnscale bench: write %s: %v\n", *out, err)
			return exitBroken
		}
	}
	if len(res.Errors) > 0 {
		return exitBroken
	}
	return exitOK
}
