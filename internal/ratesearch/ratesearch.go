// Package ratesearch finds the highest rate a target holds and reports it as a bracket: the
// highest rate that held and the lowest that failed, within a stated resolution.
//
// A rate holds when one run at it holds: fewer errors than Criteria.MaxErrorRate of the
// requests, at least Criteria.MinAchieved of the rate answered successfully, and a p99 latency
// within Criteria.MaxP99. There are no second tries: a rate that failed once is a failed rate,
// so a figure cannot be the luckier of two runs. The search grows the rate until a run fails
// (or shrinks it until one holds), then bisects the bracket until its width is within the
// resolution. A search that runs out of budget, finds no held rate or never fails below its
// ceiling has no figure: Result returns an error saying which.
package ratesearch

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// Errors of a search that has no figure.
var (
	// ErrConfig marks an invalid Config.
	ErrConfig = errors.New("ratesearch: invalid config")
	// ErrBudget: the budget ran out before the bracket was within the resolution.
	ErrBudget = errors.New("search budget spent before the bracket was within the resolution")
	// ErrNoneHeld: no rate held down to the floor.
	ErrNoneHeld = errors.New("no rate held down to the floor")
	// ErrNoFailure: every rate held up to the ceiling, so there is no upper bound.
	ErrNoFailure = errors.New("every rate held up to the ceiling")
)

// Criteria decide whether one run at a rate held.
type Criteria struct {
	// MaxErrorRate is the share of requests that may fail (0.01: fewer than 1%).
	MaxErrorRate float64
	// MinAchieved is the share of the rate that must be answered successfully (0.95).
	MinAchieved float64
	// MaxP99 bounds the run's p99 latency.
	MaxP99 time.Duration
}

// Validate checks the criteria.
func (c Criteria) Validate() error {
	switch {
	case !(c.MaxErrorRate > 0 && c.MaxErrorRate < 1):
		return fmt.Errorf("%w: Criteria.MaxErrorRate %v: want a share between 0 and 1 (excluded)", ErrConfig, c.MaxErrorRate)
	case !(c.MinAchieved > 0 && c.MinAchieved <= 1):
		return fmt.Errorf("%w: Criteria.MinAchieved %v: want a share above 0, at most 1", ErrConfig, c.MinAchieved)
	case c.MaxP99 <= 0:
		return fmt.Errorf("%w: Criteria.MaxP99 %s: want a positive duration", ErrConfig, c.MaxP99)
	}
	return nil
}

// String states the criteria, for logs and error messages.
func (c Criteria) String() string {
	return fmt.Sprintf("errors < %g%%, achieved >= %g%% of the rate, p99 <= %s", c.MaxErrorRate*100, c.MinAchieved*100, c.MaxP99)
}

// Outcome is what one run at a rate measured.
type Outcome struct {
	Rate     float64
	Requests int64
	Errors   int64
	// Achieved is successful responses per second.
	Achieved float64
	P99      time.Duration
	// Detail is the caller's own record of the run, kept with the outcome.
	Detail any
}

// Holds says whether the run held under c and, when not, why.
func (c Criteria) Holds(o Outcome) (bool, string) {
	switch {
	case o.Requests == 0:
		return false, "no request completed"
	case float64(o.Errors) >= c.MaxErrorRate*float64(o.Requests):
		return false, fmt.Sprintf("%d errors of %d requests (limit < %g%%)", o.Errors, o.Requests, c.MaxErrorRate*100)
	case o.Achieved < c.MinAchieved*o.Rate:
		return false, fmt.Sprintf("achieved %.0f/s of %.0f/s (limit >= %g%%)", o.Achieved, o.Rate, c.MinAchieved*100)
	case o.P99 > c.MaxP99:
		return false, fmt.Sprintf("p99 %s over the bound of %s", o.P99, c.MaxP99)
	}
	return true, ""
}

// Config configures a Search. It is pure data.
type Config struct {
	// Start is the first rate tried; Floor and Ceil bound the rates tried.
	Start, Floor, Ceil float64
	// Growth multiplies the rate while every run held (and divides it while none has); above 1.
	Growth float64
	// Resolution is the bracket's largest width, relative to the held rate (0.1: within 10%).
	Resolution float64
	Criteria   Criteria
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case !(c.Floor > 0) || math.IsInf(c.Floor, 0):
		return fmt.Errorf("%w: Floor %v: want a positive rate", ErrConfig, c.Floor)
	case !(c.Ceil >= c.Floor) || math.IsInf(c.Ceil, 0):
		return fmt.Errorf("%w: Ceil %v: want a rate at least the floor %v", ErrConfig, c.Ceil, c.Floor)
	case !(c.Start >= c.Floor && c.Start <= c.Ceil):
		return fmt.Errorf("%w: Start %v: want a rate from the floor %v to the ceiling %v", ErrConfig, c.Start, c.Floor, c.Ceil)
	case !(c.Growth > 1) || math.IsInf(c.Growth, 0):
		return fmt.Errorf("%w: Growth %v: want a factor above 1", ErrConfig, c.Growth)
	case !(c.Resolution > 0 && c.Resolution < 1):
		return fmt.Errorf("%w: Resolution %v: want a share between 0 and 1 (excluded)", ErrConfig, c.Resolution)
	}
	return c.Criteria.Validate()
}

// Trial runs the target at rate once.
type Trial func(ctx context.Context, rate float64) (Outcome, error)

