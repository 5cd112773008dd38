package runner

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/dsnscale/dsnscale/faults"
	"github.com/dsnscale/dsnscale/loadgen"
	"github.com/dsnscale/dsnscale/loadgen/northbound"
	"github.com/dsnscale/dsnscale/reports"
	"github.com/dsnscale/dsnscale/scenarios"
	"github.com/dsnscale/dsnscale/scenarios/action"
	"github.com/dsnscale/dsnscale/scenarios/measure"
	"github.com/dsnscale/dsnscale/simdsn/stage"
)

// settleWait bounds how long a wait condition holds off after a DSN fault until every affected
// DSN has reported a state change, so that a fleet that has not yet noticed a restart is not
// taken as converged.
const settleWait = 10 * time.Second

// conditionPoll is how often a wait condition is checked.
const conditionPoll = 100 * time.Millisecond

// runStep runs step i: its actions, then its load and faults while it waits out its duration or
// its condition. It returns an error when the run must stop (aborted, or an action failed).
func (e *engine) runStep(ctx context.Context, i int) error {
	st := &e.s.Steps[i]
	// The load's objects are set up before the step starts, and the fleet given time to apply
	// them, so that the step measures its load and not the setup's burst of changes.
	var load loadgen.Executor
	var workload *northbound.Workload
	if st.Load != nil {
		// The setup is a phase of its own in the record, so that its time and its burst of
		// changes are seen and kept apart from the step's.
		setup := stepRun{name: scenarios.SetupStepName(st.Name), phase: reports.PhaseSetup, start: e.clock.Now()}
		e.mu.Lock()
		e.current = setup.name
		e.mu.Unlock()
		var err error
		workload, load, err = e.prepareLoad(ctx, st)
		setup.end = e.clock.Now()
		if err != nil {
			if ctx.Err() != nil {
				err = fmt.Errorf("%w: %w", ErrAborted, ctx.Err())
			} else {
				err = fmt.Errorf("load setup: %w", err)
			}
			setup.err = err
		}
		e.mu.Lock()
		e.steps = append(e.steps, setup)
		e.mu.Unlock()
		if err != nil {
			return err
		}
	}
	sr := stepRun{name: st.Name, start: e.clock.Now()}
	e.mu.Lock()
	e.current = st.Name
	e.mu.Unlock()
	e.prog.Step(i, len(e.s.Steps), st, sr.start)
	e.log.Info("step started", "step", st.Name)
	finish := func(err error) error {
		if sr.end.IsZero() {
			sr.end = e.clock.Now()
		}
		sr.err = err
		e.mu.Lock()
		e.steps = append(e.steps, sr)
		e.mu.Unlock()
		e.log.Info("step ended", "step", st.Name, "err", err, "timedOut", sr.timedOut)
		return err
	}

	env := action.Env{API: e.cp.API(), Revisions: e.revisions, Clock: e.clock, Logger: e.log,
		Seed: e.s.Seed + int64(i), Labels: e.fleetLabels()}
	for j, a := range st.Actions {
		act, _ := action.Lookup(a.Kind)
		e.prog.Log("%s: action %s", st.Name, a.Kind)
		if err := act.Run(ctx, env, faults.ParamValues{Decl: act.Params(), Got: a.Params}); err != nil {
			if ctx.Err() != nil {
				return finish(fmt.Errorf("%w: %w", ErrAborted, ctx.Err()))
			}
			return finish(fmt.Errorf("actions[%d] %s: %w", j, a.Kind, err))
		}
	}

	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	loadDone := make(chan error, 1)
	if load != nil {
		go func() {
			sum, err := load.Run(loadCtx, e.requests)
			e.requests.AddSummary(st.Name, sum)
			workload.CloseIdleConnections()
			loadDone <- err
		}()
	} else {
		loadDone <- nil
	}

	faultCtx, stopFaults := context.WithCancel(ctx)
	defer stopFaults()
	injected, tracked := e.startFaults(faultCtx, i, st, sr.start)

	waitErr := e.wait(ctx, st, sr.start, injected, tracked)
	sr.end = e.clock.Now()
	if errors.Is(waitErr, errTimeout) {
		sr.timedOut = true
	}
	// DSNs that cannot be admitted fail the step with why, whatever else it waited for.
	admissionErr := e.checkAdmission()
	if admissionErr != nil {
		e.prog.Log("step %s: %v", st.Name, admissionErr)
	}

	stopLoad()
	if err := <-loadDone; err != nil && !errors.Is(err, context.Canceled) {
		e.note("step %s: load: %v", st.Name, err)
	}
	stopFaults()
	<-injected
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	for _, t := range tracked {
		if err := t.Recover(rctx); err != nil {
			e.note("step %s: recovering %s: %v", st.Name, t.Spec().Kind, err)
		}
	}
	cancel()
	e.dropPending(tracked)

	if ctx.Err() != nil {
		return finish(fmt.Errorf("%w: %w", ErrAborted, ctx.Err()))
	}
	if admissionErr != nil {
		// Like a wait that timed out, it fails the step, not the run.
		if sr.timedOut {
			admissionErr = fmt.Errorf("until %s: not reached within %s: %w", st.Until, st.Timeout, admissionErr)
		}
		_ = finish(admissionErr)
		return nil
	}
	if sr.timedOut {
		// A wait that timed out fails the step, not the run: the measurements say how far it got.
		_ = finish(fmt.Errorf("until %s: not reached within %s", st.Until, st.Timeout))
		return nil
	}
	return finish(nil)
}

