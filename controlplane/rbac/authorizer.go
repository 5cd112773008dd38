package rbac

import (
	"fmt"
	"slices"
	"sort"
	"sync/atomic"

	"github.com/dsnscale/dsnscale/controlplane/authn"
	"github.com/dsnscale/dsnscale/controlplane/model"
)

// Decision is the answer to one authorization question.
type Decision struct {
	Allowed bool `json:"allowed"`
	// Binding and Role name what allowed it; empty when denied.
	Binding string `json:"binding,omitempty"`
	Role    string `json:"role,omitempty"`
	// Reason says why, for the caller (on denial) and for audit records.
	Reason string `json:"reason"`
}

// Authorizer answers authorization questions against a set of roles and bindings, always
// including the built-in ones. It is safe for concurrent use; Set replaces the set atomically.
type Authorizer struct {
	p atomic.Pointer[policy]
}

// policy is a compiled, immutable set of roles and bindings.
type policy struct {
	roles    map[string]*compiledRole
	bindings []Binding // by name
	byUser   map[string][]int
	byGroup  map[string][]int
}

type compiledRole struct {
	name  string
	rules []compiledRule
}

type compiledRule struct {
	verbs, kinds, tenants set
}

// set is a rule's list: everything, or the listed values.
type set struct {
	any    bool
	values []string
}

func newSet(values []string) set {
	s := set{}
	for _, v := range values {
		if v == Any {
			return set{any: true}
		}
		s.values = append(s.values, v)
	}
	return s
}

func (s set) has(v string) bool { return s.any || slices.Contains(s.values, v) }

// NewAuthorizer returns an Authorizer that knows only the built-in roles and bindings.
func NewAuthorizer() *Authorizer {
	a := &Authorizer{}
	a.Set(nil, nil)
	return a
}

// Set replaces the roles and bindings (the built-ins are always added). Invalid entries, which a
// Store never holds, are skipped.
func (a *Authorizer) Set(roles []Role, bindings []Binding) {
	p := &policy{roles: map[string]*compiledRole{}, byUser: map[string][]int{}, byGroup: map[string][]int{}}
	for _, r := range append(BuiltInRoles(), roles...) {
		if _, dup := p.roles[r.Name]; dup || r.Name != AdminRole && r.Validate() != nil {
			continue
		}
		cr := &compiledRole{name: r.Name}
		for _, rule := range r.Rules {
			verbs := make([]string, len(rule.Verbs))
			for i, v := range rule.Verbs {
				verbs[i] = string(v)
			}
			cr.rules = append(cr.rules, compiledRule{verbs: newSet(verbs), kinds: newSet(rule.Kinds), tenants: newSet(rule.Tenants)})
		}
		p.roles[r.Name] = cr
	}
	seen := map[string]bool{}
	for _, b := range append(BuiltInBindings(), bindings...) {
		if seen[b.Name] || b.Name != AdminBinding && b.Validate() != nil {
			continue
		}
		seen[b.Name] = true
		p.bindings = append(p.bindings, b)
	}
	sort.Slice(p.bindings, func(i, j int) bool { return p.bindings[i].Name < p.bindings[j].Name })
	for i, b := range p.bindings {
		for _, s := range b.Subjects {
			switch s.Kind {
			case SubjectUser:
				p.byUser[s.Name] = append(p.byUser[s.Name], i)
			case SubjectGroup:
				p.byGroup[s.Name] = append(p.byGroup[s.Name], i)
			}
		}
	}
	a.p.Store(p)
}

// candidates are the indexes of the bindings naming p, in binding-name order.
func (pol *policy) candidates(p *authn.Principal) []int {
	idx := append([]int(nil), pol.byUser[p.User]...)
	for _, g := range p.Groups {
		idx = append(idx, pol.byGroup[g]...)
	}
	slices.Sort(idx)
	return slices.Compact(idx)
}

