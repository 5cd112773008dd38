package faults

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Parameters shared by the DSN kinds.
var (
	paramWindow = Param{Name: "window", Type: TypeDuration, Default: "0s",
		Description: "spread the actions evenly over this window; 0 acts on all DSNs at once"}
	paramParallel = Param{Name: "parallel", Type: TypeInt, Default: "256",
		Description: "at most this many actions in flight at a time"}
)

// dsnAction is what a DSN kind does to one DSN, and what undoes it (nil when nothing needs
// undoing, as for a restart).
type dsnAction struct {
	verb    string // for errors: "restart", "crash", "hang"
	do      func(ctx context.Context, f Fleet, id string) error
	undo    func(ctx context.Context, f Fleet, id string) error
	undoVrb string
}

// dsnFault applies an action to a selection of DSNs, spread over a window, and undoes it on
// Recover for every DSN it acted on.
type dsnFault struct {
	act      dsnAction
	env      Env
	target   Target
	window   time.Duration
	parallel int

	mu        sync.Mutex
	affected  []string
	recovered bool
	undo      func(context.Context) error // from a Batcher
}

func newDSNFault(act dsnAction, spec Spec, env Env) (*dsnFault, error) {
	p := ParamValues{Decl: []Param{paramWindow, paramParallel}, Got: spec.Params}
	window, err := p.Duration("window")
	if err != nil {
		return nil, err
	}
	parallel, err := p.Int("parallel")
	if err != nil {
		return nil, err
	}
	if parallel < 1 {
		return nil, specErr("params.parallel", "must be at least 1")
	}
	return &dsnFault{act: act, env: env, target: spec.Target, window: window, parallel: parallel}, nil
}

// Momentary reports whether the action needs no undoing (a restart is over once done).
func (f *dsnFault) Momentary() bool { return f.act.undo == nil }

// Affected lists the DSNs acted on so far, sorted.
func (f *dsnFault) Affected() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := append([]string(nil), f.affected...)
	sort.Strings(out)
	return out
}

// forget drops id from the affected DSNs after its action failed, so that Recover leaves it alone.
func (f *dsnFault) forget(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, a := range f.affected {
		if a == id {
			f.affected = append(f.affected[:i], f.affected[i+1:]...)
			return
		}
	}
}

// maxReportedErrors bounds how many per-DSN errors one injection reports.
const maxReportedErrors = 5

// Inject acts on each selected DSN: DSN i of n at i*window/n after the start, at most parallel
// at a time. It stops issuing actions when ctx ends or Recover has run.
func (f *dsnFault) Inject(ctx context.Context) error {
	ids, err := Select(f.env.Fleet.DSNs(), f.target, f.env.Seed)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		f.env.logger().Info("fault chose no DSN", "action", f.act.verb, "probability", f.target.Probability)
		return nil
	}
	if b, ok := f.env.Fleet.(Batcher); ok {
		return f.injectBatch(ctx, b, ids)
	}
	clock := f.env.clock()
	start := clock.Now()
	sem := make(chan struct{}, f.parallel)
	var (
		wg     sync.WaitGroup
		errMu  sync.Mutex
		errs   []error
		failed int
	)
	fail := func(id string, err error) {
		errMu.Lock()
		defer errMu.Unlock()
		failed++
		if len(errs) < maxReportedErrors {
			errs = append(errs, fmt.Errorf("%s %s: %w", f.act.verb, id, err))
		}
	}
	var stopErr error
	for i, id := range ids {
		if f.window > 0 && len(ids) > 1 {
			at := start.Add(time.Duration(int64(f.window) * int64(i) / int64(len(ids))))
			if err := sleep(ctx, clock, at.Sub(clock.Now())); err != nil {
				stopErr = err
				break
			}
		}
		select {
		case <-ctx.Done():
			stopErr = ctx.Err()
		case sem <- struct{}{}:
		}
		if stopErr != nil {
			break
		}
		f.mu.Lock()
		if f.recovered {
			f.mu.Unlock()
			<-sem
			stopErr = errors.New("recovered during injection")
			break
		}
		f.affected = append(f.affected, id)
		f.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := f.act.do(ctx, f.env.Fleet, id); err != nil {
				fail(id, err)
				f.forget(id)
			}
		}()
	}
	wg.Wait()
	f.env.logger().Info("fault injected", "action", f.act.verb, "dsns", len(f.Affected()), "of", len(ids), "failed", failed)
	if failed > 0 {
		errs = append([]error{fmt.Errorf("%d of %d %ss failed", failed, len(ids), f.act.verb)}, errs...)
	}
	if stopErr != nil {
		errs = append(errs, stopErr)
	}
	return errors.Join(errs...)
}

// injectBatch hands the whole selection to the fleet at once and waits out the window, so that
// Inject returns when the last DSN has been acted on, as it does one DSN at a time.
func (f *dsnFault) injectBatch(ctx context.Context, b Batcher, ids []string) error {
	f.mu.Lock()
	if f.recovered {
		f.mu.Unlock()
		return errors.New("recovered before injection")
	}
	undo, err := b.Batch(ctx, f.act.verb, ids, f.window)
	if err != nil {
		f.mu.Unlock()
		return fmt.Errorf("%s %d DSNs: %w", f.act.verb, len(ids), err)
	}
	f.affected = append(f.affected, ids...)
	f.undo = undo
	f.mu.Unlock()
	f.env.logger().Info("fault injected", "action", f.act.verb, "dsns", len(ids), "window", f.window)
	return sleep(ctx, f.env.clock(), f.window)
}

// Recover undoes the action on every DSN it was applied to, once.
func (f *dsnFault) Recover(ctx context.Context) error {
	f.mu.Lock()
	if f.recovered {
		f.mu.Unlock()
		return nil
	}
	f.recovered = true
	ids := append([]string(nil), f.affected...)
	undo := f.undo
	f.mu.Unlock()
	if undo != nil {
		return undo(ctx)
	}
	if f.act.undo == nil {
		return nil
	}
	sem := make(chan struct{}, f.parallel)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		errs   []error
		failed int
	)
	for _, id := range ids {
		// Recovery runs even when ctx has ended (an aborted run must still leave the fleet
		// whole), so it only uses ctx for the calls themselves.
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := f.act.undo(ctx, f.env.Fleet, id); err != nil {
				mu.Lock()
				failed++
				if len(errs) < maxReportedErrors {
					errs = append(errs, fmt.Errorf("%s %s: %w", f.act.undoVrb, id, err))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if failed > 0 {
		errs = append([]error{fmt.Errorf("%d of %d %ss failed", failed, len(ids), f.act.undoVrb)}, errs...)
	}
	return errors.Join(errs...)
}
