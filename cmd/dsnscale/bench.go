package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

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
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	benches := benchfig.Select(*only)
	if *list {
		for _, b := range benches {
			fmt.Fprintf(stdout, "%-40s %s\n", b.Name, b.Area)
		}
		return exitOK
	}
	if len(benches) == 0 {
		fmt.Fprintf(stderr, "dsnscale bench: no benchmark area starts with %q\n", *only)
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
