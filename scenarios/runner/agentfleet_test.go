package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dsnscale/dsnscale/controlplane/agent"
	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/faults"
	"github.com/dsnscale/dsnscale/scenarios/measure"
)

// agentFleet runs the control plane's reference DSN agents as a fleet, so that the engine can be
// tested against a real control plane and real protocol sessions independently of the simulator.
// A restart stops an agent and starts a new one from the config it had (its "cache").
type agentFleet struct {
	cfg   FleetConfig
	r     *measure.Timeline
	log   *slog.Logger
	conns []*nats.Conn

	mu     sync.Mutex
	dsns   []faults.DSN
	agents map[string]*runningAgent
	ctx    context.Context
	cancel context.CancelFunc
	polls  sync.WaitGroup
}

type runningAgent struct {
	a      *agent.Agent
	cancel context.CancelFunc
	done   chan struct{}
	last   string
}

func newAgentFleet(_ context.Context, cfg FleetConfig, log *slog.Logger) (Fleet, error) {
	f := &agentFleet{cfg: cfg, r: measure.NewTimeline(nil), log: log, agents: map[string]*runningAgent{}}
	for i := range cfg.Size {
		f.dsns = append(f.dsns, faults.DSN{ID: fmt.Sprintf("dsn-%04d", i), Labels: map[string]string{"group": fmt.Sprintf("g%d", i%4)}})
	}
	return f, nil
}

func (f *agentFleet) DSNs() []faults.DSN { return f.dsns }

func (f *agentFleet) Launch(ctx context.Context) error {
	f.ctx, f.cancel = context.WithCancel(context.WithoutCancel(ctx))
	secure, err := fleetNATSOptions(ctx, f.cfg.Security)
	if err != nil {
		return err
	}
	for range 2 {
		var nc *nats.Conn
		nc, err := nats.Connect(f.cfg.NATSURL, append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(100 * time.Millisecond),
			nats.ReconnectHandler(func(c *nats.Conn) { f.reconnected(c) })}, secure...)...)
		if err != nil {
			return err
		}
		f.conns = append(f.conns, nc)
	}
	for i, d := range f.dsns {
		if err := f.start(d, i, 0, nil); err != nil {
			return err
		}
	}
	f.polls.Add(1)
	go f.poll()
	return nil
}

func (f *agentFleet) reconnected(c *nats.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, d := range f.dsns {
		if ra := f.agents[d.ID]; ra != nil && f.conns[i%len(f.conns)] == c {
			ra.a.Reconnected()
		}
	}
}

func (f *agentFleet) index(id string) (int, faults.DSN, error) {
	for i, d := range f.dsns {
		if d.ID == id {
			return i, d, nil
		}
	}
	return 0, faults.DSN{}, fmt.Errorf("no DSN %q", id)
}

func (f *agentFleet) start(d faults.DSN, i int, rev uint64, objs []model.Object) error {
	now := time.Now()
	f.r.State(d.ID, now, "booting", false, false)
	if rev > 0 {
		f.r.Applied(d.ID, now, rev)
	}
	a, err := agent.New(agent.Config{ID: d.ID, Labels: d.Labels, Conn: f.conns[i%len(f.conns)],
		InitialRevision: rev, InitialObjects: objs, MinBackoff: 50 * time.Millisecond, MaxBackoff: time.Second,
		OnApply: func(rev uint64, at time.Time) { f.r.Applied(d.ID, at, rev) }})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(f.ctx)
	ra := &runningAgent{a: a, cancel: cancel, done: make(chan struct{})}
	f.mu.Lock()
	f.agents[d.ID] = ra
	f.mu.Unlock()
	go func() {
		defer close(ra.done)
		_ = a.Run(ctx)
	}()
	return nil
}

func (f *agentFleet) stop(id, state string) (*runningAgent, error) {
	f.mu.Lock()
	ra := f.agents[id]
	delete(f.agents, id)
	f.mu.Unlock()
	if ra == nil {
		return nil, errors.New("not running")
	}
	ra.cancel()
	<-ra.done
	f.r.State(id, time.Now(), state, false, false)
	return ra, nil
}

// poll reports each agent's state changes; agents say what they do but do not call back.
func (f *agentFleet) poll() {
	defer f.polls.Done()
	for f.ctx.Err() == nil {
		f.mu.Lock()
		for id, ra := range f.agents {
			s := ra.a.State()
			if s != ra.last {
				ra.last = s
				f.r.State(id, time.Now(), s, true, s == "serving" || s == "syncing")
			}
		}
		f.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
}

func (f *agentFleet) Restart(_ context.Context, id string) error {
	i, d, err := f.index(id)
	if err != nil {
		return err
	}
	ra, err := f.stop(id, "restarting")
	if err != nil {
		return err
	}
	rev, objs := ra.a.Config()
	return f.start(d, i, rev, objs)
}

func (f *agentFleet) Crash(_ context.Context, id string) error {
	_, err := f.stop(id, "crashed")
	return err
}

func (f *agentFleet) Start(context.Context, string) error {
	return errors.New("the reference agent fleet cannot start a crashed DSN")
}

func (f *agentFleet) Hang(context.Context, string) error {
	return errors.New("the reference agent cannot hang")
}

func (f *agentFleet) Resume(context.Context, string) error {
	return errors.New("the reference agent cannot hang")
}

func (f *agentFleet) Shutdown(context.Context) error {
	if f.cancel == nil {
		return nil
	}
	f.cancel()
	f.polls.Wait()
	f.mu.Lock()
	agents := f.agents
	f.agents = map[string]*runningAgent{}
	f.mu.Unlock()
	for _, ra := range agents {
		<-ra.done
	}
	for _, c := range f.conns {
		c.Close()
	}
	return nil
}

func (f *agentFleet) InHarness() bool { return true }

func (f *agentFleet) Usage(context.Context) (float64, int64, error) {
	return 0, 0, errors.New("in the harness")
}

func (f *agentFleet) Census(rev uint64) measure.Counts { return f.r.Census(rev) }

func (f *agentFleet) StateSince(id string) time.Time { return f.r.Current(id).Since }

func (f *agentFleet) Timeline() *measure.Timeline { return f.r }

func (f *agentFleet) Telemetry() measure.TelemetryCounts { return measure.TelemetryCounts{} }
