package engine

import (
	"fmt"
	"slices"
	"time"

	"github.com/dsnscale/dsnscale/simdsn/record"
	"github.com/dsnscale/dsnscale/simdsn/sched"
	"github.com/dsnscale/dsnscale/simdsn/stage"
)

// Command operations.
const (
	// OpStart boots DSNs that are off.
	OpStart = "start"
	// OpStop turns DSNs off.
	OpStop = "stop"
	// OpInject starts a misbehaviour on DSNs.
	OpInject = "inject"
	// OpRecover ends an injection on DSNs.
	OpRecover = "recover"
	// OpReport has DSNs record their state and applied revision again, changed or not: for an
	// observer that lost sight of them for a while.
	OpReport = "report"
)

// Command tells DSNs to do something. It is plain data, so it can travel to another process.
type Command struct {
	Op string `json:"op"`
	// DSNs names the DSNs; empty means all of the engine's (for recover: all of the
	// injection's).
	DSNs []string `json:"dsns,omitempty"`
	// Spread spreads the command over a window: each DSN acts at a uniformly random point in
	// [0, Spread).
	Spread time.Duration `json:"spread,omitempty"`
	// Injection identifies an inject and the recover that ends it.
	Injection    string            `json:"injection,omitempty"`
	Misbehaviour string            `json:"misbehaviour,omitempty"`
	Params       map[string]string `json:"params,omitempty"`
}

type cmdEvent struct {
	op  string
	inj *injection
}

// Do checks a command completely, then hands it to the DSNs. A command that is wrong in any way
// changes nothing.
func (e *Engine) Do(cmd Command) error {
	targets := make([]int32, 0, len(cmd.DSNs))
	for _, id := range cmd.DSNs {
		n, ok := e.byID[id]
		if !ok {
			return fmt.Errorf("%w: %q", ErrUnknownDSN, id)
		}
		targets = append(targets, n)
	}
	if cmd.Spread < 0 {
		return fmt.Errorf("%w: spread %v is negative", ErrCommand, cmd.Spread)
	}
	var inj *injection
	switch cmd.Op {
	case OpStart, OpStop, OpReport:
	case OpInject:
		if cmd.Injection == "" {
			return fmt.Errorf("%w: inject needs an injection id", ErrCommand)
		}
		m, ok := e.reg.Misbehaviour(cmd.Misbehaviour)
		if !ok {
			return fmt.Errorf("%w: %w: misbehaviour %q", ErrCommand, stage.ErrUnknown, cmd.Misbehaviour)
		}
		ov := stage.Overlay{Name: cmd.Misbehaviour, Params: cmd.Params}
		if len(targets) == 0 {
			targets = e.all()
		}
		// Compile once per kind of DSN now, so a bad parameter fails here and not on a worker.
		seen := map[*lgroup]bool{}
		for _, n := range targets {
			g := e.dsns[n].g
			if seen[g] {
				continue
			}
			seen[g] = true
			if _, err := e.reg.Compile(g.base, append(slices.Clone(g.overlays), ov)); err != nil {
				return fmt.Errorf("%w: %w", ErrCommand, err)
			}
		}
		e.mu.Lock()
		if _, dup := e.injections[cmd.Injection]; dup {
			e.mu.Unlock()
			return fmt.Errorf("%w: injection %q already exists", ErrCommand, cmd.Injection)
		}
		inj = &injection{id: cmd.Injection, ov: ov, mis: m, dsns: map[int32]bool{}, order: len(e.injections)}
		for _, n := range targets {
			inj.dsns[n] = true
		}
		e.injections[cmd.Injection] = inj
		e.mu.Unlock()
	case OpRecover:
		e.mu.Lock()
		inj = e.injections[cmd.Injection]
		if inj == nil {
			e.mu.Unlock()
			return fmt.Errorf("%w: no injection %q", ErrCommand, cmd.Injection)
		}
		if len(targets) == 0 {
			for n := range inj.dsns {
				targets = append(targets, n)
			}
			slices.Sort(targets)
			delete(e.injections, cmd.Injection)
		}
		e.mu.Unlock()
	default:
		return fmt.Errorf("%w: unknown op %q", ErrCommand, cmd.Op)
	}
	if len(targets) == 0 {
		targets = e.all()
	}
	r := newRand(e.cfg.Seed ^ e.cmdSeq.Add(1)*0x9e3779b97f4a7c15)
	for _, n := range targets {
		ev := sched.Event{Key: n, Kind: evCmd, Data: &cmdEvent{op: cmd.Op, inj: inj}}
		if cmd.Spread > 0 {
			e.sch.After(time.Duration(r.Int64N(int64(cmd.Spread))), ev)
		} else {
			e.sch.Post(ev)
		}
	}
	return nil
}

