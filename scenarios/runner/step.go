package runner

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
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
				err = fmt.Errorf("%w: %w", ErrAborted, context.Cause(ctx))
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

	// Faults are scheduled before the actions run, so that they fire at their offsets however
	// long the actions take.
	faultCtx, stopFaults := context.WithCancel(ctx)
	defer stopFaults()
	sched := e.startFaults(faultCtx, i, st, sr.start)
	endFaults := func() error {
		stopFaults()
		sched.finished.Wait()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		for _, t := range sched.tracked {
			if err := t.Recover(rctx); err != nil {
				e.note("step %s: recovering %s: %v", st.Name, t.Spec().Kind, err)
			}
		}
		cancel()
		e.dropPending(sched.tracked)
		return e.faultErrors(ctx, st, sched)
	}

	env := action.Env{API: e.cp.API(), Revisions: e.revisions, Acked: e.acked, Clock: e.clock, Logger: e.log,
		Seed: e.s.Seed + int64(i), Labels: e.fleetLabels()}
	for j, a := range st.Actions {
		act, _ := action.Lookup(a.Kind)
		e.prog.Log("%s: action %s", st.Name, a.Kind)
		if err := act.Run(ctx, env, faults.ParamValues{Decl: act.Params(), Got: a.Params}); err != nil {
			sr.end = e.clock.Now()
			ferr := endFaults()
			if ctx.Err() != nil {
				return finish(fmt.Errorf("%w: %w", ErrAborted, context.Cause(ctx)))
			}
			return finish(errors.Join(fmt.Errorf("actions[%d] %s: %w", j, a.Kind, err), ferr))
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

	waitErr := e.wait(ctx, st, sr.start, sched.injected, sched.snapshot)
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
	faultErr := endFaults()

	if ctx.Err() != nil {
		return finish(fmt.Errorf("%w: %w", ErrAborted, context.Cause(ctx)))
	}
	if faultErr != nil {
		// A fault that did not keep to its plan breaks the run: what the step measured is not
		// what the scenario meant to measure.
		return finish(faultErr)
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
func (e *engine) wait(ctx context.Context, st *scenarios.Step, start time.Time, injected <-chan struct{}, tracked func() []*faults.Tracked) error {
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
	e.awaitNoticed(ctx, tracked(), deadline)
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

// faultSchedule is the step's faults as scheduled. injected closes once the first occurrence of
// every fault has been injected and, when it has a duration, recovered (or given up when the
// step ended); finished is done when no fault goroutine is left. tracked holds every occurrence
// injected so far, and failures why one did not keep to its plan.
type faultSchedule struct {
	injected <-chan struct{}
	finished sync.WaitGroup

	mu       sync.Mutex
	tracked  []*faults.Tracked
	failures map[*faults.Tracked]string
}

func (s *faultSchedule) add(t *faults.Tracked) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tracked = append(s.tracked, t)
}

func (s *faultSchedule) snapshot() []*faults.Tracked {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*faults.Tracked(nil), s.tracked...)
}

func (s *faultSchedule) fail(t *faults.Tracked, format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[t] = joinReason(s.failures[t], fmt.Sprintf(format, args...))
}

// startFaults schedules the step's faults, each in a goroutine of its own timed from start, so
// that nothing else the step does delays them. A fault with every repeats for the step: in a
// step of fixed duration each occurrence that fits in it, in a step that waits for a condition
// until the step ends.
func (e *engine) startFaults(faultCtx context.Context, i int, st *scenarios.Step, start time.Time) *faultSchedule {
	injected := make(chan struct{})
	sched := &faultSchedule{injected: injected, failures: map[*faults.Tracked]string{}}
	var first sync.WaitGroup
	for j := range st.Faults {
		first.Add(1)
		sched.finished.Add(1)
		go func() {
			defer sched.finished.Done()
			once := sync.OnceFunc(first.Done)
			defer once()
			e.runFault(faultCtx, i, j, st, start, sched, once)
		}()
	}
	go func() {
		first.Wait()
		close(injected)
	}()
	return sched
}

// runFault runs the occurrences of fault j of step i; firstDone is called once the first one
// is over.
func (e *engine) runFault(faultCtx context.Context, i, j int, st *scenarios.Step, start time.Time, sched *faultSchedule, firstDone func()) {
	fs := &st.Faults[j]
	spec := fs.Spec()
	length := st.Length()
	kind, _ := faults.Default.Lookup(fs.Kind)
	for k := 0; ; k++ {
		at := fs.Delay + time.Duration(k)*fs.Every
		if k > 0 && (fs.Every == 0 || (st.Until == nil && at+fs.Duration > length)) {
			return
		}
		label := st.Name + "/faults[" + strconv.Itoa(j) + "]"
		if k > 0 {
			label += "#" + strconv.Itoa(k+1)
		}
		// Each occurrence draws its targets afresh, and the same way in every run of the seed.
		seed := e.s.Seed + int64(i) + int64(k)*7919
		env := faults.Env{Fleet: e.fleet, ControlPlane: e.cp.Faults(), Network: e.net, Clock: e.clock, Seed: seed, Logger: e.log}
		if len(e.backends) > 0 {
			env.Backends = e.backends
		}
		f, err := faults.Default.New(spec, env)
		if err != nil {
			e.note("%s: %v", label, err)
			// Still tracked, so that the failure is recorded and judged like any other.
			f = unbuildable{err: err}
		}
		t := e.recorder.Track(label, spec, f)
		t.SetOptional(fs.Optional)
		sched.add(t)
		if err != nil {
			sched.fail(t, "not injected: %v", err)
			return
		}
		e.addPending(t)
		if sleepCtx(faultCtx, e.clock, at-e.clock.Now().Sub(start)) != nil {
			if k == 0 {
				sched.fail(t, "not injected: the step ended before its offset +%s", fs.Delay)
			}
			return
		}
		// A control-plane fault with a probability fires or not as a whole.
		if kind != nil && kind.Scope() == faults.ScopeControlPlane && fs.Probability > 0 && fs.Probability < 1 &&
			rand.New(rand.NewPCG(uint64(seed), 0x70726f62)).Float64() >= float64(fs.Probability) {
			// Not injected, so not recorded: it did not fire.
			e.prog.Log("%s: %s skipped at +%s (probability %s)", st.Name, fs.Kind, at, formatShare(float64(fs.Probability)))
		} else if !e.occur(faultCtx, st, fs, t, sched, start, k) {
			return
		}
		if k == 0 {
			firstDone()
		}
	}
}

// occur injects one occurrence and, when it has a duration, recovers it after that long. It
// returns false when the step ended during it.
func (e *engine) occur(faultCtx context.Context, st *scenarios.Step, fs *scenarios.FaultSpec, t *faults.Tracked, sched *faultSchedule, start time.Time, k int) bool {
	// A repeat that a condition's step cuts short is the schedule ending, not a broken fault.
	excused := func() bool { return k > 0 && st.Until != nil }
	e.prog.Log("%s: injecting %s at +%s", st.Name, fs.Kind, e.clock.Now().Sub(start).Round(time.Millisecond))
	if err := t.Inject(faultCtx); err != nil {
		e.log.Warn("fault injection", "fault", t.Label(), "err", err)
		switch {
		case faultCtx.Err() != nil && excused():
		case faultCtx.Err() != nil:
			sched.fail(t, "cut short by the end of the step while being injected")
		default:
			sched.fail(t, "injection failed")
		}
		return faultCtx.Err() == nil
	}
	if fs.Duration == 0 {
		return true
	}
	injectedAt := e.clock.Now()
	if sleepCtx(faultCtx, e.clock, fs.Duration) != nil {
		if !excused() {
			sched.fail(t, "cut short by the end of the step after %s of its %s",
				e.clock.Now().Sub(injectedAt).Round(time.Millisecond), fs.Duration)
		}
		return false
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(faultCtx), time.Minute)
	defer cancel()
	if err := t.Recover(rctx); err != nil {
		e.log.Warn("fault recovery", "fault", t.Label(), "err", err)
	}
	return true
}

// unbuildable stands for a fault that could not be built, so that it is recorded as failed.
type unbuildable struct{ err error }

func (u unbuildable) Inject(context.Context) error  { return u.err }
func (u unbuildable) Recover(context.Context) error { return nil }

// faultErrors records the step's faults that did not keep to their plan and returns the
// failures of those not marked optional. Nothing is judged when the run itself was aborted:
// the abort is the error then.
func (e *engine) faultErrors(ctx context.Context, st *scenarios.Step, sched *faultSchedule) error {
	if ctx.Err() != nil {
		return nil
	}
	sched.mu.Lock()
	defer sched.mu.Unlock()
	recErr := map[string]string{}
	for _, in := range e.recorder.Injections() {
		if in.RecoverErr != "" {
			recErr[in.Label] = in.RecoverErr
		}
	}
	var errs []error
	for _, t := range sched.tracked {
		if r := recErr[t.Label()]; r != "" {
			sched.failures[t] = joinReason(sched.failures[t], "recovery failed: "+r)
		}
		reason := sched.failures[t]
		if reason == "" {
			continue
		}
		t.Fail(reason)
		msg := fmt.Sprintf("%s (%s): %s", t.Label(), t.Spec().Kind, reason)
		if t.Optional() {
			e.note("optional fault %s", msg)
			e.prog.Log("warning: optional fault %s", msg)
			continue
		}
		e.prog.Log("error: fault %s", msg)
		errs = append(errs, fmt.Errorf("fault %s", msg))
	}
	return errors.Join(errs...)
}

func joinReason(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
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
	w, err := northbound.New(northbound.Config{Target: e.loadURL, Token: token, Mix: m, Logger: e.log})
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

func formatShare(f float64) string { return strconv.FormatFloat(f*100, 'f', -1, 64) + "%" }
