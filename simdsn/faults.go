package simdsn

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"github.com/dsnscale/dsnscale/simdsn/driver"
	"github.com/dsnscale/dsnscale/simdsn/engine"
	"github.com/dsnscale/dsnscale/simdsn/netproxy"
	"github.com/dsnscale/dsnscale/simdsn/stage"
)

// Target chooses what a fault hits. IDs and Labels narrow the candidates (all DSNs, or all
// units for a unit fault); Fraction and Count then pick at random among them (the smaller wins
// when both are set).
type Target struct {
	// IDs names DSNs (unit names for unit faults).
	IDs []string `json:"ids,omitempty"`
	// Labels must all match: a DSN's labels (which include site, rack and group), or a unit's
	// site, rack and unit.
	Labels map[string]string `json:"labels,omitempty"`
	// Fraction of the candidates, in (0,1].
	Fraction float64 `json:"fraction,omitempty"`
	// Count of the candidates, at most.
	Count int `json:"count,omitempty"`
}

// FaultSpec is a fault to inject.
type FaultSpec struct {
	// Kind is a misbehaviour of the stage registry (crash, restart, hang, slow-apply,
	// drop-acks, ack-wrong-revision, corrupt-telemetry, clock-skew, disk-degradation,
	// temperature-rise, flapping, ... and any added as a file) or a unit fault (unit-kill,
	// unit-pause, unit-restart, unit-disconnect).
	Kind   string `json:"kind"`
	Target Target `json:"target"`
	// Spread starts the fault on each target at a random point of this window (0: at once).
	Spread time.Duration `json:"spread,omitempty"`
	// Duration recovers the fault by itself after this long (0: only Recover ends it).
	Duration time.Duration `json:"duration,omitempty"`
	// Params set the misbehaviour's parameters (see its file), as YAML scalars.
	Params map[string]string `json:"params,omitempty"`
	// Seed makes the random choice of targets repeatable (0: random).
	Seed uint64 `json:"seed,omitempty"`
}

// Injection is a fault that was injected.
type Injection struct {
	ID   string   `json:"id"`
	Kind string   `json:"kind"`
	DSNs []string `json:"dsns"`
	// Units are the units hit by a unit fault.
	Units []string  `json:"units,omitempty"`
	At    time.Time `json:"at"`
	// Until is when the fault recovers by itself (zero: never).
	Until time.Time `json:"until,omitzero"`
}

type active struct {
	inj       Injection
	spec      FaultSpec
	timer     *time.Timer
	recovered bool
}

// IsUnitFault reports whether kind is a unit fault.
func IsUnitFault(kind string) bool {
	return slices.Contains(driver.UnitFaults, driver.UnitFault(kind))
}

// FaultKinds lists every fault kind a fleet with this registry accepts.
func FaultKinds(reg *stage.Registry) []string {
	out := reg.MisbehaviourNames()
	for _, u := range driver.UnitFaults {
		out = append(out, string(u))
	}
	sort.Strings(out)
	return out
}

