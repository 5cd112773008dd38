// Package runner runs scenarios: it starts the scenario's control plane (package cptarget) and a
// simulated fleet, runs the steps' actions, drives northbound load, injects faults at the times
// the scenario says, computes measurements from what the DSNs report and what the control
// plane's public API says, judges the SLOs and writes the run's report.
package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dsnscale/dsnscale/cptarget"
	"github.com/dsnscale/dsnscale/faults"
	"github.com/dsnscale/dsnscale/reports"
	"github.com/dsnscale/dsnscale/scenarios"
	"github.com/dsnscale/dsnscale/scenarios/measure"
	"github.com/dsnscale/dsnscale/simdsn/driver"
	"github.com/dsnscale/dsnscale/simdsn/netproxy"
	"github.com/dsnscale/dsnscale/tsdb"
)

// Options configure a run.
type Options struct {
	// Dir is the run directory; empty means RunsDir/<id>. It must not hold a previous run.
	Dir string
	// RunsDir is where run directories go by default ("runs").
	RunsDir string
	// Binary is the dsnscale executable for a control plane in process mode and for process
	// fleet drivers (default: $DSNSCALE_BIN, else the running executable).
	Binary string
	// Clock is the engine's time source (default: the system clock).
	Clock Clock
	// Logger receives the engine's logs (default: a text log in the run directory).
	Logger *slog.Logger
	// Progress receives live progress (nil for none): bars when Terminal, plain lines otherwise.
	Progress io.Writer
	Terminal bool
	// SampleInterval is how often the fleet census, resources and series are sampled
	// (default 1s); PollInterval how often the control plane's revision is polled (default
	// 100ms).
	SampleInterval, PollInterval time.Duration
	// Fleets builds the fleet (default: the simulator's drivers).
	Fleets FleetFactory
	// AdmissionDeadline is how long a DSN may stay admitting before the step it is in fails
	// with the reasons the DSNs gave (default DefaultAdmissionDeadline; negative: never).
	AdmissionDeadline time.Duration
	// Watch, when set, is given what the engine saw over each sampling interval while the run
	// goes on, for a caller that decides live (a drill's abort conditions). It must not block:
	// to end the run it cancels the run's context, with a cause the report then gives.
	Watch func(Sample)
}

// FleetFactory builds a fleet; nothing runs until its Launch.
type FleetFactory func(ctx context.Context, cfg FleetConfig, log *slog.Logger) (Fleet, error)

func (o Options) withDefaults() Options {
	if o.RunsDir == "" {
		o.RunsDir = "runs"
	}
	if o.Clock == nil {
		o.Clock = faults.SystemClock{}
	}
	if o.SampleInterval <= 0 {
		o.SampleInterval = time.Second
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 100 * time.Millisecond
	}
	if o.Binary == "" {
		o.Binary = os.Getenv(BinaryEnv)
	}
	if o.Binary == "" {
		o.Binary, _ = os.Executable()
	}
	if o.Fleets == nil {
		o.Fleets = newSimFleet
	}
	if o.AdmissionDeadline == 0 {
		o.AdmissionDeadline = DefaultAdmissionDeadline
	}
	return o
}

// BinaryEnv names the environment variable that points at the dsnscale binary when the running
// executable is not it (a test binary, say).
const BinaryEnv = "DSNSCALE_BIN"

// Outcome is how a run ended.
type Outcome struct {
	// Dir is the run directory holding run.json and the rendered report.
	Dir string
	Run *reports.Run
	// Err is why the run broke or was aborted; nil when it ran to the end (whatever its SLOs).
	Err error
	// Left says what the run could not undo when it stopped: faults whose recovery failed, a
	// fleet that did not shut down, proxies still accepting connections. Empty when it left
	// nothing behind.
	Left []string
}

// Exit codes.
const (
	ExitPass   = 0
	ExitFail   = 1
	ExitInput  = 2
	ExitBroken = 3
)

// ExitCode maps the outcome to the process exit code: 0 pass, 1 an SLO failed, 3 the run broke or
// was aborted.
func (o *Outcome) ExitCode() int {
	switch {
	case o == nil || o.Run == nil:
		return ExitBroken
	case o.Run.Result == reports.ResultPass:
		return ExitPass
	case o.Run.Result == reports.ResultFail:
		return ExitFail
	}
	return ExitBroken
}

