package runner

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dsnscale/dsnscale/controlplane/agent"
	"github.com/dsnscale/dsnscale/faults"
	"github.com/dsnscale/dsnscale/reports"
	"github.com/dsnscale/dsnscale/scenarios"
	"github.com/dsnscale/dsnscale/scenarios/measure"
	"github.com/dsnscale/dsnscale/simdsn"
	"github.com/dsnscale/dsnscale/simdsn/bus"
	simengine "github.com/dsnscale/dsnscale/simdsn/engine"
	"github.com/dsnscale/dsnscale/simdsn/netproxy"
	"github.com/dsnscale/dsnscale/simdsn/record"
	"github.com/dsnscale/dsnscale/simdsn/stage"
	"github.com/dsnscale/dsnscale/simdsn/trafficmap"
)

// Misbehaviours of the simulator that the fault verbs map to.
var verbMisbehaviour = map[string]string{
	faults.VerbRestart: "restart",
	faults.VerbCrash:   "crash",
	faults.VerbHang:    "hang",
}

// simFleet is a simdsn fleet as the engine drives it.
type simFleet struct {
	f      *simdsn.Fleet
	driver string
	dsns   []faults.DSN
	log    *slog.Logger

	mu   sync.Mutex
	held map[string]simdsn.Injection // per-DSN crash and hang injections, for Start and Resume
}

func newSimFleet(ctx context.Context, cfg FleetConfig, log *slog.Logger) (Fleet, error) {
	var m *trafficmap.Map
	if cfg.Traffic != "" && cfg.Traffic != scenarios.DefaultTraffic {
		var err error
		if m, err = trafficmap.Load(cfg.Traffic, stage.Default()); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	f, err := simdsn.New(ctx, simdsn.Config{
		Driver: cfg.Driver, NATSURL: cfg.NATSURL, Count: cfg.Size, Map: m,
		Seed: uint64(cfg.Seed), WorkDir: cfg.Dir, Binary: cfg.Binary, Logger: log,
		Security: cfg.Security, UnitProxies: cfg.UnitProxies,
		HarnessListen: cfg.HarnessListen, HarnessAdvertise: cfg.HarnessAdvertise,
	})
	if err != nil {
		return nil, err
	}
	sf := &simFleet{f: f, driver: f.Driver(), log: log, held: map[string]simdsn.Injection{}}
	for _, d := range f.DSNs() {
		sf.dsns = append(sf.dsns, faults.DSN{ID: d.ID, Labels: d.Labels})
	}
	return sf, nil
}

func (s *simFleet) DSNs() []faults.DSN { return s.dsns }

// Misbehave starts a simulator misbehaviour on ids; undo recovers it.
func (s *simFleet) Misbehave(ctx context.Context, misbehaviour string, ids []string, params map[string]string, window time.Duration) (func(context.Context) error, error) {
	inj, err := s.f.Inject(ctx, simdsn.FaultSpec{Kind: misbehaviour, Target: simdsn.Target{IDs: ids}, Spread: window, Params: params})
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error { return s.f.Recover(ctx, inj) }, nil
}

// Units lists the fleet's units, for unit faults.
func (s *simFleet) Units() []faults.Link { return s.Links() }

// FaultUnits starts a unit fault on units; undo lifts it.
func (s *simFleet) FaultUnits(ctx context.Context, kind string, units []string) (func(context.Context) error, error) {
	inj, err := s.f.Inject(ctx, simdsn.FaultSpec{Kind: kind, Target: simdsn.Target{IDs: units}})
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error { return s.f.Recover(ctx, inj) }, nil
}

// Links lists the fleet's units as network links.
func (s *simFleet) Links() []faults.Link {
	units := s.f.Units()
	out := make([]faults.Link, len(units))
	for i, u := range units {
		out[i] = faults.Link{Name: u.Name, Labels: map[string]string{"site": u.Site, "rack": u.Rack, "unit": u.Name},
			DSNs: append([]string(nil), u.DSNs...)}
	}
	return out
}

// UnitReports lists the fleet's units with the host and the resource use each reported; nil
// when the DSNs run in the harness.
func (s *simFleet) UnitReports() []reports.Unit {
	if s.InHarness() {
		return nil
	}
	usage := s.f.UnitUsage()
	units := s.f.Units()
	out := make([]reports.Unit, 0, len(units))
	for _, u := range units {
		r := reports.Unit{Name: u.Name, Site: u.Site, Rack: u.Rack, DSNs: len(u.DSNs)}
		if us, ok := usage[u.Name]; ok {
			r.Host, r.CPUSeconds, r.PeakRSSBytes = us.Host, us.CPUSeconds, us.PeakRSSBytes
		} else {
			r.Missing = "the unit never reported its usage"
		}
		out = append(out, r)
	}
	return out
}

// UnitProxy returns the proxy of a unit's bus link.
func (s *simFleet) UnitProxy(unit string) (*netproxy.Proxy, error) { return s.f.UnitProxy(unit) }

// Launch boots every DSN; their boot stages spread them out.
func (s *simFleet) Launch(ctx context.Context) error { return s.f.Start(ctx, 0) }

func (s *simFleet) Shutdown(ctx context.Context) error { return s.f.Close(ctx) }

// inject starts a misbehaviour on ids.
func (s *simFleet) inject(ctx context.Context, verb string, ids []string, window time.Duration) (simdsn.Injection, error) {
	kind, ok := verbMisbehaviour[verb]
	if !ok {
		return simdsn.Injection{}, fmt.Errorf("no misbehaviour for %s", verb)
	}
	return s.f.Inject(ctx, simdsn.FaultSpec{Kind: kind, Target: simdsn.Target{IDs: ids}, Spread: window})
}

// Batch acts on all of ids in one command.
func (s *simFleet) Batch(ctx context.Context, verb string, ids []string, window time.Duration) (func(context.Context) error, error) {
	inj, err := s.inject(ctx, verb, ids, window)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error { return s.f.Recover(ctx, inj) }, nil
}

func (s *simFleet) Restart(ctx context.Context, id string) error {
	_, err := s.inject(ctx, faults.VerbRestart, []string{id}, 0)
	return err
}

func (s *simFleet) hold(ctx context.Context, verb, id string) error {
	inj, err := s.inject(ctx, verb, []string{id}, 0)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.held[verb+"/"+id] = inj
	s.mu.Unlock()
	return nil
}

func (s *simFleet) release(ctx context.Context, verb, id string) error {
	s.mu.Lock()
	inj, ok := s.held[verb+"/"+id]
	delete(s.held, verb+"/"+id)
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("DSN %s has no %s to end", id, verb)
	}
	return s.f.Recover(ctx, inj)
}

