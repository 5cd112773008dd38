package harness

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/dsnscale/dsnscale/simdsn/driver"
	"github.com/dsnscale/dsnscale/simdsn/engine"
)

// Command implements driver.Deployment. A unit that is down gets the command when it comes
// back (start, stop and active faults are replayed), so a command never fails for that reason.
func (d *Deployment) Command(ctx context.Context, cmd engine.Command) error {
	parts, err := driver.Split(d.plan.Units, cmd)
	if err != nil {
		return err
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for name, c := range parts {
		us := d.units[name]
		us.mu.Lock()
		switch c.Op {
		case engine.OpStart:
			us.started = true
		case engine.OpStop:
			if len(c.DSNs) == 0 {
				us.started = false
			}
		case engine.OpInject:
			us.injections[c.Injection] = c
		case engine.OpRecover:
			if _, ok := us.injections[c.Injection]; !ok {
				us.mu.Unlock()
				continue // never reached this unit
			}
			delete(us.injections, c.Injection)
		}
		l := us.link
		us.mu.Unlock()
		if l == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.send(c); err != nil && !errors.Is(err, ErrUnitDown) {
				mu.Lock()
				errs = append(errs, fmt.Errorf("unit %s: %w", name, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// UnitFault implements driver.Deployment.
func (d *Deployment) UnitFault(ctx context.Context, unit string, f driver.UnitFault, on bool) error {
	us, ok := d.units[unit]
	if !ok {
		return fmt.Errorf("%w: %q", driver.ErrUnknownUnit, unit)
	}
	switch f {
	case driver.UnitKill, driver.UnitStop:
		if on && f == driver.UnitStop {
			st, ok := d.runner.(Stopper)
			if !ok {
				return fmt.Errorf("%w: unit fault %q", driver.ErrUnsupported, f)
			}
			return st.Stop(ctx, unit)
		}
		if on {
			return d.runner.Kill(ctx, unit)
		}
		us.mu.Lock()
		up := us.link != nil
		us.mu.Unlock()
		if up {
			return nil
		}
		return d.runner.Start(ctx, unit, us.child)
	case driver.UnitPause:
		if err := d.runner.Pause(ctx, unit, on); err != nil {
			return err
		}
		status := "running"
		if on {
			status = "paused"
		}
		d.unitRecord(unit, status, "")
		return nil
	case driver.UnitRestart:
		if !on {
			return nil
		}
		return d.runner.Restart(ctx, unit)
	case driver.UnitDisconnect:
		d.proxies[unit].SetBlackhole(on)
		status := "connected"
		if on {
			status = "disconnected"
		}
		d.unitRecord(unit, status, "")
		return nil
	}
	return fmt.Errorf("%w: unit fault %q", driver.ErrUnsupported, f)
}

// Usage implements driver.Deployment.
func (d *Deployment) Usage(ctx context.Context) (driver.Usage, error) { return d.runner.Usage(ctx) }

// Up reports whether a unit's child is connected.
func (d *Deployment) Up(unit string) bool {
	us, ok := d.units[unit]
	if !ok {
		return false
	}
	us.mu.Lock()
	defer us.mu.Unlock()
	return us.link != nil
}

// Close implements driver.Deployment: the children are stopped, then the endpoint and proxies.
func (d *Deployment) Close(ctx context.Context) error {
	select {
	case <-d.closed:
		return nil
	default:
	}
	close(d.closed)
	err := d.runner.Close(ctx)
	if d.ln != nil {
		_ = d.ln.Close()
	}
	for _, us := range d.units {
		us.mu.Lock()
		if us.link != nil {
			_ = us.link.conn.Close()
		}
		us.mu.Unlock()
	}
	for _, p := range d.proxies {
		p.Close()
	}
	d.wg.Wait()
	return err
}