// RunID names a run: the UTC start time and the scenario's name.
func RunID(start time.Time, name string) string {
	return start.UTC().Format("20060102T150405Z") + "-" + name
}

// stepRun is what happened in one step.
type stepRun struct {
	name string
	// phase is reports.PhaseSetup for a step's load setup.
	phase      string
	start, end time.Time
	err        error
	timedOut   bool
}

// engine runs one scenario.
type engine struct {
	s     *scenarios.Scenario
	opts  Options
	clock Clock
	log   *slog.Logger
	dir   string
	id    string
	start time.Time

	revisions *measure.Revisions
	acked     *measure.AckedWrites
	requests  *measure.Requests
	resources *measure.Resources
	cpEvents  *measure.CPEvents
	counters  *measure.Counters
	recorder  *faults.Recorder
	series    *seriesWriter

	cp    cptarget.Target
	fleet Fleet
	prog  progress
	// net is the links network faults impair; loadURL is where the load generator sends its
	// requests (the API, or a proxy in front of it).
	net     *harnessNetwork
	loadURL string
	// backends are the backend processes the harness runs.
	backends backendSet

	mu      sync.Mutex
	steps   []stepRun
	current string // step running now
	pending []*faults.Tracked
	notes   []string
	horizon time.Time
	// sentAtHorizon is what the fleet said it sent when the last step ended.
	sentAtHorizon measure.TelemetryCounts
	sentKnown     bool
}

// Run runs scenario s end to end and writes its report. The error is for a run directory that
// could not be made or a report that could not be written; how the run itself went is in the
// Outcome. When ctx ends, every fault is recovered, everything is stopped and the report is
// written, marked aborted.
func Run(ctx context.Context, s *scenarios.Scenario, opts Options) (*Outcome, error) {
	opts = opts.withDefaults()
	if s.Fleet.Driver != "" {
		// A driver whose cluster does not answer fails the run before it starts anything.
		if err := driver.Check(ctx, s.Fleet.Driver); err != nil {
			return nil, fmt.Errorf("fleet driver %s: %w", s.Fleet.Driver, err)
		}
	}
	e := &engine{
		s: s, opts: opts, clock: opts.Clock,
		revisions: &measure.Revisions{},
		acked:     &measure.AckedWrites{},
		requests:  &measure.Requests{},
		resources: &measure.Resources{},
		cpEvents:  &measure.CPEvents{},
		counters:  &measure.Counters{},
	}
	e.recorder = faults.NewRecorder(e.clock)
	e.start = e.clock.Now()
	e.id = RunID(e.start, s.Metadata.Name)
	e.dir = opts.Dir
	if e.dir == "" {
		e.dir = filepath.Join(opts.RunsDir, e.id)
	}
	if err := prepareDir(e.dir); err != nil {
		return nil, err
	}
	closeLog := e.openLog()
	defer closeLog()

	e.prog = newProgress(opts.Progress, opts.Terminal, s)
	runErr := e.run(ctx)
	e.prog.Close()

	run := e.buildRecord(ctx, runErr)
	left := e.stopAll()
	out := &Outcome{Dir: e.dir, Run: run, Err: runErr, Left: left}
	if err := reports.Write(e.dir, run); err != nil {
		return out, fmt.Errorf("scenarios: write report: %w", err)
	}
	return out, nil
}

func prepareDir(dir string) error {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("%w: run directory %s is not empty", scenarios.ErrInvalid, dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("scenarios: create run directory: %w", err)
	}
	return nil
}

// openLog sends the engine's logs to harness.log in the run directory unless a logger was
// given.
func (e *engine) openLog() func() {
	if e.opts.Logger != nil {
		e.log = e.opts.Logger
		return func() {}
	}
	f, err := os.Create(filepath.Join(e.dir, "harness.log"))
	if err != nil {
		e.log = slog.New(slog.DiscardHandler)
		return func() {}
	}
	e.log = slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return func() { _ = f.Close() }
}

