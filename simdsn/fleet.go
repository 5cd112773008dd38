// Package simdsn simulates fleets of DSNs against a control plane that speaks the southbound
// protocol (package controlplane/wire). A Fleet lays out DSNs from a traffic-pattern map
// (package trafficmap), runs them with a driver (in process, in child processes, in
// containers, as Docker Swarm services), injects faults into them, and collects what every DSN went through (package
// record) the same way whatever the driver.
//
// The parts: stage (behaviour as data), trafficmap (workload), engine (the DSN state machine on
// a shared scheduler), dataplane (policy decisions and counters), bus (NATS links), record
// (reports), driver (the driver interface and registry) and the drivers inproc, process,
// docker and swarm.
package simdsn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/dsnscale/dsnscale/simdsn/bus"
	"github.com/dsnscale/dsnscale/simdsn/driver"
	"github.com/dsnscale/dsnscale/simdsn/engine"
	"github.com/dsnscale/dsnscale/simdsn/record"
	"github.com/dsnscale/dsnscale/simdsn/stage"
	"github.com/dsnscale/dsnscale/simdsn/trafficmap"

	// The drivers register themselves.
	_ "github.com/dsnscale/dsnscale/simdsn/docker"
	_ "github.com/dsnscale/dsnscale/simdsn/inproc"
	_ "github.com/dsnscale/dsnscale/simdsn/kube"
	_ "github.com/dsnscale/dsnscale/simdsn/process"
	_ "github.com/dsnscale/dsnscale/simdsn/swarm"
)

// Sentinel errors.
var (
	ErrConfig   = errors.New("simdsn: invalid config")
	ErrFault    = errors.New("simdsn: invalid fault")
	ErrNoTarget = errors.New("simdsn: the target selects nothing")
	ErrClosed   = errors.New("simdsn: fleet closed")
)

// Config configures a Fleet. It is pure data (a logger and a clock apart); Validate checks it.
type Config struct {
	// Driver names the fleet driver (default "inproc").
	Driver string
	// NATSURL is the control plane's NATS URL (required).
	NATSURL string
	// Count is the number of DSNs (0: the map's own count).
	Count int
	// Map is the traffic-pattern map (nil: the embedded default).
	Map *trafficmap.Map
	// Stages holds the stage sets and misbehaviours (nil: the embedded defaults).
	Stages *stage.Registry
	// IDPrefix starts every DSN id (default "sim-").
	IDPrefix string
	// Conn is how DSNs connect: bus.Shared or bus.PerDSN. The default is bus.Shared, or
	// bus.PerDSN when Security holds only a DSN bootstrap token.
	Conn bus.Mode
	// DSNsPerConn is how many DSNs share a connection in shared mode (default 1000).
	DSNsPerConn int
	// PingInterval is how often connections check the server is there (default 10s).
	PingInterval time.Duration
	// UnitProxies puts a loopback proxy before each unit (always on for process, docker and swarm).
	UnitProxies bool
	// Seed makes the fleet's random draws repeatable (0 picks one).
	Seed uint64
	// Workers is the worker pool size of each engine (default 2).
	Workers int
	// WorkDir holds driver files (default: a new temporary directory, removed by Close).
	WorkDir string
	// Binary is the dsnscale binary for the process, docker and swarm drivers (default: this
	// executable).
	Binary string
	// HarnessListen and HarnessAdvertise place the harness link (and the units' bus proxies)
	// for drivers whose units run outside the harness process (empty: loopback).
	HarnessListen, HarnessAdvertise string
	// Security, when set, is how DSNs get their bus identities from a control plane that
	// requires mutual TLS: with a gateway token (shared connections) the fleet obtains one
	// gateway identity for all its units; with a DSN token (per-DSN connections) each DSN admits
	// itself. Nil connects in plain text.
	Security *bus.Security
	Logger   *slog.Logger
	// Now is the harness clock (default time.Now).
	Now func() time.Time
}

