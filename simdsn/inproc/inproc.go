// Package inproc is the fleet driver that runs every DSN inside the harness process, on one
// engine (one timer heap, a few workers). Units (racks) are logical here: a unit fault is the
// matching misbehaviour on the unit's DSNs, and unit-disconnect needs Plan.UnitProxies.
package inproc

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/dsnscale/dsnscale/simdsn/bus"
	"github.com/dsnscale/dsnscale/simdsn/driver"
	"github.com/dsnscale/dsnscale/simdsn/engine"
	"github.com/dsnscale/dsnscale/simdsn/netproxy"
)

// Name is the driver's registered name.
const Name = "inproc"

func init() { driver.MustRegister(Name, Driver{}) }

// Driver is the in-process driver.
type Driver struct{}

type deployment struct {
	eng     *engine.Engine
	units   map[string]driver.Unit
	proxies map[string]*netproxy.Proxy
	cancel  context.CancelFunc
	done    chan error

	mu     sync.Mutex
	faults map[string]string // unit/fault -> injection id
	seq    int
}

// Launch implements driver.Driver.
func (Driver) Launch(ctx context.Context, p *driver.Plan, records io.Writer) (driver.Deployment, error) {
	bc := p.Bus
	d := &deployment{units: map[string]driver.Unit{}, proxies: map[string]*netproxy.Proxy{}, faults: map[string]string{}}
	if p.UnitProxies {
		targets, err := driver.HostPorts(bc.URL)
		if err != nil {
			return nil, err
		}
		if len(targets) > 1 {
			return nil, fmt.Errorf("%w: unit proxies before a bus of %d servers (%s): a unit's link is one proxy", driver.ErrUnsupported, len(targets), bc.URL)
		}
		target := targets[0]
		bc.PoolURLs = map[string]string{}
		for _, u := range p.Units {
			px, err := netproxy.Start(target, p.Logger)
			if err != nil {
				d.closeProxies()
				return nil, fmt.Errorf("inproc: proxy for %s: %w", u.Name, err)
			}
			d.proxies[u.Name] = px
			bc.PoolURLs[u.Name] = "nats://" + px.Addr()
		}
	}
	b, err := bus.NewNATS(bc)
	if err != nil {
		d.closeProxies()
		return nil, err
	}
	var specs []engine.DSNSpec
	for _, u := range p.Units {
		d.units[u.Name] = u
		for _, s := range u.DSNs {
			s.Unit = u.Name
			specs = append(specs, s)
		}
	}
	eng, err := engine.New(engine.Config{Bus: b, Stages: p.Stages, Map: p.Map, Records: records,
		Workers: p.Workers, Seed: p.Seed, Logger: p.Logger}, specs)
	if err != nil {
		d.closeProxies()
		return nil, err
	}
	d.eng = eng
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d.cancel = cancel
	d.done = make(chan error, 1)
	go func() { d.done <- eng.Run(runCtx) }()
	return d, nil
}

// Engine exposes the engine, for benchmarks that read its counters.
func (d *deployment) Engine() *engine.Engine { return d.eng }

func (d *deployment) Command(_ context.Context, cmd engine.Command) error { return d.eng.Do(cmd) }

// unitMisbehaviour is how a unit fault is simulated in process.
var unitMisbehaviour = map[driver.UnitFault]string{
	driver.UnitKill:    "crash",
	driver.UnitPause:   "hang",
	driver.UnitRestart: "restart",
}

func (d *deployment) UnitFault(_ context.Context, unit string, f driver.UnitFault, on bool) error {
	u, ok := d.units[unit]
	if !ok {
		return fmt.Errorf("%w: %q", driver.ErrUnknownUnit, unit)
	}
	if f == driver.UnitDisconnect {
		px := d.proxies[unit]
		if px == nil {
			return fmt.Errorf("%w: %s without unit proxies", driver.ErrUnsupported, f)
		}
		px.SetBlackhole(on)
		return nil
	}
	mis, ok := unitMisbehaviour[f]
	if !ok {
		return fmt.Errorf("%w: unit fault %q", driver.ErrUnsupported, f)
	}
	key := unit + "/" + string(f)
	d.mu.Lock()
	defer d.mu.Unlock()
	if !on {
		id, ok := d.faults[key]
		if !ok {
			return nil
		}
		delete(d.faults, key)
		return d.eng.Do(engine.Command{Op: engine.OpRecover, Injection: id})
	}
	if _, active := d.faults[key]; active && f != driver.UnitRestart {
		return nil
	}
	d.seq++
	id := fmt.Sprintf("%s#%d", key, d.seq)
	ids := make([]string, len(u.DSNs))
	for i, s := range u.DSNs {
		ids[i] = s.ID
	}
	if err := d.eng.Do(engine.Command{Op: engine.OpInject, Injection: id, Misbehaviour: mis, DSNs: ids}); err != nil {
		return err
	}
	if f == driver.UnitRestart {
		// A restart is over when it has happened; nothing stays to be lifted.
		return d.eng.Do(engine.Command{Op: engine.OpRecover, Injection: id})
	}
	d.faults[key] = id
	return nil
}

func (d *deployment) Usage(context.Context) (driver.Usage, error) {
	return driver.Usage{}, driver.ErrUnsupported
}

func (d *deployment) Close(ctx context.Context) error {
	d.cancel()
	var err error
	select {
	case err = <-d.done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	d.closeProxies()
	return err
}

func (d *deployment) closeProxies() {
	for _, p := range d.proxies {
		p.Close()
	}
}

// SentStats is what the engine has published: messages and bytes.
func (d *deployment) SentStats() (messages, bytes int64) {
	s := d.eng.Stats()
	return s.Messages, s.Bytes
}

// UnitProxy implements driver.Linked.
func (d *deployment) UnitProxy(unit string) (*netproxy.Proxy, bool) {
	px, ok := d.proxies[unit]
	return px, ok && px != nil
}