// wait waits out the step: its duration, or its condition once its faults are in place.
func (e *engine) wait(ctx context.Context, st *scenarios.Step, start time.Time, injected <-chan struct{}, tracked []*faults.Tracked) error {
	if st.Until == nil {
		return sleepCtx(ctx, e.clock, st.Duration-e.clock.Now().Sub(start))
	}
	deadline := start.Add(st.Timeout)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-injected:
	case <-e.clock.After(deadline.Sub(e.clock.Now())):
		return errTimeout
	}
	e.awaitNoticed(ctx, tracked, deadline)
	cond, _ := scenarios.LookupCondition(st.Until.Condition)
	for {
		c := e.census(e.revisions.Latest())
		if cond.Holds(c, e.s.Fleet.Size, st.Until.Share) {
			return nil
		}
		if c.States[stage.Admitting.String()] > 0 && e.checkAdmission() != nil {
			return errAdmissionStuck // runStep says why
		}
		left := deadline.Sub(e.clock.Now())
		if left <= 0 {
			return errTimeout
		}
		if err := sleepCtx(ctx, e.clock, min(conditionPoll, left)); err != nil {
			return err
		}
	}
}

// awaitNoticed waits until every DSN a fault of the step acted on has reported a state change
// since the fault started, or settleWait has passed.
func (e *engine) awaitNoticed(ctx context.Context, tracked []*faults.Tracked, deadline time.Time) {
	limit := e.clock.Now().Add(settleWait)
	if deadline.Before(limit) {
		limit = deadline
	}
	for _, rec := range e.recorder.Injections() {
		if !e.ownInjection(rec, tracked) {
			continue
		}
		for _, id := range rec.DSNs {
			for e.fleet.StateSince(id).Before(rec.Start) {
				if !e.clock.Now().Before(limit) {
					e.note("not every DSN a %s fault acted on reported a change within %s", rec.Kind, settleWait)
					return
				}
				if sleepCtx(ctx, e.clock, conditionPoll) != nil {
					return
				}
			}
		}
	}
}

func (e *engine) ownInjection(rec faults.Injection, tracked []*faults.Tracked) bool {
	for _, t := range tracked {
		if t.Label() == rec.Label {
			return true
		}
	}
	return false
}

