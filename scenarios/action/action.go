// Package action holds the actions a scenario step can take at its start through the control
// plane's northbound API (seeding intent, changing it), one file each, and the registry scenario
// validation checks names and parameters against.
package action

import (
	"context"
	"log/slog"

	"github.com/dsnscale/dsnscale/controlplane/model"
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
	Run(ctx context.Context, env Env, params faults.ParamValues) error
}

// API is the part of the control plane's northbound API actions use.
type API interface {
	// Create creates an object and returns it as stored (with its resourceVersion).
	Create(ctx context.Context, obj *model.Object) (*model.Object, error)
	// Update replaces an object and returns it as stored.
	Update(ctx context.Context, obj *model.Object) (*model.Object, error)
	// List lists the objects of a kind (in tenant, for namespaced kinds; "" for all) whose
	// labels carry every key/value of selector.
	List(ctx context.Context, kind model.Kind, tenant string, selector map[string]string) ([]*model.Object, error)
}

// Env is what an action acts through.
type Env struct {
	API       API
	Revisions *measure.Revisions
	// Acked is the ledger of writes the API acknowledged (acked-writes).
	Acked  *measure.AckedWrites
	Clock  faults.Clock
	Logger *slog.Logger
	Seed   int64
	// Labels are the label sets of the fleet's DSN groups, for actions that target them.
	Labels []map[string]string
}

// actions holds the action kinds by name.
var actions = registry.New[Action]("action")

// Register adds an action kind; a name already taken is an error.
func Register(a Action) error { return actions.Register(a.Name(), a) }

func mustRegister(a Action) { actions.MustRegister(a.Name(), a) }

// Lookup returns the action called name.
func Lookup(name string) (Action, bool) { return actions.Lookup(name) }

// Names lists the registered actions, sorted.
func Names() []string { return actions.Names() }
