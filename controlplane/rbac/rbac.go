// Package rbac decides what each caller of the northbound API may do: roles made of rules (verbs
// on kinds in tenants), bindings that give roles to users and groups, deny by default. The
// built-in admin role, bound to the group "admins", may do everything and is the only role that
// may change roles, bindings and users.
//
// An Authorizer answers questions against the current roles and bindings; a Store keeps them
// in a JetStream key-value bucket and keeps Authorizers current; Middleware and APIResolver
// apply them to API requests, and Checker and Filter let handlers authorize each item of a
// transaction and drop from lists and watches what the caller may not see.
package rbac

import (
	"errors"
	"fmt"
	"slices"

	"github.com/dsnscale/dsnscale/controlplane/authn"
	"github.com/dsnscale/dsnscale/controlplane/model"
)

// Verb is an action on objects.
type Verb string

// The verbs.
const (
	VerbGet    Verb = "get"
	VerbList   Verb = "list"
	VerbWatch  Verb = "watch"
	VerbCreate Verb = "create"
	VerbUpdate Verb = "update"
	VerbDelete Verb = "delete"
)

// Verbs lists every verb.
var Verbs = []Verb{VerbGet, VerbList, VerbWatch, VerbCreate, VerbUpdate, VerbDelete}

// Mutating reports whether v changes objects.
func (v Verb) Mutating() bool { return v == VerbCreate || v == VerbUpdate || v == VerbDelete }

// Any is the wildcard of rules: every verb, kind or tenant.
const Any = "*"

// Kinds the API serves besides the model's.
const (
	KindRole           = "Role"
	KindRoleBinding    = "RoleBinding"
	KindUser           = "User"
	KindBootstrapToken = "BootstrapToken"
	KindAuditRecord    = "AuditRecord"
)

// Kinds lists every kind a rule may name.
var Kinds = []string{
	string(model.KindTenant), string(model.KindNetwork), string(model.KindPolicy), string(model.KindDSN),
	KindBootstrapToken, KindAuditRecord, KindUser, KindRole, KindRoleBinding,
}

// Subject kinds.
const (
	SubjectUser  = "User"
	SubjectGroup = "Group"
)

// Built-in names.
const (
	AdminRole    = "admin"
	AdminBinding = "admin"
	// AdminGroup is the group the built-in admin binding names; the first admin user is in it.
	AdminGroup = authn.AdminGroup
)

// Limits.
const (
	MaxRules    = 64
	MaxItems    = 64 // verbs, kinds or tenants in one rule
	MaxSubjects = 256
)

// Sentinel errors.
var (
	// ErrNotFound marks a role or binding that does not exist.
	ErrNotFound = errors.New("rbac: not found")
	// ErrExists marks a role or binding that already exists.
	ErrExists = errors.New("rbac: already exists")
	// ErrBuiltIn marks an attempt to change or delete a built-in role or binding.
	ErrBuiltIn = errors.New("rbac: built-in")
	// ErrInvalid marks a role or binding that breaks the rules; the error is also a
	// *model.FieldErrors naming the fields.
	ErrInvalid = errors.New("rbac: invalid")
	// ErrUnavailable marks a store that did not answer.
	ErrUnavailable = errors.New("rbac: store unavailable")
)

// Rule grants its verbs on its kinds in its tenants. Each list may hold Any. Cluster-scoped
// objects (DSNs, roles, users, tokens without a tenant) are reached only by rules whose tenants
// hold Any; a Tenant object counts as being in the tenant it names.
type Rule struct {
	Verbs   []Verb   `json:"verbs"`
	Kinds   []string `json:"kinds"`
	Tenants []string `json:"tenants"`
}

// Role is a named set of rules.
type Role struct {
	Name  string `json:"name"`
	Rules []Rule `json:"rules"`
}

// Subject is a user or a group a binding names.
type Subject struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// Binding gives a role to subjects.
type Binding struct {
	Name     string    `json:"name"`
	Role     string    `json:"role"`
	Subjects []Subject `json:"subjects"`
}

// BuiltInRoles are the roles every Authorizer has; they cannot be changed or deleted.
func BuiltInRoles() []Role {
	return []Role{{Name: AdminRole, Rules: []Rule{{Verbs: []Verb{Any}, Kinds: []string{Any}, Tenants: []string{Any}}}}}
}

// BuiltInBindings are the bindings every Authorizer has; they cannot be changed or deleted.
func BuiltInBindings() []Binding {
	return []Binding{{Name: AdminBinding, Role: AdminRole, Subjects: []Subject{{Kind: SubjectGroup, Name: AdminGroup}}}}
}

// invalid wraps field errors so that errors.Is matches both ErrInvalid and model.ErrInvalid.
type invalid struct{ *model.FieldErrors }

