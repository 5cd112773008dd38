package main

import (
	"context"
	"fmt"
	"io"

	"github.com/dsnscale/dsnscale/faults"
)

func init() {
	register("faults", "list the fault kinds scenarios can inject, with their parameters", runFaults)
}

func runFaults(_ context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "usage: dsnscale faults (takes no arguments, got %q)\n", args[0])
		return exitUsage
	}
	if err := faults.Default.WriteKinds(stdout); err != nil {
		fmt.Fprintf(stderr, "dsnscale faults: %v\n", err)
		return exitBroken
	}
	return exitOK
}
