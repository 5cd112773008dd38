package loadgen

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Sentinel errors; test them with errors.Is.
var (
	// ErrInvalidConfig marks every configuration error (each is a *FieldError).
	ErrInvalidConfig = errors.New("invalid executor config")
	// ErrUnknownExecutor is returned for an executor type nobody registered.
	ErrUnknownExecutor = errors.New("unknown executor type")
	// ErrDuplicateExecutor is returned when an executor type is registered twice.
	ErrDuplicateExecutor = errors.New("executor type already registered")
)

// Bounds on a configuration; beyond them a run is a typo, not a test.
const (
	MaxRate         Rate          = 1_000_000
	MaxVUsLimit                   = 100_000
	MaxDuration     time.Duration = 7 * 24 * time.Hour
	MaxStages                     = 1000
	DefaultMix                    = "default"
	DefaultGraceful               = 10 * time.Second
)

// ExecutorConfig configures one executor. It is pure data: Validate checks it, Plan describes
// what it would do, and the zero values of optional fields are filled by WithDefaults.
//
// Which fields apply depends on Type:
//
//	constant-arrival-rate  Rate, Duration, PreAllocatedVUs, MaxVUs
//	ramping-arrival-rate   Rate (the start rate), Stages (Duration, Rate), PreAllocatedVUs, MaxVUs
//	constant-vus           VUs, Duration
//	ramping-vus            VUs (the start VUs), Stages (Duration, VUs)
//
// Setting a field the type does not use is an error, so a typo cannot silently change a test.
type ExecutorConfig struct {
	// Type names a registered executor type; empty means constant-arrival-rate.
	Type string `yaml:"type,omitempty" json:"type,omitempty"`
	// Rate is the arrival rate (constant-arrival-rate) or the start rate (ramping-arrival-rate).
	Rate Rate `yaml:"rate,omitempty" json:"rate,omitempty"`
	// Duration is how long new iterations start (constant executors).
	Duration time.Duration `yaml:"duration,omitempty" json:"duration,omitempty"`
	// Stages ramp linearly, each from the previous target to its own over its duration.
	Stages []Stage `yaml:"stages,omitempty" json:"stages,omitempty"`
	// VUs is the number of virtual users (constant-vus) or the start number (ramping-vus).
	VUs int `yaml:"vus,omitempty" json:"vus,omitempty"`
	// MaxVUs caps the virtual users an arrival-rate executor may start; an iteration that finds
	// all of them busy is dropped and counted as missed.
	MaxVUs int `yaml:"maxVUs,omitempty" json:"maxVUs,omitempty"`
	// PreAllocatedVUs are started before the first iteration (arrival-rate executors).
	PreAllocatedVUs int `yaml:"preAllocatedVUs,omitempty" json:"preAllocatedVUs,omitempty"`
	// GracefulStop is how long in-flight iterations may finish after the schedule ends before
	// they are interrupted (default 10s).
	GracefulStop time.Duration `yaml:"gracefulStop,omitempty" json:"gracefulStop,omitempty"`
	// Mix names a built-in operation mix or a mix file (default "default"). The executor does
	// not read it; whoever builds the Workload does.
	Mix string `yaml:"mix,omitempty" json:"mix,omitempty"`
}

// Stage is one linear ramp of a ramping executor.
type Stage struct {
	Duration time.Duration `yaml:"duration" json:"duration"`
	// Rate is the target arrival rate at the end of the stage (ramping-arrival-rate).
	Rate Rate `yaml:"rate,omitempty" json:"rate,omitempty"`
	// VUs is the target number of virtual users at the end of the stage (ramping-vus).
	VUs int `yaml:"vus,omitempty" json:"vus,omitempty"`
}

// FieldError is one configuration problem: the field (as written in YAML, with indexes) and
// what is wrong with it.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// Is makes every FieldError match ErrInvalidConfig.
func (e *FieldError) Is(target error) bool { return target == ErrInvalidConfig }

// fieldErrors collects problems; err joins them (nil when there are none).
type fieldErrors []error