func (s *simFleet) Crash(ctx context.Context, id string) error {
	return s.hold(ctx, faults.VerbCrash, id)
}
func (s *simFleet) Start(ctx context.Context, id string) error {
	return s.release(ctx, faults.VerbCrash, id)
}
func (s *simFleet) Hang(ctx context.Context, id string) error {
	return s.hold(ctx, faults.VerbHang, id)
}
func (s *simFleet) Resume(ctx context.Context, id string) error {
	return s.release(ctx, faults.VerbHang, id)
}

// PIDs is empty: the in-process driver runs DSNs in the harness; other drivers report their use
// through Usage.
func (s *simFleet) PIDs() []int { return nil }

// InHarness reports whether the DSNs run inside the harness process.
func (s *simFleet) InHarness() bool { return s.driver == "inproc" }

// Usage is the CPU and memory of the processes or containers that run the DSNs.
func (s *simFleet) Usage(ctx context.Context) (float64, int64, error) {
	u, err := s.f.Deployment().Usage(ctx)
	if err != nil {
		return 0, 0, err
	}
	return u.CPUSeconds, u.MemoryBytes, nil
}

// Telemetry counts what the DSNs sent, where the driver can tell.
func (s *simFleet) Telemetry() measure.TelemetryCounts {
	eng, ok := s.f.Deployment().(interface{ Engine() *simengine.Engine })
	if !ok {
		return measure.TelemetryCounts{}
	}
	st := eng.Engine().Stats()
	return measure.TelemetryCounts{Known: true, Batches: st.Telemetry, Samples: -1, Events: st.Events}
}

// session says whether a DSN in state is admitted and talking to the control plane.
func session(state string) bool {
	return state == stage.Syncing.String() || state == stage.Serving.String()
}

func dataPlane(state string) bool {
	st, ok := stage.ParseState(state)
	return ok && st.DataPlane()
}

func (s *simFleet) Census(rev uint64) measure.Counts {
	c := measure.Counts{States: map[string]int{}}
	s.f.Reports().Select(func(r record.DSNReport) bool {
		c.Total++
		c.States[r.State]++
		if dataPlane(r.State) {
			c.DataPlane++
		}
		if session(r.State) {
			c.Session++
			if r.AppliedRevision >= rev {
				c.AtOrPast++
			}
		}
		return false
	})
	return c
}

func (s *simFleet) StateSince(id string) time.Time {
	var since time.Time
	s.f.Reports().Select(func(r record.DSNReport) bool {
		if r.ID == id {
			since = r.StateSince
		}
		return false
	})
	return since
}

// Timeline converts the collected reports into the measurements' timeline: each DSN's state
// changes and applied revisions merged in time order, and its watch anomalies.
func (s *simFleet) Timeline() *measure.Timeline {
	reps := s.f.Reports().Reports()
	ids := make([]string, len(reps))
	for i, r := range reps {
		ids[i] = r.ID
	}
	tl := measure.NewTimeline(ids)
	tl.RecordsRejected(s.f.Reports().Summary().Rejected)
	for _, r := range reps {
		if r.Dropped > 0 {
			s.log.Warn("DSN history was truncated; measurements see only its latest entries", "dsn", r.ID, "dropped", r.Dropped)
			tl.HistoryTruncated(r.ID, r.Dropped)
		}
		tl.AcksDropped(r.ID, r.AcksDropped)
		i, j := 0, 0
		for i < len(r.Transitions) || j < len(r.Applied) {
			if j >= len(r.Applied) || (i < len(r.Transitions) && !r.Transitions[i].At.After(r.Applied[j].At)) {
				t := r.Transitions[i]
				tl.State(r.ID, t.At, t.To, dataPlane(t.To), session(t.To))
				i++
			} else {
				a := r.Applied[j]
				tl.Applied(r.ID, a.At, a.Revision)
				j++
			}
		}
		for _, w := range r.Watch.Events {
			tl.Watch(r.ID, measure.WatchIssue{At: w.At, Kind: w.Kind, Revision: w.Revision, Previous: w.Applied})
		}
	}
	return tl
}

// fleetNATSOptions are the bus connection options of a fleet of the harness's own (the
// reference agents of the engine's tests) with the control plane's fleet credentials sec: a
// fleet gateway identity obtained with the harness's gateway token, or none for a control
// plane the harness did not start.
func fleetNATSOptions(ctx context.Context, sec *bus.Security) ([]nats.Option, error) {
	if sec == nil {
		return nil, nil
	}
	if err := bus.ObtainGateway(ctx, sec, "harness-agents-gateway"); err != nil {
		return nil, err
	}
	id, err := agent.LoadIdentity([]byte(sec.GatewayCert), []byte(sec.GatewayKey), []byte(sec.CA))
	if err != nil {
		return nil, err
	}
	return id.NATSOptions()
}
