package harness

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
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

// Child is how a unit's child is run: the dsnscale binary's arguments and the environment
// variables it needs beside them (its link credential, which stays off the command line).
type Child struct {
	Args []string
	Env  []string
}

// Runner starts and stops the children of units: processes, containers.
type Runner interface {
	// Start starts (or starts again) a unit's child, running the dsnscale binary as c says.
	Start(ctx context.Context, unit string, c Child) error
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

// Explainer is implemented by runners that can say why a unit's child has not connected (a
// task the engine could not place, an image it could not find).
type Explainer interface {
	WhyNotConnected(ctx context.Context, unit string) string
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
	// Listen is where the harness link listens (default 127.0.0.1:0, loopback only). Units on
	// other hosts need an address they can reach.
	Listen string
	// Advertise is the host:port children dial (default: the address Listen got). Its host is
	// in the harness's certificate.
	Advertise string
}

// Deployment runs units through a Runner and links them to the harness.
type Deployment struct {
	plan    *driver.Plan
	runner  Runner
	ln      net.Listener
	ca      *linkCA
	tls     *tls.Config
	addr    string // what children dial
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
	unit  driver.Unit
	child Child
	url   string // the unit's bus URL (its proxy)

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
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	proxyHost, _, err := net.SplitHostPort(opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("harness: listen address %q: %w", opts.Listen, err)
	}
	if opts.Advertise != "" && opts.ChildBusHost == "127.0.0.1" {
		opts.ChildBusHost, _, _ = net.SplitHostPort(opts.Advertise)
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
	if err := d.listen(opts); err != nil {
		return nil, err
	}
	now := time.Now()
	for _, u := range p.Units {
		px, err := netproxy.StartOn(proxyHost, target, log)
		if err != nil {
			return nil, fmt.Errorf("harness: proxy for %s: %w", u.Name, err)
		}
		d.proxies[u.Name] = px
		_, port, _ := net.SplitHostPort(px.Addr())
		us := &unitState{unit: u, url: "nats://" + net.JoinHostPort(opts.ChildBusHost, port),
			injections: map[string]engine.Command{}, up: make(chan struct{})}
		cred, err := d.ca.credential(u.Name, now)
		if err != nil {
			return nil, fmt.Errorf("harness: credential for %s: %w", u.Name, err)
		}
		us.child = Child{Args: []string{"sim", "child", "--harness", d.addr, "--unit", u.Name, "--token", d.token, "--cache", runner.CacheDir(u.Name)},
			Env: []string{CredentialEnv + "=" + cred}}
		d.units[u.Name] = us
		d.order = append(d.order, u.Name)
	}
	d.wg.Add(1)
	go d.accept()
	for _, name := range d.order {
		if err := runner.Start(ctx, name, d.units[name].child); err != nil {
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
			why := ""
			if ex, ok := runner.(Explainer); ok {
				ectx, ecancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				if w := ex.WhyNotConnected(ectx, name); w != "" {
					why = ": " + w
				}
				ecancel()
			}
			return nil, fmt.Errorf("harness: unit %s did not connect within %v%s", name, opts.ConnectTimeout, why)
		}
	}
	return d, nil
}

// Addr is the harness endpoint children dial.
func (d *Deployment) Addr() string { return d.addr }

// listen opens the link's endpoint: TLS, with the run's own CA on both ends.
func (d *Deployment) listen(opts Options) error {
	var err error
	if d.ca, err = newLinkCA(time.Now()); err != nil {
		return fmt.Errorf("harness: link CA: %w", err)
	}
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return fmt.Errorf("harness: listen on %s: %w", opts.Listen, err)
	}
	d.addr = ln.Addr().String()
	if opts.Advertise != "" {
		if _, _, err := net.SplitHostPort(opts.Advertise); err != nil {
			_ = ln.Close()
			return fmt.Errorf("harness: advertise address %q: %w", opts.Advertise, err)
		}
		d.addr = opts.Advertise
	}
	host, _, _ := net.SplitHostPort(d.addr)
	if d.tls, err = d.ca.serverConfig([]string{"127.0.0.1", "::1", "localhost", host}, time.Now()); err != nil {
		_ = ln.Close()
		return fmt.Errorf("harness: link certificate: %w", err)
	}
	d.ln = tls.NewListener(ln, d.tls)
	if opts.Advertise != "" {
		// Units dial the advertised address: one this host cannot reach is most likely one
		// they cannot reach either, and is better said now than as units that never connect.
		c, err := net.DialTimeout("tcp", d.addr, 3*time.Second)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("harness: the advertised address %s does not reach the harness listening on %s: %w", d.addr, ln.Addr(), err)
		}
		_ = c.Close()
	}
	return nil
}

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
	_ = c.SetDeadline(time.Now().Add(helloTimeout))
	tc, ok := c.(*tls.Conn)
	if !ok {
		return
	}
	if err := tc.Handshake(); err != nil {
		if !errors.Is(err, io.EOF) { // a connection that only checked the address
			d.log.Warn("harness: refused a connection: TLS", "from", c.RemoteAddr(), "err", err)
		}
		return
	}
	rd := bufio.NewReaderSize(c, 256<<10)
	line, err := rd.ReadBytes('\n')
	if err != nil {
		return
	}
	_ = c.SetDeadline(time.Time{})
	var h hello
	if err := json.Unmarshal(line, &h); err != nil || h.Token != d.token {
		d.log.Warn("harness: refused a connection", "from", c.RemoteAddr())
		return
	}
	// A unit's certificate names it: one unit cannot speak for another.
	if name, _ := peerUnit(tc); name != h.Unit {
		d.log.Warn("harness: refused a connection: its certificate is another unit's", "from", c.RemoteAddr(), "unit", h.Unit, "certificate", name)
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
	want := make(map[string]engine.Command, len(us.injections))
	for id, cmd := range us.injections {
		want[id] = cmd
	}
	us.mu.Unlock()
	if old != nil {
		_ = old.conn.Close()
	}
	status := "up"
	if h.Resume {
		status = "reattached"
	}
	d.unitRecord(h.Unit, status, fmt.Sprintf("pid %d", h.PID))
	d.log.Info("harness: unit connected", "unit", h.Unit, "pid", h.PID, "resumed", h.Resume)

	go d.catchUp(l, h, started, want)

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

// catchUp brings a unit that connected to where the fleet is. A new child is booted and given
// the faults in force. A child that kept running through a lost link (it re-attached) has its
// faults reconciled with the harness's (some may have started or ended meanwhile), and its DSNs
// report their state again, since the harness counted them off while it could not see them.
func (d *Deployment) catchUp(l *link, h hello, started bool, want map[string]engine.Command) {
	var cmds []engine.Command
	if h.Resume {
		had := map[string]bool{}
		for _, id := range h.Injections {
			had[id] = true
			if _, ok := want[id]; !ok {
				cmds = append(cmds, engine.Command{Op: engine.OpRecover, Injection: id})
			}
		}
		for _, id := range sortedIDs(want) {
			if !had[id] {
				cmds = append(cmds, want[id])
			}
		}
		if !started {
			cmds = append(cmds, engine.Command{Op: engine.OpStop})
		}
		cmds = append(cmds, engine.Command{Op: engine.OpReport})
	} else {
		for _, id := range sortedIDs(want) {
			cmds = append(cmds, want[id])
		}
	}
	if started {
		// Start first: it only boots DSNs that are off.
		cmds = append([]engine.Command{{Op: engine.OpStart}}, cmds...)
	}
	for _, cmd := range cmds {
		if err := l.send(cmd); err != nil {
			d.log.Warn("harness: bringing a unit up to date", "unit", h.Unit, "op", cmd.Op, "injection", cmd.Injection, "err", err)
		}
	}
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