func (e *engine) note(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.notes = append(e.notes, fmt.Sprintf(format, args...))
}

// run starts the control plane, the observers and the fleet, then runs the steps. It returns
// why the run broke or was aborted, or nil.
func (e *engine) run(ctx context.Context) error {
	var err error
	e.series, err = openSeries(filepath.Join(e.dir, "tsdb"), e.log)
	if err != nil {
		return fmt.Errorf("time-series store: %w", err)
	}
	paths := e.s.NetworkPaths()
	e.net = &harnessNetwork{backends: map[string]*netproxy.Proxy{}}
	cfg := e.targetConfig()
	if err := e.startBackends(ctx, &cfg); err != nil {
		return err
	}
	for _, b := range []struct {
		path string
		url  *string
	}{{faults.PathTSDB, &cfg.TSDB}, {faults.PathSearch, &cfg.Search}, {faults.PathInventory, &cfg.Inventory}} {
		if !paths[b.path] {
			continue
		}
		if *b.url, err = e.net.proxyBackend(b.path, *b.url); err != nil {
			return fmt.Errorf("proxy before the control plane's %s: %w", b.path, err)
		}
	}
	e.prog.Log("starting the control plane (%s)", e.s.ControlPlane.Mode)
	e.cp, err = cptarget.Open(ctx, cfg, cptarget.Env{Clock: e.clock, Logger: e.log, Events: e.cpEvents})
	if err != nil {
		return fmt.Errorf("control plane: %w", err)
	}
	switch e.cp.Mode() {
	case cptarget.InProcess:
		e.resources.SetNote(measure.ComponentControlPlane, "runs in the harness process: its figures are the harness's")
		e.note("the control plane runs in the harness process: a crash of it would end the run itself; mode process sees crashes")
	case cptarget.External:
		e.resources.SetNote(measure.ComponentControlPlane, "external: not sampled")
	}
	e.loadURL = e.cp.APIURL()
	if paths[faults.PathAPI] {
		if e.loadURL, err = startAPIProxy(e.cp.APIURL(), e.net); err != nil {
			return fmt.Errorf("proxy before the API: %w", err)
		}
	}
	// The fleet is built (nothing runs yet) before the observers start, which read it.
	e.fleet, err = e.opts.Fleets(ctx, FleetConfig{
		Size: e.s.Fleet.Size, Driver: e.s.Fleet.Driver, Traffic: e.trafficPath(),
		NATSURL: e.cp.NATSURL(), Dir: filepath.Join(e.dir, "fleet"), Seed: e.s.Seed, Binary: e.opts.Binary,
		Security: e.cp.FleetSecurity(), UnitProxies: paths[faults.PathFleet],
		HarnessListen: e.s.Fleet.Harness.Listen, HarnessAdvertise: e.s.Fleet.Harness.Advertise,
	}, e.log)
	if err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	if lf, ok := e.fleet.(LinkedFleet); ok && paths[faults.PathFleet] {
		e.net.fleet = lf
	}
	obsCtx, stopObservers := context.WithCancel(context.WithoutCancel(ctx))
	var obs sync.WaitGroup
	e.startObservers(obsCtx, &obs)
	defer func() {
		stopObservers()
		obs.Wait()
	}()

	e.prog.Log("starting %d DSNs (driver %s)", e.s.Fleet.Size, e.s.Fleet.Driver)
	if err := e.fleet.Launch(ctx); err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	for i := range e.s.Steps {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%w: %w", ErrAborted, context.Cause(ctx))
		}
		if err := e.runStep(ctx, i); err != nil {
			if errors.Is(err, ErrAborted) {
				return err
			}
			return fmt.Errorf("step %s: %w", e.s.Steps[i].Name, err)
		}
	}
	sent := e.fleet.Telemetry()
	e.mu.Lock()
	e.horizon = e.clock.Now()
	e.sentAtHorizon, e.sentKnown = sent, true
	e.mu.Unlock()
	return nil
}