// Injections lists the injections in force, sorted.
func (e *Engine) Injections() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]string, 0, len(e.injections))
	for id := range e.injections {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

func (e *Engine) all() []int32 {
	out := make([]int32, len(e.dsns))
	for i := range out {
		out[i] = int32(i)
	}
	return out
}

// command runs on the DSN's worker.
func (e *Engine) command(d *dsn, c *cmdEvent, now time.Time) {
	switch c.op {
	case OpStart:
		if d.state == stage.Off {
			e.enter(d, d.beh.Initial, now)
		}
	case OpStop:
		e.enter(d, d.beh.Off, now)
	case OpReport:
		e.emit(record.Record{At: now.UnixNano(), Type: record.TypeState, DSN: d.id, Unit: d.unit, State: d.state.String(), Stage: d.beh.Stages[d.st].Name})
		e.emit(record.Record{At: now.UnixNano(), Type: record.TypeApplied, DSN: d.id, Revision: d.cur.rev, Detail: "report"})
	case OpInject:
		if slices.Contains(d.injections, c.inj) {
			return
		}
		d.injections = append(d.injections, c.inj)
		e.emit(record.Record{At: now.UnixNano(), Type: record.TypeFault, DSN: d.id, State: "start", Detail: c.inj.ov.Name, Stage: c.inj.id})
		e.fault(d, now, "fault started: "+c.inj.ov.Name)
		e.rebehave(d, now)
		if c.inj.mis.Goto != "" {
			if i, ok := d.beh.Index(c.inj.mis.Goto); ok {
				e.enter(d, i, now)
			}
		}
	case OpRecover:
		i := slices.Index(d.injections, c.inj)
		if i < 0 {
			return
		}
		d.injections = slices.Delete(d.injections, i, i+1)
		e.emit(record.Record{At: now.UnixNano(), Type: record.TypeFault, DSN: d.id, State: "end", Detail: c.inj.ov.Name, Stage: c.inj.id})
		e.rebehave(d, now)
		if c.inj.mis.Recover != "" {
			if i, ok := d.beh.Index(c.inj.mis.Recover); ok {
				e.enter(d, i, now)
			}
		}
		e.fault(d, now, "fault ended: "+c.inj.ov.Name)
	}
}

// rebehave recompiles a DSN's behaviour after its injections changed and keeps it in the stage
// of the same name (or boots it, if the stage is gone).
func (e *Engine) rebehave(d *dsn, now time.Time) {
	ovs := slices.Clone(d.g.overlays)
	for _, inj := range d.injections {
		ovs = append(ovs, inj.ov)
	}
	beh, err := e.reg.Compile(d.g.base, ovs)
	if err != nil {
		e.log.Error("behaviour does not compile", "dsn", d.id, "err", err)
		return
	}
	oldBeh := d.beh
	old := oldBeh.Stages[d.st]
	d.beh = beh
	if beh.Health != oldBeh.Health {
		d.healthSince = now.UnixNano()
	}
	i, ok := beh.Index(old.Name)
	if !ok {
		e.enter(d, beh.Initial, now)
		return
	}
	d.st = int32(i)
	nu := beh.Stages[i]
	if nu.Delay != old.Delay || stageName(beh, nu.Next) != stageName(oldBeh, old.Next) || len(nu.Transitions) != len(old.Transitions) {
		d.timerSeq++
		e.stageTimer(d, &nu)
	}
}

func stageName(b *stage.Behaviour, i int) string {
	if i < 0 || i >= len(b.Stages) {
		return ""
	}
	return b.Stages[i].Name
}