// Bracket is a finished search: Held held, Failed failed, and no rate between them was tried.
type Bracket struct {
	Held, Failed float64
	// HeldOutcome and FailedOutcome are the runs at those rates.
	HeldOutcome, FailedOutcome Outcome
	// Trials counts the runs the search made.
	Trials int
}

// Search is one rate search. It is not safe for concurrent use.
type Search struct {
	// Name labels the search in logs and errors.
	Name string

	cfg          Config
	try          Trial
	rate         float64 // the next rate to try
	held, failed *Outcome
	trials       int
	err          error // why the search ended without a bracket
	done         bool
}

// New makes a search.
func New(name string, cfg Config, try Trial) (*Search, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &Search{Name: name, cfg: cfg, try: try, rate: cfg.Start}, nil
}

// Done says whether the search has ended, with a bracket or an error.
func (s *Search) Done() bool { return s.done }

// Next is the rate the next step tries.
func (s *Search) Next() float64 { return s.rate }

// Step runs one trial at the next rate and moves the search on. An error of the trial itself
// (the run broke, not the target failed) is returned and leaves the search where it was.
func (s *Search) Step(ctx context.Context) (Outcome, error) {
	if s.done {
		return Outcome{}, fmt.Errorf("%s: the search has ended", s.Name)
	}
	o, err := s.try(ctx, s.rate)
	if err != nil {
		return o, err
	}
	o.Rate = s.rate
	s.record(o)
	return o, nil
}

func (s *Search) record(o Outcome) {
	s.trials++
	if ok, _ := s.cfg.Criteria.Holds(o); ok {
		s.held = &o
	} else {
		s.failed = &o
	}
	switch {
	case s.failed == nil:
		if s.rate >= s.cfg.Ceil {
			s.end(fmt.Errorf("%w (%.0f/s)", ErrNoFailure, s.cfg.Ceil))
			return
		}
		s.rate = math.Min(s.cfg.Ceil, math.Round(s.rate*s.cfg.Growth))
	case s.held == nil:
		if s.rate <= s.cfg.Floor {
			s.end(fmt.Errorf("%w (%.0f/s)", ErrNoneHeld, s.cfg.Floor))
			return
		}
		s.rate = math.Max(s.cfg.Floor, math.Round(s.rate/s.cfg.Growth))
	default:
		lo, hi := s.held.Rate, s.failed.Rate
		mid := math.Round((lo + hi) / 2)
		if hi-lo <= s.cfg.Resolution*lo || mid <= lo || mid >= hi {
			s.end(nil)
			return
		}
		s.rate = mid
	}
}

func (s *Search) end(err error) {
	s.done, s.err = true, err
}

// Abandon ends an unfinished search for want of budget.
func (s *Search) Abandon() {
	if s.done {
		return
	}
	var state string
	switch {
	case s.held != nil && s.failed != nil:
		state = fmt.Sprintf("held %.0f/s, failed %.0f/s", s.held.Rate, s.failed.Rate)
	case s.held != nil:
		state = fmt.Sprintf("held %.0f/s, nothing failed yet", s.held.Rate)
	case s.failed != nil:
		state = fmt.Sprintf("failed %.0f/s, nothing held yet", s.failed.Rate)
	default:
		state = "nothing tried"
	}
	s.end(fmt.Errorf("%w after %d trials (%s; resolution %g%%)", ErrBudget, s.trials, state, s.cfg.Resolution*100))
}

// Result is the search's bracket, or why it has none.
func (s *Search) Result() (Bracket, error) {
	if !s.done {
		return Bracket{}, fmt.Errorf("%s: the search has not ended", s.Name)
	}
	if s.err != nil {
		return Bracket{}, fmt.Errorf("%s: %w", s.Name, s.err)
	}
	return Bracket{Held: s.held.Rate, Failed: s.failed.Rate, HeldOutcome: *s.held, FailedOutcome: *s.failed, Trials: s.trials}, nil
}

// Budget bounds a set of interleaved searches.
type Budget struct {
	// Until is when the budget ends; StepCost is how long a step takes at most, so that no step
	// starts that would end past Until. A zero Until means no time limit.
	Until    time.Time
	StepCost time.Duration
	// Steps bounds the trials of each search; 0 means no bound.
	Steps int
	// Now reads the time; nil means time.Now.
	Now func() time.Time
}

// Run interleaves the searches step by step, so that a change in the machine's load over time
// falls on all of them alike, until each has ended or b is spent; a search the budget stops is
// abandoned (its Result is an ErrBudget error). logf, when not nil, gets a line per step. Run
// returns a trial's own error at once.
func Run(ctx context.Context, b Budget, logf func(string, ...any), searches ...*Search) error {
	now := b.Now
	if now == nil {
		now = time.Now
	}
	for {
		active := false
		for _, s := range searches {
			if s.done {
				continue
			}
			if (!b.Until.IsZero() && now().Add(b.StepCost).After(b.Until)) || (b.Steps > 0 && s.trials >= b.Steps) {
				s.Abandon()
				if logf != nil {
					logf("%s: %v", s.Name, s.err)
				}
				continue
			}
			active = true
			o, err := s.Step(ctx)
			if err != nil {
				return fmt.Errorf("%s at %.0f/s: %w", s.Name, s.rate, err)
			}
			if logf != nil {
				verdict := "held"
				if ok, why := s.cfg.Criteria.Holds(o); !ok {
					verdict = "failed: " + why
				}
				logf("%s at %.0f/s: %s", s.Name, o.Rate, verdict)
			}
		}
		if !active {
			return nil
		}
	}
}