// startFaults schedules the step's faults; injected closes once every one has been injected
// (or given up when faultCtx ended).
func (e *engine) startFaults(faultCtx context.Context, i int, st *scenarios.Step, start time.Time) (<-chan struct{}, []*faults.Tracked) {
	injected := make(chan struct{})
	env := faults.Env{Fleet: e.fleet, ControlPlane: e.cp.Faults(), Clock: e.clock, Seed: e.s.Seed + int64(i), Logger: e.log}
	var wg sync.WaitGroup
	var tracked []*faults.Tracked
	for j := range st.Faults {
		fs := &st.Faults[j]
		label := st.Name + "/faults[" + strconv.Itoa(j) + "]"
		spec := fs.Spec()
		f, err := faults.Default.New(spec, env)
		if err != nil {
			e.note("%s: %v", label, err)
			continue
		}
		t := e.recorder.Track(label, spec, f)
		tracked = append(tracked, t)
		e.addPending(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if sleepCtx(faultCtx, e.clock, fs.Delay-e.clock.Now().Sub(start)) != nil {
				return
			}
			e.prog.Log("%s: injecting %s", st.Name, fs.Kind)
			if err := t.Inject(faultCtx); err != nil {
				e.log.Warn("fault injection", "fault", label, "err", err)
			}
			if fs.Duration > 0 {
				if sleepCtx(faultCtx, e.clock, fs.Duration) != nil {
					return
				}
				rctx, cancel := context.WithTimeout(context.WithoutCancel(faultCtx), time.Minute)
				defer cancel()
				if err := t.Recover(rctx); err != nil {
					e.log.Warn("fault recovery", "fault", label, "err", err)
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		close(injected)
	}()
	return injected, tracked
}

func (e *engine) addPending(t *faults.Tracked) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.pending = append(e.pending, t)
}

func (e *engine) dropPending(done []*faults.Tracked) {
	e.mu.Lock()
	defer e.mu.Unlock()
	kept := e.pending[:0]
	for _, p := range e.pending {
		drop := false
		for _, d := range done {
			drop = drop || p == d
		}
		if !drop {
			kept = append(kept, p)
		}
	}
	e.pending = kept
}

// setupSettle bounds the wait for the fleet to apply what a load's setup created.
const setupSettle = scenarios.LoadSetupSettle

// prepareLoad builds the step's workload, creates (or adopts) its mix's objects, waits until the
// fleet has applied them, and returns the executor, not yet running.
func (e *engine) prepareLoad(ctx context.Context, st *scenarios.Step) (*northbound.Workload, loadgen.Executor, error) {
	cfg := st.LoadConfig()
	m, err := scenarios.LoadMix(cfg.Mix, e.s.Dir)
	if err != nil {
		return nil, nil, err
	}
	token, err := e.token()
	if err != nil {
		return nil, nil, err
	}
	w, err := northbound.New(northbound.Config{Target: e.cp.APIURL(), Token: token, Mix: m, Logger: e.log})
	if err != nil {
		return nil, nil, err
	}
	e.prog.Log("%s: setting up the load's objects (mix %s)", st.Name, m.Name)
	stats, err := w.Setup(ctx)
	if err != nil {
		return nil, nil, err
	}
	e.log.Info("load setup", "step", st.Name, "stats", fmt.Sprintf("%+v", stats))
	// Learn the revision the setup reached, then let the fleet catch up with it.
	if rev, err := e.cp.API().Revision(ctx); err == nil {
		e.revisions.Add(measure.Mark{Revision: rev, At: e.clock.Now(), Source: measure.SourcePoll})
	}
	deadline := e.clock.Now().Add(setupSettle)
	cond, _ := scenarios.LookupCondition("converged")
	for !cond.Holds(e.census(e.revisions.Latest()), e.s.Fleet.Size, 1) {
		if !e.clock.Now().Before(deadline) {
			e.note("step %s: the fleet had not applied the load's setup after %s; the step started anyway", st.Name, setupSettle)
			break
		}
		if err := sleepCtx(ctx, e.clock, conditionPoll); err != nil {
			return nil, nil, err
		}
	}
	ex, err := loadgen.New(cfg, w, loadgen.Options{Logger: e.log})
	if err != nil {
		return nil, nil, err
	}
	return w, ex, nil
}

// sleepCtx waits d on c, or until ctx ends.
func sleepCtx(ctx context.Context, c Clock, d time.Duration) error { return faults.Sleep(ctx, c, d) }