// startBackends starts the scenario's backend processes and points the control plane at them.
func (e *engine) startBackends(ctx context.Context, cfg *cptarget.Config) error {
	e.backends = backendSet{}
	for _, name := range sortedNames(e.s.ControlPlane.BackendProcesses) {
		b, err := newBackendProc(name, e.s.ControlPlane.BackendProcesses[name], e.dir)
		if err != nil {
			return err
		}
		e.prog.Log("starting the %s backend (%s)", name, b.spec.Command[0])
		if err := b.Start(ctx); err != nil {
			return fmt.Errorf("backend process: %w", err)
		}
		e.backends[name] = b
		switch name {
		case faults.PathTSDB:
			cfg.TSDB = b.spec.URL
		case faults.PathSearch:
			cfg.Search = b.spec.URL
		case faults.PathInventory:
			cfg.Inventory = b.spec.URL
		}
	}
	return nil
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// targetConfig is the scenario's control plane as a target: one the harness runs keeps its data
// and log in the run directory; a token file is relative to the scenario.
func (e *engine) targetConfig() cptarget.Config {
	c := e.s.ControlPlane
	cfg := cptarget.Config{
		Mode: c.Mode, Dir: e.dir, Binary: c.Binary, HeartbeatInterval: c.HeartbeatInterval,
		TSDB: c.TSDB, Search: c.Search, Inventory: c.Inventory, Replicas: c.Replicas,
		URL: c.URL, NATSURL: c.NATSURL, Token: c.Token, TokenFile: c.TokenFile,
	}
	if c.Target != nil {
		cfg.Target = &c.Target.Target
	}
	if cfg.Binary == "" {
		cfg.Binary = e.opts.Binary
	}
	if cfg.TokenFile != "" && !filepath.IsAbs(cfg.TokenFile) && e.s.Dir != "" {
		cfg.TokenFile = filepath.Join(e.s.Dir, cfg.TokenFile)
	}
	return cfg
}

// token returns the bearer token for the control plane's API: a fresh one of the harness's own
// login for a control plane it started, the scenario's for an external one.
func (e *engine) token() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return e.cp.Token(ctx)
}

func (e *engine) trafficPath() string {
	t := e.s.Fleet.Traffic
	if t == "" || e.s.Dir == "" || filepath.IsAbs(t) || !strings.ContainsAny(t, "/.") {
		return t
	}
	return filepath.Join(e.s.Dir, t)
}

// stopAll recovers what is still injected and stops the fleet and the control plane, with a
// context of its own: it must run even when the run's context has ended.
func (e *engine) stopAll() (left []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	left = e.recoverPending(ctx)
	if e.fleet != nil {
		if err := e.fleet.Shutdown(ctx); err != nil {
			e.log.Warn("fleet shutdown", "err", err)
			left = append(left, fmt.Sprintf("the fleet did not shut down: %v", err))
		}
	}
	if e.cp != nil {
		if err := e.cp.Stop(ctx); err != nil {
			e.log.Warn("control plane stop", "err", err)
		}
		e.cpEvents.Add(measure.CPEvent{At: e.clock.Now(), Kind: measure.CPStopped})
	}
	if e.net != nil {
		e.net.close()
		left = append(left, e.net.stillOpen()...)
	}
	for _, b := range e.backends {
		b.Stop(10 * time.Second)
	}
	if e.series != nil {
		if err := e.series.Close(); err != nil {
			e.log.Warn("time-series store close", "err", err)
		}
	}
	return left
}

// recoverPending recovers every fault injected and not yet recovered.
func (e *engine) recoverPending(ctx context.Context) (left []string) {
	e.mu.Lock()
	pending := e.pending
	e.pending = nil
	e.mu.Unlock()
	for _, t := range pending {
		if err := t.Recover(ctx); err != nil {
			e.log.Warn("fault recovery", "kind", t.Spec().Kind, "err", err)
			left = append(left, fmt.Sprintf("fault %s: not recovered: %v", t.Spec().Kind, err))
		}
	}
	return left
}

var errTimeout = errors.New("timed out")

// tsdbOpen is the embedded store the engine writes series to.
var tsdbOpen = func(dir string, log *slog.Logger) (tsdb.Storage, error) {
	return tsdb.OpenEmbedded(dir, tsdb.Options{Logger: log})
}
