package harness

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/dsnscale/dsnscale/simdsn/driver"
	"github.com/dsnscale/dsnscale/simdsn/engine"
	"github.com/dsnscale/dsnscale/simdsn/netproxy"
	"github.com/dsnscale/dsnscale/simdsn/record"
	"github.com/dsnscale/dsnscale/simdsn/stage"
)

// Runner starts and stops the children of units: processes, containers.
type Runner interface {
	// Start starts (or starts again) a unit's child, running the dsnscale binary with args.
	Start(ctx context.Context, unit string, args []string) error
	// Kill stops a unit's child hard.
	Kill(ctx context.Context, unit string) error
	// Pause freezes (on) or thaws a unit's child.
	Pause(ctx context.Context, unit string, on bool) error
	// Restart stops and starts a unit's child.
	Restart(ctx context.Context, unit string) error
	// CacheDir is the directory the child keeps its DSNs' config cache in.
	CacheDir(unit string) string
	Usage(ctx context.Context) (driver.Usage, error)
	Close(ctx context.Context) error
}

// Stopper is implemented by runners that can stop a unit's child gracefully (SIGTERM, then
// SIGKILL after a grace), for driver.UnitStop.
type Stopper interface {
	Stop(ctx context.Context, unit string) error
}

// Options tune Launch.
type Options struct {
	// ConnectTimeout bounds the wait for every unit's first connection (default 60s).
	ConnectTimeout time.Duration
	// ChildBusHost replaces the host of proxy URLs handed to children (default 127.0.0.1).
	ChildBusHost string
}

// Deployment runs units through a Runner and links them to the harness.
type Deployment struct {
	plan    *driver.Plan
	runner  Runner
	ln      net.Listener
	token   string
	records io.Writer
	enc     *record.Encoder
	log     *slog.Logger
	sources map[string][]byte
	proxies map[string]*netproxy.Proxy
	units   map[string]*unitState
	order   []string

	wg     sync.WaitGroup
	closed chan struct{}
}

type unitState struct {
	unit driver.Unit
	args []string
	url  string // the unit's bus URL (its proxy)

	mu         sync.Mutex
	link       *link
	started    bool
	injections map[string]engine.Command
	up         chan struct{} // closed on each connection, then replaced
}

type link struct {
	conn    net.Conn
	wmu     sync.Mutex
	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]chan error
	done    chan struct{}
}

// Launch starts every unit of the plan with runner and waits until each has connected.
func Launch(ctx context.Context, p *driver.Plan, records io.Writer, runner Runner, opts Options) (_ *Deployment, err error) {
	if opts.ConnectTimeout == 0 {
		opts.ConnectTimeout = 60 * time.Second
	}
	if opts.ChildBusHost == "" {
		opts.ChildBusHost = "127.0.0.1"
	}
	log := p.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var tok [16]byte
	_, _ = rand.Read(tok[:])
	d := &Deployment{plan: p, runner: runner, token: hex.EncodeToString(tok[:]), records: records,
		enc: record.NewEncoder(records), log: log, sources: p.Stages.Sources(), proxies: map[string]*netproxy.Proxy{},
		units: map[string]*unitState{}, closed: make(chan struct{})}
	defer func() {
		if err != nil {
			_ = d.Close(context.WithoutCancel(ctx))
		}
	}()
	targets, err := driver.HostPorts(p.Bus.URL)
	if err != nil {
		return nil, err
	}
	if len(targets) > 1 {
		return nil, fmt.Errorf("%w: a bus of %d servers (%s): each unit reaches the bus through one proxy", driver.ErrUnsupported, len(targets), p.Bus.URL)
	}
	target := targets[0]
	d.ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("harness: listen: %w", err)
	}
	for _, u := range p.Units {
		px, err := netproxy.Start(target, log)
		if err != nil {
			return nil, fmt.Errorf("harness: proxy for %s: %w", u.Name, err)
		}
		d.proxies[u.Name] = px
		_, port, _ := net.SplitHostPort(px.Addr())
		us := &unitState{unit: u, url: "nats://" + net.JoinHostPort(opts.ChildBusHost, port),
			injections: map[string]engine.Command{}, up: make(chan struct{})}
		us.args = []string{"sim", "child", "--harness", d.ln.Addr().String(), "--unit", u.Name, "--token", d.token, "--cache", runner.CacheDir(u.Name)}
		d.units[u.Name] = us
		d.order = append(d.order, u.Name)
	}
	d.wg.Add(1)
	go d.accept()
	for _, name := range d.order {
		if err := runner.Start(ctx, name, d.units[name].args); err != nil {
			return nil, fmt.Errorf("harness: starting unit %s: %w", name, err)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, opts.ConnectTimeout)
	defer cancel()
	for _, name := range d.order {
		us := d.units[name]
		us.mu.Lock()
		up, connected := us.up, us.link != nil
		us.mu.Unlock()
		if connected {
			continue
		}
		select {
		case <-up:
		case <-wctx.Done():
			return nil, fmt.Errorf("harness: unit %s did not connect within %v", name, opts.ConnectTimeout)
		}
	}
	return d, nil
}

// Addr is the harness endpoint children dial.
func (d *Deployment) Addr() string { return d.ln.Addr().String() }

func (d *Deployment) accept() {
	defer d.wg.Done()
	for {
		c, err := d.ln.Accept()
		if err != nil {
			return
		}
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.serve(c)
		}()
	}
}

