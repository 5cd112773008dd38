// Package driver is the interface between a simulated fleet and where its DSNs run: in the
// harness process, in child processes, or in containers. A driver launches units (a rack: one
// failure domain) of DSNs from a Plan, carries commands to them and their records back, and
// applies unit-level faults. Drivers register by name; the registry rejects duplicates.
package driver

import (
	"github.com/dsnscale/dsnscale/simdsn/netproxy"

	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/dsnscale/dsnscale/internal/registry"
	"github.com/dsnscale/dsnscale/simdsn/bus"
	"github.com/dsnscale/dsnscale/simdsn/engine"
	"github.com/dsnscale/dsnscale/simdsn/stage"
	"github.com/dsnscale/dsnscale/simdsn/trafficmap"
)

// Sentinel errors.
var (
	ErrDuplicate   = errors.New("driver: duplicate name")
	ErrUnknown     = errors.New("driver: unknown driver")
	ErrUnsupported = errors.New("driver: not supported by this driver")
	ErrUnknownUnit = errors.New("driver: unknown unit")
)

// UnitFault is a fault on a whole unit.
type UnitFault string

// Unit faults.
const (
	// UnitKill stops the unit hard (SIGKILL, docker kill); lifting it starts the unit again.
	UnitKill UnitFault = "unit-kill"
	// UnitPause freezes the unit (SIGSTOP, docker pause); lifting it resumes.
	UnitPause UnitFault = "unit-pause"
	// UnitRestart restarts the unit; there is nothing to lift.
	UnitRestart UnitFault = "unit-restart"
	// UnitDisconnect blackholes the unit's bus traffic; lifting it reconnects.
	UnitDisconnect UnitFault = "unit-disconnect"
	// UnitStop stops the unit gracefully (SIGTERM, then SIGKILL after a grace; docker stop);
	// lifting it starts the unit again. Drivers that cannot stop gracefully return
	// ErrUnsupported.
	UnitStop UnitFault = "unit-stop"
)

// UnitFaults lists the unit faults.
var UnitFaults = []UnitFault{UnitKill, UnitPause, UnitRestart, UnitDisconnect, UnitStop}

// Unit is a group of DSNs that run and fail together.
type Unit struct {
	Name string           `json:"name"`
	Site string           `json:"site"`
	Rack string           `json:"rack"`
	DSNs []engine.DSNSpec `json:"dsns"`
}

// Plan is everything a driver needs to launch a fleet.
type Plan struct {
	Map    *trafficmap.Map
	Stages *stage.Registry
	Units  []Unit
	// Bus is the DSNs' bus configuration (URL: the control plane's NATS).
	Bus bus.Config
	// UnitProxies routes each unit's bus traffic through a loopback proxy of its own, which is
	// what UnitDisconnect blackholes. The process and docker drivers always do.
	UnitProxies bool
	Seed        uint64
	Workers     int
	// WorkDir holds the driver's files (caches, logs, image context).
	WorkDir string
	// Binary is the dsnscale binary, for drivers that start it.
	Binary string
	// HarnessListen and HarnessAdvertise place the harness link and the units' bus proxies
	// for drivers whose units run outside the harness process (empty: loopback; see
	// harness.Options).
	HarnessListen, HarnessAdvertise string
	Logger                          *slog.Logger
}

// Usage is the resources the units use, where the driver can tell.
type Usage struct {
	CPUSeconds  float64 // since launch
	MemoryBytes int64   // now
}

// Deployment is a launched fleet.
type Deployment interface {
	// Command hands an engine command to the DSNs it names (all of them if it names none).
	Command(ctx context.Context, cmd engine.Command) error
	// UnitFault starts (on) or lifts (off) a unit fault.
	UnitFault(ctx context.Context, unit string, f UnitFault, on bool) error
	// Usage reports resource use (ErrUnsupported if the driver cannot tell).
	Usage(ctx context.Context) (Usage, error)
	// Close stops everything and releases what the driver created.
	Close(ctx context.Context) error
}

// Linked is implemented by deployments whose units reach the bus through loopback proxies of
// their own (package netproxy): network faults impair a unit's link there.
type Linked interface {
	// UnitProxy returns the proxy in front of unit, or false when the unit has none.
	UnitProxy(unit string) (*netproxy.Proxy, bool)
}

// Driver launches fleets. Records (JSON lines, package record) go to records, whatever runs
// the DSNs.
type Driver interface {
	Launch(ctx context.Context, p *Plan, records io.Writer) (Deployment, error)
}

// Checker is implemented by drivers that run units on an engine outside the harness (a
// cluster): Check says whether it answers, so a run can be refused before it starts anything.
type Checker interface {
	Check(ctx context.Context) error
}

// Check runs the check of the driver registered under name, if it has one (an unknown name is
// Lookup's to report).
func Check(ctx context.Context, name string) error {
	d, ok := drivers.Lookup(name)
	if !ok {
		return nil
	}
	if c, ok := d.(Checker); ok {
		return c.Check(ctx)
	}
	return nil
}

// drivers holds the drivers by name.
var drivers = registry.New[Driver]("driver")

// Register adds a driver under name; a second driver of the same name is an error.
func Register(name string, d Driver) error {
	if name == "" || d == nil {
		return fmt.Errorf("driver: Register needs a name and a driver")
	}
	if err := drivers.Register(name, d); err != nil {
		return fmt.Errorf("%w: %q", ErrDuplicate, name)
	}
	return nil
}

// MustRegister is Register for init functions: a duplicate is a programming error.
func MustRegister(name string, d Driver) {
	if err := Register(name, d); err != nil {
		panic(err)
	}
}

// Lookup returns the driver registered under name.
func Lookup(name string) (Driver, error) {
	d, ok := drivers.Lookup(name)
	if !ok {
		return nil, fmt.Errorf("%w: %q%s", ErrUnknown, name, drivers.Hint(name))
	}
	return d, nil
}

// Names lists the registered drivers, sorted.
func Names() []string { return drivers.Names() }

// Split divides a command among units: each unit gets the DSNs it holds (all of its DSNs when
// the command names none, except recover, which each unit resolves itself).
func Split(units []Unit, cmd engine.Command) (map[string]engine.Command, error) {
	out := map[string]engine.Command{}
	if len(cmd.DSNs) == 0 {
		for _, u := range units {
			out[u.Name] = cmd
		}
		return out, nil
	}
	where := map[string]string{}
	for _, u := range units {
		for _, d := range u.DSNs {
			where[d.ID] = u.Name
		}
	}
	per := map[string][]string{}
	for _, id := range cmd.DSNs {
		u, ok := where[id]
		if !ok {
			return nil, fmt.Errorf("%w: %q", engine.ErrUnknownDSN, id)
		}
		per[u] = append(per[u], id)
	}
	for u, ids := range per {
		c := cmd
		c.DSNs = ids
		out[u] = c
	}
	return out, nil
}
