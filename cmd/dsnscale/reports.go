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
	register("compare", "compare head runs against base runs and gate on regressions (compare BASE HEAD [--gate FILE] [--out DIR])", func(_ context.Context, args []string, stdout, stderr io.Writer) int {
		return reports.CLICompare(args, stdout, stderr)
	})
}