func (e invalid) Unwrap() []error { return []error{ErrInvalid, e.FieldErrors} }

func asError(errs *model.FieldErrors) error {
	if errs.Len() == 0 {
		return nil
	}
	return invalid{errs}
}

// AdminOnly reports whether only the built-in admin role may create, update or delete objects
// of kind: roles, bindings and users (a user's groups decide its roles).
func AdminOnly(kind string) bool {
	return kind == KindRole || kind == KindRoleBinding || kind == KindUser
}

// Validate checks a role: a name (lowercase DNS label) that is not a built-in's, 1-64 rules,
// each with 1-64 known verbs, kinds and tenants. A rule may not name the RBAC kinds with a
// mutating verb: only the built-in admin role changes roles, bindings and users. Errors carry field
// paths ("rules[1].verbs[0]").
func (r *Role) Validate() error {
	errs := &model.FieldErrors{}
	checkObjectName(r.Name, errs)
	if r.Name == AdminRole {
		errs.Add("name", fmt.Sprintf("%q is a built-in role", r.Name))
	}
	switch {
	case len(r.Rules) == 0:
		errs.Add("rules", "at least one rule is required")
	case len(r.Rules) > MaxRules:
		errs.Add("rules", fmt.Sprintf("%d rules, at most %d", len(r.Rules), MaxRules))
	}
	for i, rule := range r.Rules {
		if i >= MaxRules {
			break
		}
		validateRule(rule, fmt.Sprintf("rules[%d]", i), errs)
	}
	return asError(errs)
}

func validateRule(rule Rule, path string, errs *model.FieldErrors) {
	checkList(len(rule.Verbs), path+".verbs", errs)
	checkList(len(rule.Kinds), path+".kinds", errs)
	checkList(len(rule.Tenants), path+".tenants", errs)
	mutating := false
	for i, v := range rule.Verbs {
		if v != Any && !slices.Contains(Verbs, v) {
			errs.Add(fmt.Sprintf("%s.verbs[%d]", path, i), fmt.Sprintf("%q is not a verb: want one of %v or %q", v, Verbs, Any))
		}
		mutating = mutating || v.Mutating()
	}
	for i, k := range rule.Kinds {
		p := fmt.Sprintf("%s.kinds[%d]", path, i)
		switch {
		case k != Any && !slices.Contains(Kinds, k):
			errs.Add(p, fmt.Sprintf("%q is not a kind: want one of %v or %q", k, Kinds, Any))
		case mutating && AdminOnly(k):
			errs.Add(p, fmt.Sprintf("only the built-in %q role may create, update or delete %ss", AdminRole, k))
		}
	}
	for i, t := range rule.Tenants {
		if t == Any {
			continue
		}
		if msg := model.CheckName(t); msg != "" {
			errs.Add(fmt.Sprintf("%s.tenants[%d]", path, i), msg)
		}
	}
}

func checkList(n int, path string, errs *model.FieldErrors) {
	switch {
	case n == 0:
		errs.Add(path, "at least one entry is required")
	case n > MaxItems:
		errs.Add(path, fmt.Sprintf("%d entries, at most %d", n, MaxItems))
	}
}

// Validate checks a binding: a name that is not a built-in's, a role name, and 1-256 subjects,
// each a User or Group with a valid name. The role need not exist yet; until it does the
// binding grants nothing.
func (b *Binding) Validate() error {
	errs := &model.FieldErrors{}
	checkObjectName(b.Name, errs)
	if b.Name == AdminBinding {
		errs.Add("name", fmt.Sprintf("%q is a built-in binding", b.Name))
	}
	if msg := model.CheckName(b.Role); msg != "" {
		errs.Add("role", msg)
	}
	switch {
	case len(b.Subjects) == 0:
		errs.Add("subjects", "at least one subject is required")
	case len(b.Subjects) > MaxSubjects:
		errs.Add("subjects", fmt.Sprintf("%d subjects, at most %d", len(b.Subjects), MaxSubjects))
	}
	for i, s := range b.Subjects {
		if i >= MaxSubjects {
			break
		}
		if s.Kind != SubjectUser && s.Kind != SubjectGroup {
			errs.Add(fmt.Sprintf("subjects[%d].kind", i), fmt.Sprintf("%q: want %q or %q", s.Kind, SubjectUser, SubjectGroup))
		}
		if msg := authn.CheckName(s.Name); msg != "" {
			errs.Add(fmt.Sprintf("subjects[%d].name", i), msg)
		}
	}
	return asError(errs)
}

func checkObjectName(name string, errs *model.FieldErrors) {
	if msg := model.CheckName(name); msg != "" {
		errs.Add("name", msg)
	}
}