// serve handles one child connection from hello to EOF.
func (d *Deployment) serve(c net.Conn) {
	defer c.Close()
	rd := bufio.NewReaderSize(c, 256<<10)
	_ = c.SetReadDeadline(time.Now().Add(helloTimeout))
	line, err := rd.ReadBytes('\n')
	if err != nil {
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	var h hello
	if err := json.Unmarshal(line, &h); err != nil || h.Token != d.token {
		d.log.Warn("harness: refused a connection", "from", c.RemoteAddr())
		return
	}
	us, ok := d.units[h.Unit]
	if !ok {
		d.log.Warn("harness: unknown unit", "unit", h.Unit)
		return
	}
	bc := d.plan.Bus
	bc.URL = us.url
	bc.PoolURLs = nil
	spec, err := json.Marshal(Spec{Unit: h.Unit, Map: d.plan.Map, Stages: d.sources, Bus: bc, DSNs: us.unit.DSNs,
		Seed: d.plan.Seed, Workers: d.plan.Workers})
	if err != nil {
		d.log.Error("harness: spec", "err", err)
		return
	}
	if _, err := c.Write(append(spec, '\n')); err != nil {
		return
	}
	l := &link{conn: c, pending: map[uint64]chan error{}, done: make(chan struct{})}
	us.mu.Lock()
	old := us.link
	us.link = l
	close(us.up)
	us.up = make(chan struct{})
	started := us.started
	var replay []engine.Command
	for _, id := range sortedIDs(us.injections) {
		replay = append(replay, us.injections[id])
	}
	us.mu.Unlock()
	if old != nil {
		_ = old.conn.Close()
	}
	d.unitRecord(h.Unit, "up", fmt.Sprintf("pid %d", h.PID))
	d.log.Info("harness: unit connected", "unit", h.Unit, "pid", h.PID)

	// Bring a unit that came back to where the fleet is: booted, with its faults.
	go func() {
		if started {
			if err := l.send(engine.Command{Op: engine.OpStart}); err != nil {
				d.log.Warn("harness: restarting unit", "unit", h.Unit, "err", err)
			}
		}
		for _, cmd := range replay {
			if err := l.send(cmd); err != nil {
				d.log.Warn("harness: replaying a fault", "unit", h.Unit, "injection", cmd.Injection, "err", err)
			}
		}
	}()

	err = d.read(rd, l)
	close(l.done)
	l.failPending(ErrUnitDown)
	us.mu.Lock()
	current := us.link == l
	if current {
		us.link = nil
	}
	us.mu.Unlock()
	if current {
		d.unitDown(us, err)
	}
}

// read takes lines from a child: records go to the collector, acks to their commands.
func (d *Deployment) read(rd *bufio.Reader, l *link) error {
	for {
		line, err := rd.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return fmt.Errorf("%w: line longer than %d bytes", ErrProtocol, rd.Size())
		}
		if err != nil {
			return err
		}
		if len(line) > 0 && line[0] == ackPrefix {
			if id, aerr, ok := parseAck(line); ok {
				l.answer(id, aerr)
			}
			continue
		}
		if _, err := d.records.Write(line); err != nil {
			return err
		}
	}
}

// unitDown reports every DSN of a unit that went away as off.
func (d *Deployment) unitDown(us *unitState, cause error) {
	select {
	case <-d.closed:
		return
	default:
	}
	at := time.Now().UnixNano()
	detail := "link closed"
	if cause != nil && !errors.Is(cause, io.EOF) {
		detail = cause.Error()
	}
	d.unitRecord(us.unit.Name, "down", detail)
	for _, s := range us.unit.DSNs {
		_ = d.enc.Emit(record.Record{At: at, Type: record.TypeState, DSN: s.ID, Unit: us.unit.Name, State: stage.Off.String(), Stage: "unit-down"})
		_ = d.enc.Emit(record.Record{At: at, Type: record.TypeApplied, DSN: s.ID, Revision: 0, Detail: "unit-down"})
	}
	d.log.Info("harness: unit down", "unit", us.unit.Name, "why", detail)
}

func (d *Deployment) unitRecord(unit, status, detail string) {
	_ = d.enc.Emit(record.Record{At: time.Now().UnixNano(), Type: record.TypeUnit, Unit: unit, State: status, Detail: detail})
}

func (l *link) send(cmd engine.Command) error {
	l.mu.Lock()
	l.nextID++
	id := l.nextID
	ch := make(chan error, 1)
	l.pending[id] = ch
	l.mu.Unlock()
	b, _ := json.Marshal(command{ID: id, Cmd: cmd})
	l.wmu.Lock()
	_ = l.conn.SetWriteDeadline(time.Now().Add(commandTimeout))
	_, err := l.conn.Write(append(b, '\n'))
	l.wmu.Unlock()
	if err != nil {
		l.answer(id, nil)
		return fmt.Errorf("%w: %v", ErrUnitDown, err)
	}
	select {
	case err := <-ch:
		return err
	case <-l.done:
		return ErrUnitDown
	case <-time.After(commandTimeout):
		return fmt.Errorf("harness: command %s not answered in %v", cmd.Op, commandTimeout)
	}
}

func (l *link) answer(id uint64, err error) {
	l.mu.Lock()
	ch, ok := l.pending[id]
	delete(l.pending, id)
	l.mu.Unlock()
	if ok {
		ch <- err
	}
}

func (l *link) failPending(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, ch := range l.pending {
		ch <- err
		delete(l.pending, id)
	}
}

func sortedIDs(m map[string]engine.Command) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// UnitProxy implements driver.Linked.
func (d *Deployment) UnitProxy(unit string) (*netproxy.Proxy, bool) {
	px, ok := d.proxies[unit]
	return px, ok && px != nil
}
