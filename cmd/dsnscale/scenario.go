package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/dsnscale/dsnscale/internal/strictyaml"
	"github.com/dsnscale/dsnscale/loadgen/mix"
	"github.com/dsnscale/dsnscale/reports/gate"
	"github.com/dsnscale/dsnscale/scenarios"
	"github.com/dsnscale/dsnscale/scenarios/scencli"
	"github.com/dsnscale/dsnscale/simdsn/simcli"
	"github.com/dsnscale/dsnscale/sweeps"
	"github.com/dsnscale/dsnscale/sweeps/sweepcli"
	"github.com/dsnscale/dsnscale/target"
)

func init() {
	register("run", "run a scenario (run NAME|FILE [--set k=v]... [--out DIR] [--plan] [--repeat N])", scencli.Run)
	register("list", "list the library scenarios", func(_ context.Context, _ []string, stdout, _ io.Writer) int {
		return scencli.List(stdout)
	})
	register("validate", "check a scenario, traffic map, load mix, gate, sweep or target file (validate FILE [--set k=v]...)", runValidate)
	register("sim", "run a simulated DSN fleet against a control plane (sim --cp URL --count N)", simcli.Run)
	register("fleet", "write a scenario's fleet as Kubernetes objects (fleet manifests --driver kubernetes --harness HOST:PORT NAME|FILE [--set k=v]...)", simcli.Fleet)
}

// runValidate routes a file to the checker of its kind.
func runValidate(_ context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(stderr, "usage: dsnscale validate FILE|NAME [--set k=v]...")
		return exitUsage
	}
	path, rest := args[0], args[1:]
	kind := strictyaml.KindOf(path)
	if _, err := scenarios.LibraryFile(path); kind == "" && err != nil && sweeps.IsLibrary(path) {
		kind = sweeps.Kind // a library sweep by name
	}
	switch kind {
	case "TrafficMap":
		if len(rest) > 0 {
			fmt.Fprintln(stderr, "dsnscale validate: --set applies to scenarios only")
			return exitUsage
		}
		return simcli.RunValidateMap(path, stderr)
	case "LoadMix":
		if len(rest) > 0 {
			fmt.Fprintln(stderr, "dsnscale validate: --set applies to scenarios only")
			return exitUsage
		}
		if _, err := mix.Load(path); err != nil {
			fmt.Fprintln(stderr, err)
			return exitUsage
		}
		fmt.Fprintf(stdout, "%s: ok (load mix)\n", path)
		return exitOK
	case sweeps.Kind:
		return sweepcli.Validate(path, stdout, stderr)
	case target.Kind:
		f, err := target.Load(path)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitUsage
		}
		fmt.Fprintf(stdout, "%s: ok (target %s: %s; dsnscale target check tries it)\n", path, f.Name, f.Describe())
		return exitOK
	case gate.Kind:
		if len(rest) > 0 {
			fmt.Fprintln(stderr, "dsnscale validate: --set applies to scenarios only")
			return exitUsage
		}
		g, err := gate.Load(path)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitUsage
		}
		fmt.Fprintf(stdout, "%s: ok (gate: alpha %v, %d runs per side required, %d performance figures listed)\n", path, g.Alpha, g.Runs, len(g.Figures))
		return exitOK
	}
	var set []string
	for i := 0; i < len(rest); i++ {
		switch {
		case rest[i] == "--set" && i+1 < len(rest):
			set = append(set, rest[i+1])
			i++
		case strings.HasPrefix(rest[i], "--set="):
			set = append(set, strings.TrimPrefix(rest[i], "--set="))
		default:
			fmt.Fprintf(stderr, "dsnscale validate: unexpected argument %q\n", rest[i])
			return exitUsage
		}
	}
	return scencli.ValidateTo(path, set, stdout, stderr)
}
