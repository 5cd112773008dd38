package faults

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Registry maps kind names to kinds. The zero value is empty and ready to use.
type Registry struct {
	mu    sync.RWMutex
	kinds map[string]Kind
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
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.kinds == nil {
		r.kinds = map[string]Kind{}
	}
	if _, dup := r.kinds[k.Name()]; dup {
		return fmt.Errorf("%w: %q", ErrDuplicate, k.Name())
	}
	r.kinds[k.Name()] = k
	return nil
}

// Lookup returns the kind called name.
func (r *Registry) Lookup(name string) (Kind, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	k, ok := r.kinds[name]
	return k, ok
}

// Names lists the registered kind names, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.kinds))
	for n := range r.kinds {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Kinds lists the registered kinds by name.
func (r *Registry) Kinds() []Kind {
	names := r.Names()
	out := make([]Kind, len(names))
	for i, n := range names {
		out[i], _ = r.Lookup(n)
	}
	return out
}

// Validate checks spec against the registry: a known kind, a target that suits its scope, known
// parameters of the right types. Errors are *SpecError with the failing field.
func (r *Registry) Validate(spec Spec) error {
	k, ok := r.Lookup(spec.Kind)
	if !ok {
		return &SpecError{Field: "kind", Err: fmt.Errorf("%w %q (known: %s)", ErrUnknownKind, spec.Kind, strings.Join(r.Names(), ", "))}
	}
	switch k.Scope() {
	case ScopeControlPlane:
		if !spec.Target.IsZero() {
			return specErr("target", "%s acts on the control plane and takes no target", k.Name())
		}
	case ScopeDSNs:
		if err := spec.Target.Validate(); err != nil {
			return err
		}
	}
	return CheckParams(k.Params(), spec.Params)
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
	}
	return k.New(spec, env)
}