// decide finds the first binding whose role grants verb on kind in a tenant tenantOK accepts.
func (pol *policy) decide(p *authn.Principal, verb Verb, kind string, tenantOK func(set) bool) Decision {
	if p == nil {
		return Decision{Reason: "not authenticated"}
	}
	rbacChange := verb.Mutating() && AdminOnly(kind)
	for _, i := range pol.candidates(p) {
		b := pol.bindings[i]
		role, ok := pol.roles[b.Role]
		if !ok || rbacChange && role.name != AdminRole {
			continue
		}
		for _, r := range role.rules {
			if r.verbs.has(string(verb)) && r.kinds.has(kind) && tenantOK(r.tenants) {
				return Decision{Allowed: true, Binding: b.Name, Role: role.name,
					Reason: fmt.Sprintf("allowed by binding %q (role %q)", b.Name, role.name)}
			}
		}
	}
	return Decision{}
}

// Authorize decides whether p may do verb on objects of kind in tenant ("" for cluster-scoped
// objects, which only rules with Any tenants reach). Anything no binding grants is denied.
func (a *Authorizer) Authorize(p *authn.Principal, verb Verb, kind, tenant string) Decision {
	d := a.p.Load().decide(p, verb, kind, func(s set) bool { return s.has(tenant) })
	if !d.Allowed && d.Reason == "" {
		where := "cluster-wide"
		if tenant != "" {
			where = fmt.Sprintf("in tenant %q", tenant)
		}
		d.Reason = fmt.Sprintf("user %q may not %s %s objects %s: no role binding grants it", p.User, verb, kind, where)
	}
	return d
}

// AuthorizeAny decides whether p may do verb on objects of kind in at least one tenant: the
// question for a list or watch across tenants, whose answer must then be filtered (Filter).
// An empty kind means any kind.
func (a *Authorizer) AuthorizeAny(p *authn.Principal, verb Verb, kind string) Decision {
	pol := a.p.Load()
	var d Decision
	if kind == "" {
		for _, k := range Kinds {
			if d = pol.decide(p, verb, k, func(s set) bool { return true }); d.Allowed {
				break
			}
		}
	} else {
		d = pol.decide(p, verb, kind, func(s set) bool { return true })
	}
	if !d.Allowed && d.Reason == "" {
		what := kind + " objects"
		if kind == "" {
			what = "any objects"
		}
		d.Reason = fmt.Sprintf("user %q may not %s %s in any tenant: no role binding grants it", p.User, verb, what)
	}
	return d
}

// Filter returns a filter of what p may see with verb (list or watch). It follows later changes
// of the roles and bindings, so that a long watch loses what is taken away.
func (a *Authorizer) Filter(p *authn.Principal, verb Verb) *Filter {
	return &Filter{a: a, p: p, verb: verb}
}

// Filter tells which objects a caller may see. A nil *Filter allows everything (no RBAC).
type Filter struct {
	a    *Authorizer
	p    *authn.Principal
	verb Verb
}

// Allows reports whether the caller may see objects of kind in tenant.
func (f *Filter) Allows(kind, tenant string) bool {
	if f == nil {
		return true
	}
	return f.a.Authorize(f.p, f.verb, kind, tenant).Allowed
}

// AllowsObject reports whether the caller may see o.
func (f *Filter) AllowsObject(o *model.Object) bool { return f.Allows(string(o.Kind), ObjectTenant(o)) }

// ObjectTenant is the tenant RBAC places o in: a Tenant's own name, a namespaced object's tenant,
// "" for cluster-scoped objects.
func ObjectTenant(o *model.Object) string {
	if o.Kind == model.KindTenant {
		return o.Metadata.Name
	}
	return o.Metadata.Tenant
}

// FilterObjects returns the objects of objs the filter allows, in order, reusing objs' array.
func FilterObjects(f *Filter, objs []model.Object) []model.Object {
	if f == nil {
		return objs
	}
	out := objs[:0]
	for i := range objs {
		if f.AllowsObject(&objs[i]) {
			out = append(out, objs[i])
		}
	}
	return out
}