// Validate checks a spec on its own (targets are checked by Select).
func (s FaultSpec) Validate(reg *stage.Registry) error {
	var errs []error
	if !IsUnitFault(s.Kind) {
		if _, ok := reg.Misbehaviour(s.Kind); !ok {
			errs = append(errs, fmt.Errorf("kind: unknown fault %q (have: %v)", s.Kind, FaultKinds(reg)))
		}
	} else if len(s.Params) > 0 {
		errs = append(errs, fmt.Errorf("params: unit fault %s takes none", s.Kind))
	}
	if !(s.Target.Fraction >= 0 && s.Target.Fraction <= 1) {
		errs = append(errs, fmt.Errorf("target.fraction: %v is outside [0,1]", s.Target.Fraction))
	}
	if s.Target.Count < 0 {
		errs = append(errs, fmt.Errorf("target.count: %d must not be negative", s.Target.Count))
	}
	if s.Spread < 0 || s.Duration < 0 {
		errs = append(errs, errors.New("spread and duration must not be negative"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrFault, errors.Join(errs...))
	}
	return nil
}

// Select returns what a spec would hit, without doing anything: the DSNs, and for a unit fault
// the units. Use it to show the blast radius before injecting.
func (f *Fleet) Select(spec FaultSpec) (dsns, units []string, err error) {
	if err := spec.Validate(f.cfg.Stages); err != nil {
		return nil, nil, err
	}
	t := spec.Target
	r := rand.New(rand.NewPCG(spec.Seed, spec.Seed^0x5851f42d4c957f2d))
	if spec.Seed == 0 {
		r = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if IsUnitFault(spec.Kind) {
		var cands []string
		for _, id := range t.IDs {
			if _, ok := f.unitIdx[id]; !ok {
				return nil, nil, fmt.Errorf("%w: target.ids: unknown unit %q", ErrFault, id)
			}
		}
		for _, u := range f.units {
			if len(t.IDs) > 0 && !slices.Contains(t.IDs, u.Name) {
				continue
			}
			if !matches(t.Labels, map[string]string{"site": u.Site, "rack": u.Rack, "unit": u.Name}) {
				continue
			}
			cands = append(cands, u.Name)
		}
		units = pick(cands, t, r)
		if len(units) == 0 {
			return nil, nil, ErrNoTarget
		}
		for _, u := range units {
			dsns = append(dsns, f.units[f.unitIdx[u]].DSNs...)
		}
		sort.Strings(dsns)
		return dsns, units, nil
	}
	var cands []string
	if len(t.IDs) > 0 {
		seen := make(map[string]bool, len(t.IDs))
		for _, id := range t.IDs {
			i, ok := f.byID[id]
			if !ok {
				return nil, nil, fmt.Errorf("%w: target.ids: unknown DSN %q", ErrFault, id)
			}
			if !seen[id] && matches(t.Labels, f.dsns[i].Labels) {
				seen[id] = true
				cands = append(cands, id)
			}
		}
		sort.Strings(cands)
	} else {
		for _, d := range f.dsns {
			if matches(t.Labels, d.Labels) {
				cands = append(cands, d.ID)
			}
		}
	}
	dsns = pick(cands, t, r)
	if len(dsns) == 0 {
		return nil, nil, ErrNoTarget
	}
	return dsns, nil, nil
}

func matches(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// pick draws Fraction and/or Count of cands at random; the result is sorted.
func pick(cands []string, t Target, r *rand.Rand) []string {
	n := len(cands)
	k := n
	if t.Fraction > 0 {
		k = min(k, int(math.Ceil(t.Fraction*float64(n)-1e-9)))
	}
	if t.Count > 0 {
		k = min(k, t.Count)
	}
	out := slices.Clone(cands)
	if k < n {
		r.Shuffle(n, func(i, j int) { out[i], out[j] = out[j], out[i] })
		out = out[:k]
	}
	sort.Strings(out)
	return out
}

// Inject starts a fault and returns what it hit. A spec that is wrong in any way, or selects
// nothing, changes nothing.
func (f *Fleet) Inject(ctx context.Context, spec FaultSpec) (Injection, error) {
	dsns, units, err := f.Select(spec)
	if err != nil {
		return Injection{}, err
	}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return Injection{}, ErrClosed
	}
	f.seq++
	id := fmt.Sprintf("f%d-%s", f.seq, spec.Kind)
	f.mu.Unlock()
	inj := Injection{ID: id, Kind: spec.Kind, DSNs: dsns, Units: units, At: f.now()}
	if units == nil {
		err = f.dep.Command(ctx, engine.Command{Op: engine.OpInject, Injection: id, Misbehaviour: spec.Kind,
			Params: spec.Params, DSNs: dsns, Spread: spec.Spread})
	} else {
		err = f.unitFault(ctx, units, driver.UnitFault(spec.Kind), true, spec.Spread, spec.Seed)
	}
	if err != nil {
		return Injection{}, err
	}
	a := &active{inj: inj, spec: spec}
	if spec.Duration > 0 {
		inj.Until = inj.At.Add(spec.Duration)
		a.inj = inj
		a.timer = time.AfterFunc(spec.Duration, func() {
			f.mu.Lock()
			if f.closed {
				f.mu.Unlock()
				return
			}
			f.wg.Add(1)
			f.mu.Unlock()
			defer f.wg.Done()
			if err := f.Recover(context.Background(), inj); err != nil && !errors.Is(err, ErrClosed) {
				f.cfg.Logger.Warn("fault did not recover by itself", "injection", id, "err", err)
			}
		})
	}
	f.mu.Lock()
	f.injections[id] = a
	f.mu.Unlock()
	return inj, nil
}

// unitFault applies a unit fault to units, spread over a window.
func (f *Fleet) unitFault(ctx context.Context, units []string, kind driver.UnitFault, on bool, spread time.Duration, seed uint64) error {
	if spread <= 0 {
		var errs []error
		for _, u := range units {
			if err := f.dep.UnitFault(ctx, u, kind, on); err != nil {
				errs = append(errs, fmt.Errorf("unit %s: %w", u, err))
			}
		}
		return errors.Join(errs...)
	}
	r := rand.New(rand.NewPCG(seed, rand.Uint64()))
	for _, u := range units {
		f.wg.Add(1)
		time.AfterFunc(time.Duration(r.Int64N(int64(spread))), func() {
			defer f.wg.Done()
			if err := f.dep.UnitFault(context.WithoutCancel(ctx), u, kind, on); err != nil {
				f.cfg.Logger.Warn("unit fault failed", "unit", u, "fault", kind, "err", err)
			}
		})
	}
	return nil
}

// Recover ends an injection (before its Duration, if it has one). Recovering twice is a no-op.
func (f *Fleet) Recover(ctx context.Context, inj Injection) error {
	f.mu.Lock()
	a, ok := f.injections[inj.ID]
	if !ok {
		f.mu.Unlock()
		return fmt.Errorf("%w: no injection %q", ErrFault, inj.ID)
	}
	if f.closed {
		f.mu.Unlock()
		return ErrClosed
	}
	if a.recovered {
		f.mu.Unlock()
		return nil
	}
	a.recovered = true
	if a.timer != nil {
		a.timer.Stop()
	}
	f.mu.Unlock()
	if a.inj.Units != nil {
		if driver.UnitFault(a.inj.Kind) == driver.UnitRestart {
			return nil
		}
		return f.unitFault(ctx, a.inj.Units, driver.UnitFault(a.inj.Kind), false, 0, 0)
	}
	return f.dep.Command(ctx, engine.Command{Op: engine.OpRecover, Injection: a.inj.ID})
}

// Injections lists the injections that have not been recovered.
func (f *Fleet) Injections() []Injection {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Injection
	for _, a := range f.injections {
		if !a.recovered {
			out = append(out, a.inj)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].At.Before(out[j].At) || out[i].At.Equal(out[j].At) && out[i].ID < out[j].ID
	})
	return out
}

// UnitProxy returns the proxy in front of a unit's bus connection, where network faults impair
// its link. Drivers put one before every unit when Config.UnitProxies is set (the process and
// docker drivers always do).
func (f *Fleet) UnitProxy(unit string) (*netproxy.Proxy, error) {
	if _, ok := f.unitIdx[unit]; !ok {
		return nil, fmt.Errorf("%w: %q", driver.ErrUnknownUnit, unit)
	}
	l, ok := f.dep.(driver.Linked)
	if !ok {
		return nil, fmt.Errorf("%w: driver %s has no unit links", driver.ErrUnsupported, f.cfg.Driver)
	}
	px, ok := l.UnitProxy(unit)
	if !ok {
		return nil, fmt.Errorf("%w: unit %s has no proxy (set UnitProxies)", driver.ErrUnsupported, unit)
	}
	return px, nil
}
