package scenarios

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"

	"github.com/dsnscale/dsnscale/faults"
	"github.com/dsnscale/dsnscale/scenarios/measure"
)

// Action is something a step does at its start through the control plane's northbound API, such
// as seeding intent or changing it.
type Action interface {
	Name() string
	Description() string
	// Params declares the parameters the action takes (typed as fault parameters are).
	Params() []faults.Param
	// Run performs the action; every change it commits goes to env.Revisions.
	Run(ctx context.Context, env ActionEnv, params faults.ParamValues) error
}

// ActionEnv is what an action acts through.
type ActionEnv struct {
	API       API
	Revisions *measure.Revisions
	Clock     Clock
	Logger    *slog.Logger
	Seed      int64
	// Labels are the label sets of the fleet's DSN groups, for actions that target them.
	Labels []map[string]string
}

var (
	actionsMu sync.RWMutex
	actions   = map[string]Action{}
)

// RegisterAction adds an action kind; a name already taken is an error.
func RegisterAction(a Action) error {
	actionsMu.Lock()
	defer actionsMu.Unlock()
	if _, dup := actions[a.Name()]; dup {
		return fmt.Errorf("scenarios: duplicate action %q", a.Name())
	}
	actions[a.Name()] = a
	return nil
}

func mustRegisterAction(a Action) {
	if err := RegisterAction(a); err != nil {
		panic(err)
	}
}

// LookupAction returns the action called name.
func LookupAction(name string) (Action, bool) {
	actionsMu.RLock()
	defer actionsMu.RUnlock()
	a, ok := actions[name]
	return a, ok
}

// ActionNames lists the registered actions, sorted.
func ActionNames() []string {
	actionsMu.RLock()
	defer actionsMu.RUnlock()
	out := make([]string, 0, len(actions))
	for n := range actions {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func joinNames(names []string) string { return strings.Join(names, ", ") }