// Validate checks the configuration; the stage registry and map are checked against each other.
func (c Config) Validate() error {
	var errs []error
	if c.NATSURL == "" {
		errs = append(errs, errors.New("NATSURL: required (the control plane's NATS URL)"))
	} else if _, err := driver.HostPorts(c.NATSURL); err != nil {
		errs = append(errs, fmt.Errorf("NATSURL: %w", err))
	}
	if c.Count < 0 {
		errs = append(errs, fmt.Errorf("Count: %d must not be negative", c.Count))
	}
	if c.Driver != "" {
		if _, err := driver.Lookup(c.Driver); err != nil {
			errs = append(errs, fmt.Errorf("Driver: %w", err))
		}
	}
	switch c.Conn {
	case "", bus.Shared, bus.PerDSN:
	default:
		errs = append(errs, fmt.Errorf("Conn: %q, want %q or %q", c.Conn, bus.Shared, bus.PerDSN))
	}
	if c.Security != nil {
		conn := c.Conn
		if conn == "" && onlyDSNToken(c.Security) {
			conn = bus.PerDSN
		}
		switch {
		case c.Security.CA == "":
			errs = append(errs, errors.New("Security.CA: required (the control plane's ca.crt)"))
		case conn == bus.PerDSN && (c.Security.BootstrapToken == "" || c.Security.APIURL == ""):
			errs = append(errs, errors.New("Security: per-DSN connections need APIURL and a DSN BootstrapToken"))
		case conn != bus.PerDSN && c.Security.GatewayCert == "" && (c.Security.GatewayToken == "" || c.Security.APIURL == ""):
			errs = append(errs, errors.New("Security: shared connections need a gateway identity, or APIURL and a GatewayToken to obtain one"))
		}
	}
	if c.DSNsPerConn < 0 || c.Workers < 0 || c.PingInterval < 0 {
		errs = append(errs, errors.New("DSNsPerConn, Workers and PingInterval must not be negative"))
	}
	if c.Map != nil {
		reg := c.Stages
		if reg == nil {
			reg = stage.Default()
		}
		if err := c.Map.Validate(reg); err != nil {
			errs = append(errs, fmt.Errorf("Map: %w", err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	return nil
}

// DSNInfo describes one DSN of a fleet.
type DSNInfo struct {
	ID     string            `json:"id"`
	Group  string            `json:"group"`
	Site   string            `json:"site"`
	Rack   string            `json:"rack"`
	Unit   string            `json:"unit"`
	Labels map[string]string `json:"labels"`
}

// UnitInfo describes one unit (a rack: a failure domain, a process, a container).
type UnitInfo struct {
	Name string   `json:"name"`
	Site string   `json:"site"`
	Rack string   `json:"rack"`
	DSNs []string `json:"dsns"`
}

// Fleet is a running simulated fleet.
type Fleet struct {
	cfg     Config
	plan    *driver.Plan
	dep     driver.Deployment
	col     *record.Collector
	dsns    []DSNInfo
	byID    map[string]int
	units   []UnitInfo
	unitIdx map[string]int
	tmpDir  string
	now     func() time.Time

	mu         sync.Mutex
	injections map[string]*active
	seq        int
	closed     bool
	wg         sync.WaitGroup
}

// New lays out the fleet and launches it with every DSN off; Start boots them.
func New(ctx context.Context, cfg Config) (*Fleet, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Driver == "" {
		cfg.Driver = "inproc"
	}
	if cfg.Stages == nil {
		cfg.Stages = stage.Default()
	}
	if cfg.Map == nil {
		cfg.Map = trafficmap.Default()
	}
	if cfg.IDPrefix == "" {
		cfg.IDPrefix = "sim-"
	}
	if cfg.Conn == "" && onlyDSNToken(cfg.Security) {
		// A DSN bootstrap token admits DSNs one by one: each needs its own connection.
		cfg.Conn = bus.PerDSN
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Binary == "" {
		if exe, err := os.Executable(); err == nil {
			cfg.Binary = exe
		}
	}
	drv, err := driver.Lookup(cfg.Driver)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	units, placements, err := planUnits(cfg.Map, cfg.Count, cfg.IDPrefix)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	f := &Fleet{cfg: cfg, byID: map[string]int{}, unitIdx: map[string]int{}, now: cfg.Now, injections: map[string]*active{}}
	if cfg.WorkDir == "" {
		dir, err := os.MkdirTemp("", "dsnscale-sim-")
		if err != nil {
			return nil, err
		}
		cfg.WorkDir, f.tmpDir = dir, dir
		f.cfg.WorkDir = dir
	}
	var sec *bus.Security
	if cfg.Security != nil {
		c := *cfg.Security
		sec = &c
		if cfg.Conn != bus.PerDSN {
			// One gateway identity for the whole fleet, its key made here, handed to the units.
			name := fmt.Sprintf("%sgateway-%08x", cfg.IDPrefix, rand.Uint32())
			if err := bus.ObtainGateway(ctx, sec, name); err != nil {
				f.removeTmp()
				return nil, fmt.Errorf("simdsn: fleet gateway identity: %w", err)
			}
			sec.GatewayToken = ""
		}
	}
	plan := &driver.Plan{Map: cfg.Map, Stages: cfg.Stages, Seed: cfg.Seed, Workers: cfg.Workers,
		WorkDir: cfg.WorkDir, Binary: cfg.Binary, Logger: cfg.Logger, UnitProxies: cfg.UnitProxies,
		HarnessListen: cfg.HarnessListen, HarnessAdvertise: cfg.HarnessAdvertise,
		Bus: bus.Config{URL: cfg.NATSURL, Mode: cfg.Conn, DSNsPerConn: cfg.DSNsPerConn, PingInterval: cfg.PingInterval,
			Security: sec, Logger: cfg.Logger}}
	plan.Units = units
	expect := map[string]string{}
	for i, u := range units {
		f.unitIdx[u.Name] = i
		f.units = append(f.units, UnitInfo{Name: u.Name, Site: u.Site, Rack: u.Rack})
	}
	for _, p := range placements {
		i := f.unitIdx[p.Rack]
		f.units[i].DSNs = append(f.units[i].DSNs, p.ID)
		f.byID[p.ID] = len(f.dsns)
		f.dsns = append(f.dsns, DSNInfo{ID: p.ID, Group: p.Group, Site: p.Site, Rack: p.Rack, Unit: p.Rack, Labels: p.Labels})
		expect[p.ID] = p.Rack
	}
	f.plan = plan
	f.col = record.NewCollector(cfg.Now)
	f.col.Expect(expect)
	dep, err := drv.Launch(ctx, plan, f.col.Writer())
	if err != nil {
		f.removeTmp()
		return nil, fmt.Errorf("simdsn: launching with driver %s: %w", cfg.Driver, err)
	}
	f.dep = dep
	return f, nil
}

// PlanUnits places count DSNs (0: the map's own count) on the map and groups them into units,
// one per rack, in the order their racks first appear.
func PlanUnits(m *trafficmap.Map, count int, prefix string) ([]driver.Unit, error) {
	units, _, err := planUnits(m, count, prefix)
	return units, err
}

func planUnits(m *trafficmap.Map, count int, prefix string) ([]driver.Unit, []trafficmap.Placement, error) {
	placements, err := m.Place(count, prefix)
	if err != nil {
		return nil, nil, err
	}
	var units []driver.Unit
	idx := map[string]int{}
	for _, p := range placements {
		i, ok := idx[p.Rack]
		if !ok {
			i = len(units)
			idx[p.Rack] = i
			units = append(units, driver.Unit{Name: p.Rack, Site: p.Site, Rack: p.Rack})
		}
		units[i].DSNs = append(units[i].DSNs, engine.DSNSpec{ID: p.ID, Group: p.Group, Unit: p.Rack, Labels: p.Labels})
	}
	return units, placements, nil
}

// Start boots every DSN that is off, each at a random point of spread (0: all at once).
func (f *Fleet) Start(ctx context.Context, spread time.Duration) error {
	return f.command(ctx, engine.Command{Op: engine.OpStart, Spread: spread})
}

// Stop turns DSNs off (all of them if ids is empty).
func (f *Fleet) Stop(ctx context.Context, ids ...string) error {
	return f.command(ctx, engine.Command{Op: engine.OpStop, DSNs: ids})
}

func (f *Fleet) command(ctx context.Context, cmd engine.Command) error {
	f.mu.Lock()
	closed := f.closed
	f.mu.Unlock()
	if closed {
		return ErrClosed
	}
	return f.dep.Command(ctx, cmd)
}

// Reports is where every DSN's records are collected.
func (f *Fleet) Reports() *record.Collector { return f.col }

// DSNs lists the fleet's DSNs in id order.
func (f *Fleet) DSNs() []DSNInfo { return append([]DSNInfo(nil), f.dsns...) }

// Units lists the fleet's units.
func (f *Fleet) Units() []UnitInfo { return append([]UnitInfo(nil), f.units...) }

// UnitUsage is what each unit running outside the harness reported of its own resource use
// and host; units in the harness process report nothing.
func (f *Fleet) UnitUsage() map[string]record.UnitUsage { return f.col.Usage() }

// Size is the number of DSNs.
func (f *Fleet) Size() int { return len(f.dsns) }

// Driver is the name of the fleet's driver.
func (f *Fleet) Driver() string { return f.cfg.Driver }

// Map is the traffic map the fleet was laid out from.
func (f *Fleet) Map() *trafficmap.Map { return f.cfg.Map }

// Deployment is the driver's handle, for what only a driver knows (resource use).
func (f *Fleet) Deployment() driver.Deployment { return f.dep }

// WaitFor blocks until cond holds for the collected summary or ctx ends.
func (f *Fleet) WaitFor(ctx context.Context, cond func(record.Summary) bool) error {
	return f.col.WaitFor(ctx, cond)
}

// Close recovers nothing: it stops every DSN and everything the driver started.
func (f *Fleet) Close(ctx context.Context) error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	for _, a := range f.injections {
		if a.timer != nil {
			a.timer.Stop()
		}
	}
	f.mu.Unlock()
	f.wg.Wait()
	err := f.dep.Close(ctx)
	f.removeTmp()
	return err
}

func (f *Fleet) removeTmp() {
	if f.tmpDir != "" {
		_ = os.RemoveAll(f.tmpDir)
	}
}

// onlyDSNToken reports whether sec admits DSNs with a DSN bootstrap token and holds no gateway
// credential.
func onlyDSNToken(sec *bus.Security) bool {
	return sec != nil && sec.BootstrapToken != "" && sec.GatewayToken == "" && sec.GatewayCert == ""
}
