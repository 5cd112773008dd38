package loadgen

import (
	"fmt"

	"github.com/dsnscale/dsnscale/internal/registry"
)

// ExecutorType is a kind of executor: how to default, check, plan and build one.
type ExecutorType struct {
	// Name is what ExecutorConfig.Type says ("constant-arrival-rate").
	Name  string
	Model Model
	// Defaults fills the type's optional fields (may be nil).
	Defaults func(ExecutorConfig) ExecutorConfig
	// Validate checks a defaulted config (whose common fields are already checked) and returns
	// its problems as *FieldError values, joined.
	Validate func(ExecutorConfig) error
	// Plan describes a valid, defaulted config.
	Plan func(ExecutorConfig) Plan
	// New builds an executor from a valid, defaulted config.
	New func(c ExecutorConfig, w Workload, o Options) Executor
}

// executors holds the executor types by name.
var executors = registry.New[ExecutorType]("executor type")

// Register adds an executor type; it refuses an incomplete type or a name already taken.
func Register(t ExecutorType) error {
	if t.Name == "" || t.Plan == nil || t.New == nil || (t.Model != OpenModel && t.Model != ClosedModel) {
		return fmt.Errorf("loadgen: incomplete executor type %q", t.Name)
	}
	if err := executors.Register(t.Name, t); err != nil {
		return fmt.Errorf("%w: %w", ErrDuplicateExecutor, err)
	}
	return nil
}

func mustRegister(t ExecutorType) {
	if err := Register(t); err != nil {
		panic(err)
	}
}

// Lookup returns the executor type registered under name.
func Lookup(name string) (ExecutorType, bool) { return executors.Lookup(name) }

// Types lists the registered executor type names, sorted.
func Types() []string { return executors.Names() }

// New validates cfg and builds its executor around w.
func New(cfg ExecutorConfig, w Workload, o Options) (Executor, error) {
	if w == nil {
		return nil, fmt.Errorf("%w: no workload", ErrInvalidConfig)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	t, _ := Lookup(cfg.Type)
	return t.New(cfg, w, o.withDefaults()), nil
}
