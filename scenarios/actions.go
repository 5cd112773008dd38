package scenarios

import (
	"context"
	"log/slog"
	"strings"

	"github.com/dsnscale/dsnscale/faults"
	"github.com/dsnscale/dsnscale/internal/registry"
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

// actions holds the action kinds by name.
var actions = registry.New[Action]("action")

// RegisterAction adds an action kind; a name already taken is an error.
func RegisterAction(a Action) error { return actions.Register(a.Name(), a) }

func mustRegisterAction(a Action) { actions.MustRegister(a.Name(), a) }

// LookupAction returns the action called name.
func LookupAction(name string) (Action, bool) { return actions.Lookup(name) }

// ActionNames lists the registered actions, sorted.
func ActionNames() []string { return actions.Names() }

func joinNames(names []string) string { return strings.Join(names, ", ") }
