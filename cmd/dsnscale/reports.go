package main

import (
	"context"
	"io"

	"github.com/dsnscale/dsnscale/reports"
)

func init() {
	register("report", "re-render a run's report from its run.json (report DIR)", func(_ context.Context, args []string, stdout, stderr io.Writer) int {
		return reports.CLIReport(args, stdout, stderr)
	})
	register("compare", "compare two runs side by side (compare BASE HEAD [--out DIR] [--tolerance 0.1])", func(_ context.Context, args []string, stdout, stderr io.Writer) int {
		return reports.CLICompare(args, stdout, stderr)
	})
}
