package faults

import (
	"fmt"

	"github.com/dsnscale/dsnscale/internal/registry"
)

// Registry maps kind names to kinds. The zero value is empty and ready to use.
type Registry struct {
	kinds registry.Registry[Kind]
}

// Default holds the kinds of this package.
var Default = &Registry{}

// MustRegister registers k in Default, panicking on a duplicate: kinds register from init
// functions, where a duplicate is a programming error.
func MustRegister(k Kind) {
	if err := Default.Register(k); err != nil {
		panic(err)
	}
}

// Register adds a kind; a second kind with the same name gets ErrDuplicate.
func (r *Registry) Register(k Kind) error {
	if k == nil || k.Name() == "" {
		return fmt.Errorf("faults: register: kind without a name")
	}
	if err := r.kinds.Register(k.Name(), k); err != nil {
		return fmt.Errorf("%w: %q", ErrDuplicate, k.Name())
	}
	return nil
}

// Lookup returns the kind called name.
func (r *Registry) Lookup(name string) (Kind, bool) { return r.kinds.Lookup(name) }

// Names lists the registered kind names, sorted.
func (r *Registry) Names() []string { return r.kinds.Names() }

// Kinds lists the registered kinds by name.
func (r *Registry) Kinds() []Kind { return r.kinds.All() }

// Hint is the tail of a message about an unknown kind name: the closest known kind and the
// known ones.
func (r *Registry) Hint(name string) string { return registry.Suggest(name, r.Names()) }

// Validate checks spec against the registry: a known kind, a target that suits its scope, known
// parameters of the right types. Errors are *SpecError with the failing field.
func (r *Registry) Validate(spec Spec) error {
	k, ok := r.Lookup(spec.Kind)
	if !ok {
		return &SpecError{Field: "kind", Err: fmt.Errorf("%w %q%s", ErrUnknownKind, spec.Kind, r.Hint(spec.Kind))}
	}
	switch k.Scope() {
	case ScopeControlPlane, ScopeBackend:
		if !spec.Target.IsZero() {
			return specErr("target", "%s acts on the control plane and takes no target", k.Name())
		}
	case ScopeDSNs:
		if err := spec.Target.Validate(); err != nil {
			return err
		}
		if len(spec.Target.Units) > 0 {
			return specErr("target.units", "%s acts on DSNs: select them by labels, dsns, fraction or count", k.Name())
		}
	case ScopeNetwork, ScopeUnits:
		if err := spec.Target.Validate(); err != nil {
			return err
		}
		if len(spec.Target.DSNs) > 0 {
			what := "links"
			if k.Scope() == ScopeUnits {
				what = "units"
			}
			return specErr("target.dsns", "%s acts on %s: select units by labels, units, fraction or count", k.Name(), what)
		}
	}
	if err := CheckParams(k.Params(), spec.Params); err != nil {
		return err
	}
	if c, ok := k.(SpecChecker); ok {
		return c.CheckSpec(spec)
	}
	return nil
}

// New validates spec and builds its fault in env. A kind whose scope env lacks gets
// ErrUnsupported.
func (r *Registry) New(spec Spec, env Env) (Fault, error) {
	if err := r.Validate(spec); err != nil {
		return nil, err
	}
	k, _ := r.Lookup(spec.Kind)
	switch k.Scope() {
	case ScopeControlPlane:
		if env.ControlPlane == nil {
			return nil, fmt.Errorf("%w: %s needs a control plane the harness runs (mode inprocess or process)", ErrUnsupported, k.Name())
		}
	case ScopeDSNs:
		if env.Fleet == nil {
			return nil, fmt.Errorf("%w: %s needs a fleet", ErrUnsupported, k.Name())
		}
	case ScopeNetwork:
		if env.Network == nil {
			return nil, fmt.Errorf("%w: %s needs links the harness proxies", ErrUnsupported, k.Name())
		}
	case ScopeUnits:
		if env.Fleet == nil {
			return nil, fmt.Errorf("%w: %s needs a fleet", ErrUnsupported, k.Name())
		}
	case ScopeBackend:
		if env.Backends == nil {
			return nil, fmt.Errorf("%w: %s needs a backend process the harness runs (controlPlane.backendProcesses)", ErrUnsupported, k.Name())
		}
	}
	return k.New(spec, env)
}

// Conflict says why faults a and b cannot be in effect at the same time, or "" when they can:
// two control-plane faults (one would start what the other killed), or two network faults of
// the same kind, or a partition and any other network fault, on the same path (one's recovery
// would lift the other's effect, or their effects would stack beyond what either says).
func (r *Registry) Conflict(a, b Spec) string {
	ka, okA := r.Lookup(a.Kind)
	kb, okB := r.Lookup(b.Kind)
	if !okA || !okB || ka.Scope() != kb.Scope() {
		return ""
	}
	switch ka.Scope() {
	case ScopeControlPlane:
		return "both act on the control plane"
	case ScopeBackend:
		if backendName(a) == backendName(b) {
			return "both act on the " + backendName(a) + " process"
		}
	case ScopeUnits:
		if !disjointUnits(a.Target.Units, b.Target.Units) {
			return "both act on the fleet's units (name disjoint units to run them together)"
		}
	case ScopeNetwork:
		pa, pb := SpecPath(a), SpecPath(b)
		if pa != pb || disjointUnits(a.Target.Units, b.Target.Units) {
			return ""
		}
		if a.Kind == b.Kind {
			return "both are " + a.Kind + " on the " + pa + " path"
		}
		if a.Kind == "net-partition" || b.Kind == "net-partition" {
			return "a partition of the " + pa + " path leaves nothing for the other to impair"
		}
	}
	return ""
}

func disjointUnits(a, b []string) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return false
			}
		}
	}
	return true
}

func backendName(s Spec) string {
	if b := s.Params["backend"]; b != "" {
		return b
	}
	return PathTSDB
}
