package faults

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// ScopeUnits kinds act on whole fleet units: the containers (or processes) that run a rack of
// DSNs each.
const ScopeUnits Scope = "units"

// UnitFaulter is implemented by fleets that can fault their units as a whole.
type UnitFaulter interface {
	// Units lists the units, with their labels (site, rack, unit) and DSNs.
	Units() []Link
	// FaultUnits starts a unit fault (the simulator's unit-kill, unit-pause, unit-restart,
	// unit-disconnect) on units; undo lifts it.
	FaultUnits(ctx context.Context, kind string, units []string) (undo func(context.Context) error, err error)
}

// DriverOnly is implemented by kinds that need the fleet to run on one of some drivers.
type DriverOnly interface {
	Drivers() []string
}

// containerKind is a fault on the containers of the container drivers (docker, swarm), one per
// unit, through the Docker API.
type containerKind struct {
	name, desc, unitFault string
	momentary             bool
}

func init() {
	for _, k := range []*containerKind{
		{name: "container-pause", unitFault: "unit-pause", desc: "pause units' containers (docker pause): their DSNs freeze until recovered (unpause)"},
		{name: "container-kill", unitFault: "unit-kill", desc: "kill units' containers (SIGKILL); they start again, on their state, when recovered"},
		{name: "container-stop", unitFault: "unit-stop", desc: "stop units' containers (docker stop: SIGTERM, SIGKILL after 5s); they start again, on their state, when recovered"},
		{name: "container-restart", unitFault: "unit-restart", momentary: true, desc: "restart units' containers (docker restart); over once they are up again"},
		{name: "container-disconnect", unitFault: "unit-disconnect", desc: "cut units' containers off the control plane's bus (their link blackholed) until recovered"},
	} {
		MustRegister(k)
	}
}

func (k *containerKind) Name() string        { return k.name }
func (k *containerKind) Description() string { return k.desc }
func (k *containerKind) Scope() Scope        { return ScopeUnits }
func (k *containerKind) Params() []Param     { return nil }
func (k *containerKind) Drivers() []string   { return []string{"docker", "swarm"} }

func (k *containerKind) New(spec Spec, env Env) (Fault, error) {
	u, ok := env.Fleet.(UnitFaulter)
	if !ok {
		return nil, fmt.Errorf("%w: %s needs a fleet of units (fleet.driver docker or swarm)", ErrUnsupported, k.name)
	}
	return &unitFault{kind: k, env: env, u: u, target: spec.Target}, nil
}

// unitFault faults the selected units until recovered.
type unitFault struct {
	kind   *containerKind
	env    Env
	u      UnitFaulter
	target Target

	mu        sync.Mutex
	affected  []string
	undo      func(context.Context) error
	recovered bool
}

// Momentary reports whether the fault is over once injected (a restart).
func (f *unitFault) Momentary() bool { return f.kind.momentary }

// Affected lists the DSNs of the faulted units.
func (f *unitFault) Affected() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.affected...)
}

func (f *unitFault) Inject(ctx context.Context) error {
	sel, err := SelectLinks(f.u.Units(), f.target, f.env.Seed)
	if err != nil {
		return err
	}
	if len(sel) == 0 {
		return nil
	}
	names := make([]string, len(sel))
	var dsns []string
	for i, l := range sel {
		names[i] = l.Name
		dsns = append(dsns, l.DSNs...)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.recovered {
		return errors.New("recovered before injection")
	}
	undo, err := f.u.FaultUnits(ctx, f.kind.unitFault, names)
	if err != nil {
		return fmt.Errorf("%s on units %v: %w", f.kind.unitFault, names, err)
	}
	f.undo, f.affected = undo, dsns
	f.env.logger().Info("fault injected", "kind", f.kind.name, "units", names)
	return nil
}

func (f *unitFault) Recover(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.recovered {
		return nil
	}
	f.recovered = true
	if f.undo == nil {
		return nil
	}
	return f.undo(context.WithoutCancel(ctx))
}
