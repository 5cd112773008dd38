package faults

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Misbehaver is implemented by fleets that can make DSNs misbehave the way the simulator's
// misbehaviours describe (a skewed clock, slow applies, lost acks, a failing disk, a rising
// temperature, a flapping connection). Misbehave starts misbehaviour on ids, each at a point of
// window, with the simulator's parameter names; undo ends it on all of them.
type Misbehaver interface {
	Misbehave(ctx context.Context, misbehaviour string, ids []string, params map[string]string, window time.Duration) (undo func(context.Context) error, err error)
}

// misbehaveParam maps a kind's parameter to the simulator misbehaviour's.
type misbehaveParam struct {
	Param
	sim string
}

// misbehaveKind is a DSN kind carried out by a simulator misbehaviour.
type misbehaveKind struct {
	name, desc, sim string
	params          []misbehaveParam
	check           func(p ParamValues) error
}

func init() {
	for _, k := range misbehaveKinds {
		MustRegister(k)
	}
}

func (k *misbehaveKind) Name() string        { return k.name }
func (k *misbehaveKind) Description() string { return k.desc }
func (k *misbehaveKind) Scope() Scope        { return ScopeDSNs }

func (k *misbehaveKind) Params() []Param {
	out := make([]Param, 0, len(k.params)+1)
	for _, p := range k.params {
		out = append(out, p.Param)
	}
	return append(out, paramWindow)
}

// CheckSpec checks what the kind asks of its values beyond their types.
func (k *misbehaveKind) CheckSpec(spec Spec) error {
	if k.check == nil {
		return nil
	}
	return k.check(ParamValues{Decl: k.Params(), Got: spec.Params})
}

func (k *misbehaveKind) New(spec Spec, env Env) (Fault, error) {
	m, ok := env.Fleet.(Misbehaver)
	if !ok {
		return nil, fmt.Errorf("%w: %s needs the simulated fleet", ErrUnsupported, k.name)
	}
	if err := k.CheckSpec(spec); err != nil {
		return nil, err
	}
	p := ParamValues{Decl: k.Params(), Got: spec.Params}
	window, err := p.Duration("window")
	if err != nil {
		return nil, err
	}
	sim := map[string]string{}
	for _, mp := range k.params {
		v, ok := spec.Params[mp.Name]
		if !ok {
			v = mp.Default
		}
		sim[mp.sim] = v
	}
	return &misbehaveFault{kind: k, env: env, m: m, target: spec.Target, params: sim, window: window}, nil
}

// misbehaveFault makes the selected DSNs misbehave until recovered.
type misbehaveFault struct {
	kind   *misbehaveKind
	env    Env
	m      Misbehaver
	target Target
	params map[string]string
	window time.Duration

	mu        sync.Mutex
	affected  []string
	undo      func(context.Context) error
	recovered bool
}

// Affected lists the misbehaving DSNs.
func (f *misbehaveFault) Affected() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.affected...)
}

// Inject starts the misbehaviour on the selection and waits out the window, so that it returns
// once every DSN misbehaves.
func (f *misbehaveFault) Inject(ctx context.Context) error {
	ids, err := Select(f.env.Fleet.DSNs(), f.target, f.env.Seed)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		f.env.logger().Info("fault chose no DSN", "kind", f.kind.name, "probability", f.target.Probability)
		return nil
	}
	f.mu.Lock()
	if f.recovered {
		f.mu.Unlock()
		return errors.New("recovered before injection")
	}
	undo, err := f.m.Misbehave(ctx, f.kind.sim, ids, f.params, f.window)
	if err != nil {
		f.mu.Unlock()
		return fmt.Errorf("%s on %d DSNs: %w", f.kind.sim, len(ids), err)
	}
	f.undo, f.affected = undo, ids
	f.mu.Unlock()
	f.env.logger().Info("fault injected", "kind", f.kind.name, "dsns", len(ids), "window", f.window)
	return sleep(ctx, f.env.clock(), f.window)
}

// Recover ends the misbehaviour, once.
func (f *misbehaveFault) Recover(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.recovered {
		return nil
	}
	f.recovered = true
	if f.undo == nil {
		return nil
	}
	return f.undo(ctx)
}

func positive(name string) func(p ParamValues) error {
	return func(p ParamValues) error {
		if n, _ := p.Int(name); n <= 0 {
			return specErr("params."+name, "must be above 0")
		}
		return nil
	}
}

var misbehaveKinds = []*misbehaveKind{
	{
		name: "dsn-clock-skew", sim: "clock-skew", desc: "skew DSNs' clocks: every timestamp they send is shifted",
		params: []misbehaveParam{{Param{Name: "skew", Type: TypeString, Default: "5m",
			Description: "how far the clocks are off; negative for behind (-1h)"}, "skew"}},
		check: func(p ParamValues) error {
			s, _ := p.String("skew")
			d, err := time.ParseDuration(s)
			if err != nil {
				return specErr("params.skew", "%q is not a duration (such as 5m or -1h)", s)
			}
			if d == 0 {
				return specErr("params.skew", "must not be 0")
			}
			return nil
		},
	},
	{
		name: "dsn-slow-apply", sim: "slow-apply", desc: "make DSNs slow to apply config",
		params: []misbehaveParam{{Param{Name: "delay", Type: TypeDuration, Default: "5s",
			Description: "how long each apply takes"}, "delay"}},
	},
	{
		name: "dsn-drop-acks", sim: "drop-acks", desc: "DSNs apply config but their acks are lost",
		params: []misbehaveParam{{Param{Name: "probability", Type: TypeFraction, Default: "1",
			Description: "share of acks lost, 0-1"}, "probability"}},
	},
	{
		name: "dsn-disk-degraded", sim: "disk-degradation", desc: "DSNs' disk health falls steadily while the fault lasts",
		params: []misbehaveParam{{Param{Name: "loss-per-hour", Type: TypeInt, Default: "20",
			Description: "points of disk health lost per hour; above 0"}, "lossPerHour"}},
		check: positive("loss-per-hour"),
	},
	{
		name: "dsn-temperature", sim: "temperature-rise", desc: "DSNs' temperature climbs steadily while the fault lasts",
		params: []misbehaveParam{{Param{Name: "rise-per-minute", Type: TypeInt, Default: "2",
			Description: "degrees Celsius per minute; above 0"}, "risePerMinute"}},
		check: positive("rise-per-minute"),
	},
	{
		name: "dsn-flap", sim: "flapping", desc: "DSNs' management connections drop every so often and come back",
		params: []misbehaveParam{
			{Param{Name: "period", Type: TypeDuration, Default: "20s", Description: "time connected between drops"}, "period"},
			{Param{Name: "down", Type: TypeDuration, Default: "3s", Description: "time down at each drop"}, "down"},
		},
		check: func(p ParamValues) error {
			if d, _ := p.Duration("period"); d <= 0 {
				return specErr("params.period", "must be above 0")
			}
			return nil
		},
	},
}
