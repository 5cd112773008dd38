// Package engine runs many simulated DSNs in one process. Each DSN is a plain struct driven by
// the stage tables of its behaviour (package stage): entering a stage starts its action and
// its timer, and every answer from the bus, timer or command comes back as an event on the
// worker that owns the DSN. One timer heap and a few workers (package sched) carry the whole
// fleet, so a sleeping DSN costs memory, not a goroutine.
//
// DSNs speak the southbound protocol of package wire over package bus, keep their applied
// config in a cache across restarts (static stability), run a simulated data plane (package
// dataplane) whose counters travel in their telemetry, and report every state change through
// package record.
package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/dsnscale/dsnscale/controlplane/wire"
	"github.com/dsnscale/dsnscale/simdsn/bus"
	"github.com/dsnscale/dsnscale/simdsn/dataplane"
	"github.com/dsnscale/dsnscale/simdsn/record"
	"github.com/dsnscale/dsnscale/simdsn/sched"
	"github.com/dsnscale/dsnscale/simdsn/stage"
	"github.com/dsnscale/dsnscale/simdsn/trafficmap"
)

// Sentinel errors.
var (
	ErrConfig     = errors.New("engine: invalid config")
	ErrUnknownDSN = errors.New("engine: unknown DSN")
	ErrCommand    = errors.New("engine: invalid command")
)

// SoftwareVersion is what simulated DSNs report in Hello.
const SoftwareVersion = "dsnscale-sim/1"

// Config configures an Engine. It is pure data apart from its interfaces.
type Config struct {
	// Bus links DSNs to the control plane (required).
	Bus bus.Bus
	// Stages holds the behaviours (default: stage.Default()).
	Stages *stage.Registry
	// Map gives each group's workload (required).
	Map *trafficmap.Map
	// Records receives the DSNs' records as JSON lines (required).
	Records io.Writer
	// CacheDir, if set, keeps each DSN's applied config in a small file there; otherwise in
	// memory.
	CacheDir string
	// Clock; nil is the system clock.
	Clock sched.Clock
	// Workers is the size of the worker pool (default 2).
	Workers int
	// Seed makes random draws repeatable (0 picks one).
	Seed   uint64
	Logger *slog.Logger
}

// DSNSpec is one DSN to simulate.
type DSNSpec struct {
	ID     string            `json:"id"`
	Group  string            `json:"group"`
	Unit   string            `json:"unit,omitempty"`
	Labels map[string]string `json:"labels"`
}

// Stats counts what the engine sent.
type Stats struct {
	Messages, Bytes       int64
	Heartbeats, Telemetry int64
	Events, Acks, Hellos  int64
}

type stats struct {
	messages, bytes, heartbeats, telemetry, events, acks, hellos atomic.Int64
}

// Engine runs a set of DSNs.
type Engine struct {
	cfg   Config
	log   *slog.Logger
	bus   bus.Bus
	sch   *sched.Scheduler
	enc   *record.Encoder
	cfgs  *configs
	cache cache
	reg   *stage.Registry

	dsns   []*dsn
	byID   map[string]int32
	groups map[string]*lgroup

	mu         sync.Mutex
	injections map[string]*injection

	scratch [][]byte
	st      stats
	cmdSeq  atomic.Uint64
}

type injection struct {
	id    string
	ov    stage.Overlay
	mis   *stage.Misbehaviour
	dsns  map[int32]bool
	order int
}