func (fe *fieldErrors) add(field, format string, args ...any) {
	*fe = append(*fe, &FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (fe fieldErrors) err() error { return errors.Join(fe...) }

// WithDefaults returns a copy with empty optional fields filled: the type, the mix, the
// graceful stop, and the type's own defaults (VU pools sized from the peak rate).
func (c ExecutorConfig) WithDefaults() ExecutorConfig {
	if c.Type == "" {
		c.Type = ConstantArrivalRate
	}
	if c.Mix == "" {
		c.Mix = DefaultMix
	}
	if c.GracefulStop == 0 {
		c.GracefulStop = DefaultGraceful
	}
	c.Stages = append([]Stage(nil), c.Stages...)
	if t, ok := Lookup(c.Type); ok && t.Defaults != nil {
		c = t.Defaults(c)
	}
	return c
}

// Validate checks the configuration and returns every problem found, each a *FieldError
// matching ErrInvalidConfig (or ErrUnknownExecutor for the type).
func (c ExecutorConfig) Validate() error {
	typ := c.Type
	if typ == "" {
		typ = ConstantArrivalRate
	}
	t, ok := Lookup(typ)
	if !ok {
		return fmt.Errorf("%w: type: %q%s", ErrUnknownExecutor, c.Type, executors.Hint(c.Type))
	}
	var fe fieldErrors
	checkCommon(c, &fe)
	if len(fe) > 0 {
		return fe.err()
	}
	if t.Validate != nil {
		return t.Validate(c.WithDefaults())
	}
	return nil
}

// Plan returns what the executor would do, without doing it. It validates first.
func (c ExecutorConfig) Plan() (Plan, error) {
	if err := c.Validate(); err != nil {
		return Plan{}, err
	}
	c = c.WithDefaults()
	t, _ := Lookup(c.Type)
	p := t.Plan(c)
	p.Type, p.Model, p.GracefulStop, p.Mix = c.Type, t.Model, c.GracefulStop, c.Mix
	return p, nil
}

func checkCommon(c ExecutorConfig, fe *fieldErrors) {
	checkRate("rate", c.Rate, fe)
	checkDuration("duration", c.Duration, fe)
	if c.GracefulStop < 0 || c.GracefulStop > time.Hour {
		fe.add("gracefulStop", "must be in 0-1h, got %s", c.GracefulStop)
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"vus", c.VUs}, {"maxVUs", c.MaxVUs}, {"preAllocatedVUs", c.PreAllocatedVUs}} {
		if f.v < 0 || f.v > MaxVUsLimit {
			fe.add(f.name, "must be in 0-%d, got %d", MaxVUsLimit, f.v)
		}
	}
	if len(c.Stages) > MaxStages {
		fe.add("stages", "%d stages, at most %d", len(c.Stages), MaxStages)
	}
	for i, s := range c.Stages {
		p := fmt.Sprintf("stages[%d]", i)
		if s.Duration <= 0 {
			fe.add(p+".duration", "must be positive, got %s", s.Duration)
		} else {
			checkDuration(p+".duration", s.Duration, fe)
		}
		checkRate(p+".rate", s.Rate, fe)
		if s.VUs < 0 || s.VUs > MaxVUsLimit {
			fe.add(p+".vus", "must be in 0-%d, got %d", MaxVUsLimit, s.VUs)
		}
	}
	var total time.Duration
	for _, s := range c.Stages {
		total += s.Duration
	}
	if total > MaxDuration {
		fe.add("stages", "total duration %s is over %s", total, MaxDuration)
	}
}

func checkRate(field string, r Rate, fe *fieldErrors) {
	switch {
	case math.IsNaN(float64(r)) || math.IsInf(float64(r), 0):
		fe.add(field, "must be a finite rate")
	case r < 0:
		fe.add(field, "must not be negative, got %s", r)
	case r > MaxRate:
		fe.add(field, "%s is over the limit of %s", r, MaxRate)
	}
}

func checkDuration(field string, d time.Duration, fe *fieldErrors) {
	switch {
	case d < 0:
		fe.add(field, "must not be negative, got %s", d)
	case d > MaxDuration:
		fe.add(field, "%s is over the limit of %s", d, MaxDuration)
	}
}
