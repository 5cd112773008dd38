package simcli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/dsnscale/dsnscale/internal/cliargs"
	"github.com/dsnscale/dsnscale/scenarios"
	"github.com/dsnscale/dsnscale/simdsn"
	"github.com/dsnscale/dsnscale/simdsn/harness"
	"github.com/dsnscale/dsnscale/simdsn/kube"
	"github.com/dsnscale/dsnscale/simdsn/stage"
	"github.com/dsnscale/dsnscale/simdsn/trafficmap"
)

const fleetUsage = `usage: dsnscale fleet manifests --driver kubernetes --harness HOST:PORT NAME|FILE [--set name=value]...
        [--image IMAGE] [--pull Always|IfNotPresent|Never] [--run ID] [--namespace NS]

Writes the objects of a scenario's fleet as multi-document YAML (kubectl apply -f): a namespace,
an Indexed Job with one pod per unit (rack), a ConfigMap with the unit list and a Secret with a
fresh harness token. The pods dial the harness link at --harness, which must be reachable from
them and hold the Secret's token. --image defaults to the docker driver's tag of this binary
(dsnscale-sim:<hash>); --run (default: the scenario's name) labels the objects and names the
namespace (dsnscale-<run>).`

type manifestArgs struct {
	scenario, driver, harness, image, pull, run, namespace string
	set                                                    []string
}

func parseManifestArgs(args []string) (manifestArgs, error) {
	var ma manifestArgs
	for sc := cliargs.New(args); sc.Next(); {
		if !sc.IsFlag() {
			if err := sc.One(&ma.scenario, "scenario"); err != nil {
				return ma, err
			}
			continue
		}
		var dst *string
		switch sc.Name() {
		case "driver":
			dst = &ma.driver
		case "harness":
			dst = &ma.harness
		case "image":
			dst = &ma.image
		case "pull":
			dst = &ma.pull
		case "run":
			dst = &ma.run
		case "namespace":
			dst = &ma.namespace
		case "set":
			v, err := sc.Value()
			if err != nil {
				return ma, err
			}
			ma.set = append(ma.set, v)
			continue
		case "h", "help":
			return ma, cliargs.ErrHelp
		default:
			return ma, fmt.Errorf("unknown flag %s", sc.Arg())
		}
		v, err := sc.Value()
		if err != nil {
			return ma, err
		}
		*dst = v
	}
	switch {
	case ma.driver == "":
		return ma, errors.New("--driver is required (kubernetes)")
	case ma.driver != kube.Name:
		return ma, fmt.Errorf("--driver %q has no manifests; only %s has", ma.driver, kube.Name)
	case ma.harness == "":
		return ma, errors.New("--harness HOST:PORT is required: the pods dial the harness link there")
	case ma.scenario == "":
		return ma, errors.New("which scenario? name one from dsnscale list, or a file")
	}
	return ma, nil
}

// Fleet is `dsnscale fleet SUBCOMMAND`: today only manifests.
func Fleet(_ context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "manifests" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprintln(stdout, fleetUsage)
			return ExitOK
		}
		fmt.Fprintf(stderr, "dsnscale fleet: want the subcommand manifests\n\n%s\n", fleetUsage)
		return ExitUsage
	}
	ma, err := parseManifestArgs(args[1:])
	if err != nil {
		return cliargs.Refuse(err, "fleet manifests", fleetUsage, stdout, stderr)
	}
	objs, err := manifests(ma)
	if err != nil {
		fmt.Fprintf(stderr, "dsnscale fleet manifests: %v\n", err)
		return ExitUsage
	}
	if err := kube.WriteYAML(stdout, objs.List()); err != nil {
		fmt.Fprintf(stderr, "dsnscale fleet manifests: %v\n", err)
		return ExitBroken
	}
	return ExitOK
}

// manifests builds the objects of the scenario's fleet.
func manifests(ma manifestArgs) (*kube.Objects, error) {
	set, err := scenarios.ParseSet(ma.set)
	if err != nil {
		return nil, err
	}
	s, err := scenarios.Load(ma.scenario, set)
	if err != nil {
		return nil, err
	}
	m := trafficmap.Default()
	if t := s.Fleet.Traffic; t != "" && t != scenarios.DefaultTraffic {
		if s.Dir != "" && !filepath.IsAbs(t) {
			t = filepath.Join(s.Dir, t)
		}
		if m, err = trafficmap.Load(t, stage.Default()); err != nil {
			return nil, err
		}
	}
	units, err := simdsn.PlanUnits(m, s.Fleet.Size, "sim-")
	if err != nil {
		return nil, err
	}
	image := ma.image
	if image == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		if image, err = kube.DefaultImage(exe); err != nil {
			return nil, err
		}
	}
	run := ma.run
	if run == "" {
		run = strings.ToLower(s.Metadata.Name)
	}
	var tok [16]byte
	_, _ = rand.Read(tok[:])
	names := make([]string, len(units))
	for i, u := range units {
		names[i] = u.Name
	}
	creds, err := harness.NewCredentials(names)
	if err != nil {
		return nil, err
	}
	return kube.Build(kube.Params{Run: run, Namespace: ma.namespace, Image: image, PullPolicy: corev1.PullPolicy(ma.pull),
		HarnessAddr: ma.harness, Token: hex.EncodeToString(tok[:]), Credentials: creds, Units: units})
}