// New builds an engine for dsns; nothing runs until Run, and DSNs stay off until a start
// command.
func New(cfg Config, dsns []DSNSpec) (*Engine, error) {
	if cfg.Stages == nil {
		cfg.Stages = stage.Default()
	}
	var errs []error
	if cfg.Bus == nil {
		errs = append(errs, errors.New("Bus: required"))
	}
	if cfg.Map == nil {
		errs = append(errs, errors.New("Map: required"))
	}
	if cfg.Records == nil {
		errs = append(errs, errors.New("Records: required"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = sched.Real{}
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.Seed == 0 {
		cfg.Seed = rand.Uint64()
	}
	e := &Engine{cfg: cfg, log: cfg.Logger, bus: cfg.Bus, enc: record.NewEncoder(cfg.Records), cfgs: newConfigs(),
		reg: cfg.Stages, byID: make(map[string]int32, len(dsns)), groups: map[string]*lgroup{},
		injections: map[string]*injection{}}
	e.sch = sched.New(sched.Config{Clock: cfg.Clock, Workers: cfg.Workers}, e.handle)
	e.scratch = make([][]byte, cfg.Workers)
	if cfg.CacheDir != "" {
		fc, err := newFileCache(cfg.CacheDir, e.cfgs, e.log)
		if err != nil {
			return nil, err
		}
		e.cache = fc
	} else {
		e.cache = newMemCache()
	}
	for i, s := range dsns {
		if !wire.ValidID(s.ID) {
			errs = append(errs, fmt.Errorf("dsns[%d].id: %q is not a DSN id", i, s.ID))
			continue
		}
		if _, dup := e.byID[s.ID]; dup {
			errs = append(errs, fmt.Errorf("dsns[%d].id: %q is used twice", i, s.ID))
			continue
		}
		g, err := e.group(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("dsns[%d]: %w", i, err))
			continue
		}
		n := int32(len(e.dsns))
		d := &dsn{idx: n, id: s.ID, unit: s.Unit, g: g, beh: g.beh, lastRecStage: -1}
		d.pcg = *rand.NewPCG(cfg.Seed, uint64(n)*0x9e3779b97f4a7c15+1)
		d.r = rand.New(&d.pcg)
		d.st = int32(g.beh.Off)
		d.state = stage.Off
		d.hb = cfg.Map.Heartbeat
		e.dsns = append(e.dsns, d)
		e.byID[s.ID] = n
		e.bus.Register(n, s.ID, s.Unit, s.Labels)
	}
	if len(errs) > 0 {
		_ = e.cache.Close()
		return nil, fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	return e, nil
}

// Len is the number of DSNs.
func (e *Engine) Len() int { return len(e.dsns) }

// IDs lists the DSN ids in engine order.
func (e *Engine) IDs() []string {
	out := make([]string, len(e.dsns))
	for i, d := range e.dsns {
		out[i] = d.id
	}
	return out
}

// Stats returns what the engine has sent so far.
func (e *Engine) Stats() Stats {
	s := &e.st
	return Stats{Messages: s.messages.Load(), Bytes: s.bytes.Load(), Heartbeats: s.heartbeats.Load(),
		Telemetry: s.telemetry.Load(), Events: s.events.Load(), Acks: s.acks.Load(), Hellos: s.hellos.Load()}
}

// Pending is the number of timers waiting (superseded ones included).
func (e *Engine) Pending() int { return e.sch.Pending() }

// Run connects the bus and runs the DSNs until ctx ends; then it closes the bus and flushes
// the cache.
func (e *Engine) Run(ctx context.Context) error {
	if err := e.bus.Start(e.deliver); err != nil {
		return err
	}
	e.sch.Run(ctx)
	e.bus.Close()
	return e.cache.Close()
}

func (e *Engine) deliver(d bus.Delivery) {
	e.sch.Post(sched.Event{Key: d.DSN, Kind: evBus, Data: d})
}

// lgroup is what DSNs with the same group and labels share.
type lgroup struct {
	name     string
	labels   map[string]string
	mg       *trafficmap.Group
	base     string
	overlays []stage.Overlay
	beh      *stage.Behaviour
	series   []series

	mu      sync.Mutex
	tables  map[*objectSet]*dataplane.Table
	denyAll *dataplane.Table
}

func (e *Engine) group(s DSNSpec) (*lgroup, error) {
	key := s.Group + "\x00" + fmt.Sprint(s.Labels)
	if g, ok := e.groups[key]; ok {
		return g, nil
	}
	mg, ok := e.cfg.Map.Group(s.Group)
	if !ok {
		return nil, fmt.Errorf("group: %q is not in map %s", s.Group, e.cfg.Map.Name)
	}
	g := &lgroup{name: s.Group, labels: s.Labels, mg: mg, base: mg.Stages, tables: map[*objectSet]*dataplane.Table{}}
	if g.base == "" {
		g.base = stage.DefaultSet
	}
	for _, m := range mg.Misbehaviours {
		g.overlays = append(g.overlays, stage.Overlay{Name: m})
	}
	beh, err := e.reg.Compile(g.base, g.overlays)
	if err != nil {
		return nil, err
	}
	g.beh = beh
	g.denyAll = dataplane.NewTable(nil, mg.Traffic.Flows)
	g.series = buildSeries(mg.Telemetry.Series)
	e.groups[key] = g
	return g, nil
}

// table decides the group's flow mix under an object set (cached per set).
func (g *lgroup) table(s *objectSet) *dataplane.Table {
	if s == nil {
		return g.denyAll
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if t, ok := g.tables[s]; ok {
		return t
	}
	policies, _ := dataplane.PoliciesFor(s.list, g.labels)
	t := dataplane.NewTable(policies, g.mg.Traffic.Flows)
	if len(g.tables) >= 64 {
		clear(g.tables)
	}
	g.tables[s] = t
	return t
}

func (e *Engine) emit(r record.Record) {
	if err := e.enc.Emit(r); err != nil {
		e.log.Debug("record not written", "err", err)
	}
}
