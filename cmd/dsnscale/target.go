package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/dsnscale/dsnscale/target"
)

func init() {
	register("target", "check an external control plane before a run (target check FILE)", runTarget)
}

const targetUsage = `usage: dsnscale target check FILE [--timeout 10s]

Tries each piece of the target file (kind: Target, see docs/TARGETS.md) in turn: TLS to the API
with the CA, the login or token, a test admission, a mutual-TLS bus connection and the bus
permissions; says which one fails and why. Exit 0 every piece works, 2 the file (or a file it
names) is bad, 3 a piece fails.`

func runTarget(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "check" {
		fmt.Fprintln(stderr, targetUsage)
		return exitUsage
	}
	fs := flag.NewFlagSet("target check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 10*time.Second, "bound on each network step")
	var file string
	rest := args[1:]
	// The file may come before or after the flags.
	if len(rest) > 0 && len(rest[0]) > 0 && rest[0][0] != '-' {
		file, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return exitUsage
	}
	if file == "" && fs.NArg() == 1 {
		file = fs.Arg(0)
	} else if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "dsnscale target check: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	if file == "" || *timeout <= 0 {
		fmt.Fprintln(stderr, targetUsage)
		return exitUsage
	}
	f, err := target.Load(file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	fmt.Fprintf(stdout, "target %s: %s\n", f.Name, f.Describe())
	res := target.Check(ctx, &f.Target, target.CheckOptions{Timeout: *timeout})
	res.Write(stdout)
	if failed := res.Failed(); failed != nil {
		fmt.Fprintf(stderr, "dsnscale target check: %s: %s\n", failed.Name, failed.Detail)
		if errors.Is(failed.Err, target.ErrCredentials) {
			return exitUsage
		}
		return exitBroken
	}
	fmt.Fprintln(stdout, "ok: every piece works")
	return exitOK
}
