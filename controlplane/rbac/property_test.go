package rbac

import (
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/dsnscale/dsnscale/controlplane/authn"
)

// reference is the plain reading of the rules Authorize must implement.
func reference(roles []Role, bindings []Binding, p *authn.Principal, verb Verb, kind, tenant string) bool {
	valid := map[string]Role{AdminRole: BuiltInRoles()[0]}
	for _, r := range roles {
		if _, dup := valid[r.Name]; !dup && r.Validate() == nil {
			valid[r.Name] = r
		}
	}
	has := func(list []string, v string) bool { return slices.Contains(list, v) || slices.Contains(list, Any) }
	seen := map[string]bool{}
	for _, b := range append(BuiltInBindings(), bindings...) {
		if seen[b.Name] || b.Name != AdminBinding && b.Validate() != nil {
			continue
		}
		seen[b.Name] = true
		names := false
		for _, s := range b.Subjects {
			names = names || s.Kind == SubjectUser && s.Name == p.User || s.Kind == SubjectGroup && slices.Contains(p.Groups, s.Name)
		}
		r, ok := valid[b.Role]
		if !names || !ok {
			continue
		}
		if verb.Mutating() && (kind == KindRole || kind == KindRoleBinding) && r.Name != AdminRole {
			continue
		}
		for _, rule := range r.Rules {
			verbs := make([]string, len(rule.Verbs))
			for i, v := range rule.Verbs {
				verbs[i] = string(v)
			}
			if has(verbs, string(verb)) && has(rule.Kinds, kind) && has(rule.Tenants, tenant) {
				return true
			}
		}
	}
	return false
}

func TestAuthorizeMatchesReference(t *testing.T) {
	verbPool := append([]Verb{Any}, Verbs...)
	kindPool := []string{Any, "Network", "Policy", "DSN", KindRole, KindRoleBinding}
	tenantPool := []string{Any, "acme", "globex"}
	namePool := []string{"r1", "r2", "r3", AdminRole}
	userPool := []string{"alice", "bob"}
	groupPool := []string{"g1", "g2", AdminGroup}

	rapid.Check(t, func(t *rapid.T) {
		ruleGen := rapid.Custom(func(t *rapid.T) Rule {
			return Rule{
				Verbs:   rapid.SliceOfNDistinct(rapid.SampledFrom(verbPool), 1, 3, rapid.ID).Draw(t, "verbs"),
				Kinds:   rapid.SliceOfNDistinct(rapid.SampledFrom(kindPool), 1, 3, rapid.ID).Draw(t, "kinds"),
				Tenants: rapid.SliceOfNDistinct(rapid.SampledFrom(tenantPool), 1, 2, rapid.ID).Draw(t, "tenants"),
			}
		})
		roles := rapid.SliceOfN(rapid.Custom(func(t *rapid.T) Role {
			return Role{Name: rapid.SampledFrom(namePool).Draw(t, "role"), Rules: rapid.SliceOfN(ruleGen, 1, 3).Draw(t, "rules")}
		}), 0, 4).Draw(t, "roles")
		bindings := rapid.SliceOfN(rapid.Custom(func(t *rapid.T) Binding {
			subjects := []Subject{}
			for _, u := range rapid.SliceOfNDistinct(rapid.SampledFrom(userPool), 0, 2, rapid.ID).Draw(t, "users") {
				subjects = append(subjects, Subject{SubjectUser, u})
			}
			for _, g := range rapid.SliceOfNDistinct(rapid.SampledFrom(groupPool), 0, 2, rapid.ID).Draw(t, "groups") {
				subjects = append(subjects, Subject{SubjectGroup, g})
			}
			return Binding{
				Name:     rapid.SampledFrom([]string{"b1", "b2", "b3", AdminBinding}).Draw(t, "binding"),
				Role:     rapid.SampledFrom(namePool).Draw(t, "bindingRole"),
				Subjects: subjects,
			}
		}), 0, 4).Draw(t, "bindings")
		p := &authn.Principal{
			User:   rapid.SampledFrom(userPool).Draw(t, "user"),
			Groups: rapid.SliceOfNDistinct(rapid.SampledFrom(groupPool), 0, 2, rapid.ID).Draw(t, "principalGroups"),
		}
		a := NewAuthorizer()
		a.Set(roles, bindings)
		// Every question against the same policy: a policy is expensive to draw, a question is not.
		for _, verb := range Verbs {
			for _, kind := range kindPool[1:] {
				for _, tenant := range []string{"", "acme", "globex"} {
					got := a.Authorize(p, verb, kind, tenant)
					if want := reference(roles, bindings, p, verb, kind, tenant); got.Allowed != want {
						t.Fatalf("Authorize(%+v, %s, %s, %q) = %+v, reference says %v", p, verb, kind, tenant, got, want)
					}
					if got.Allowed && !seenBinding(bindings, got.Binding) {
						t.Fatalf("allowed by unknown binding %q", got.Binding)
					}
				}
			}
		}
	})
}

func seenBinding(bindings []Binding, name string) bool {
	if name == AdminBinding {
		return true
	}
	for _, b := range bindings {
		if b.Name == name {
			return true
		}
	}
	return false
}
