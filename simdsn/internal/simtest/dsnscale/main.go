// Command dsnscale here is the `dsnscale sim` subset of the real binary (package simcli),
// built by tests of the process and docker drivers, which need a binary to start.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/dsnscale/dsnscale/simdsn/simcli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	if len(os.Args) < 2 || os.Args[1] != "sim" {
		fmt.Fprintln(os.Stderr, "usage: dsnscale sim ...")
		os.Exit(simcli.ExitUsage)
	}
	code := simcli.Run(ctx, os.Args[2:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
