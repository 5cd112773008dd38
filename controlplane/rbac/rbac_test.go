package rbac

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/authn"
	"github.com/dsnscale/dsnscale/controlplane/model"
)

func rule(verbs []Verb, kinds, tenants []string) Rule {
	return Rule{Verbs: verbs, Kinds: kinds, Tenants: tenants}
}

var (
	all       = []Verb{Any}
	readOnly  = []Verb{VerbGet, VerbList, VerbWatch}
	netPolicy = []string{"Network", "Policy"}
)

func TestRoleValidate(t *testing.T) {
	good := Role{Name: "acme-editor", Rules: []Rule{rule(all, netPolicy, []string{"acme"})}}
	require.NoError(t, good.Validate())

	tests := []struct {
		name  string
		role  Role
		field string
	}{
		{"no name", Role{Rules: good.Rules}, "name"},
		{"bad name", Role{Name: "Acme", Rules: good.Rules}, "name"},
		{"built-in name", Role{Name: AdminRole, Rules: good.Rules}, "name"},
		{"no rules", Role{Name: "r"}, "rules"},
		{"no verbs", Role{Name: "r", Rules: []Rule{rule(nil, netPolicy, []string{"acme"})}}, "rules[0].verbs"},
		{"unknown verb", Role{Name: "r", Rules: []Rule{good.Rules[0], rule([]Verb{"get", "patch"}, netPolicy, []string{"acme"})}}, "rules[1].verbs[1]"},
		{"unknown kind", Role{Name: "r", Rules: []Rule{rule(all, []string{"Network", "Secret"}, []string{"acme"})}}, "rules[0].kinds[1]"},
		{"no tenants", Role{Name: "r", Rules: []Rule{rule(all, netPolicy, nil)}}, "rules[0].tenants"},
		{"bad tenant", Role{Name: "r", Rules: []Rule{rule(all, netPolicy, []string{"ACME"})}}, "rules[0].tenants[0]"},
		{"changes roles", Role{Name: "r", Rules: []Rule{rule([]Verb{VerbCreate}, []string{KindRole}, []string{Any})}}, "rules[0].kinds[0]"},
		{"changes bindings", Role{Name: "r", Rules: []Rule{rule([]Verb{VerbDelete}, []string{KindRoleBinding}, []string{Any})}}, "rules[0].kinds[0]"},
		{"too many rules", Role{Name: "r", Rules: make([]Rule, MaxRules+1)}, "rules"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.role.Validate()
			require.ErrorIs(t, err, ErrInvalid)
			require.ErrorIs(t, err, model.ErrInvalid)
			var fe *model.FieldErrors
			require.True(t, errors.As(err, &fe))
			require.Equal(t, tt.field, fe.Errors[0].Field, err.Error())
		})
	}
}

func TestBindingValidate(t *testing.T) {
	good := Binding{Name: "acme-editors", Role: "acme-editor", Subjects: []Subject{{SubjectUser, "alice@example.com"}, {SubjectGroup, "acme"}}}
	require.NoError(t, good.Validate())
	tests := []struct {
		name    string
		binding Binding
		field   string
	}{
		{"built-in name", Binding{Name: AdminBinding, Role: "r", Subjects: good.Subjects}, "name"},
		{"no role", Binding{Name: "b", Subjects: good.Subjects}, "role"},
		{"no subjects", Binding{Name: "b", Role: "r"}, "subjects"},
		{"bad subject kind", Binding{Name: "b", Role: "r", Subjects: []Subject{{"ServiceAccount", "x"}}}, "subjects[0].kind"},
		{"bad subject name", Binding{Name: "b", Role: "r", Subjects: []Subject{good.Subjects[0], {SubjectUser, "a b"}}}, "subjects[1].name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.binding.Validate()
			require.ErrorIs(t, err, ErrInvalid)
			var fe *model.FieldErrors
			require.True(t, errors.As(err, &fe))
			require.Equal(t, tt.field, fe.Errors[0].Field, err.Error())
		})
	}
}

// testAuthorizer has: acme editors (alice, group acme), a cluster-wide viewer (vic), a custom
// "superuser" with every verb on every kind (sue), and a binding to a missing role (ghost).
func testAuthorizer() *Authorizer {
	a := NewAuthorizer()
	a.Set([]Role{
		{Name: "acme-editor", Rules: []Rule{rule(all, netPolicy, []string{"acme"}), rule(readOnly, []string{"Tenant"}, []string{"acme"})}},
		{Name: "viewer", Rules: []Rule{rule(readOnly, []string{Any}, []string{Any})}},
		{Name: "superuser", Rules: []Rule{rule(all, []string{Any}, []string{Any})}},
	}, []Binding{
		{Name: "acme-editors", Role: "acme-editor", Subjects: []Subject{{SubjectUser, "alice"}, {SubjectGroup, "acme"}}},
		{Name: "viewers", Role: "viewer", Subjects: []Subject{{SubjectUser, "vic"}}},
		{Name: "superusers", Role: "superuser", Subjects: []Subject{{SubjectUser, "sue"}}},
		{Name: "ghosts", Role: "missing", Subjects: []Subject{{SubjectUser, "ghost"}}},
	})
	return a
}

func TestAuthorize(t *testing.T) {
	a := testAuthorizer()
	alice := &authn.Principal{User: "alice"}
	bob := &authn.Principal{User: "bob", Groups: []string{"acme"}}
	vic := &authn.Principal{User: "vic"}
	sue := &authn.Principal{User: "sue"}
	admin := &authn.Principal{User: "admin", Groups: []string{AdminGroup}}
	nobody := &authn.Principal{User: "nobody"}
	ghost := &authn.Principal{User: "ghost"}

	tests := []struct {
		name    string
		p       *authn.Principal
		verb    Verb
		kind    string
		tenant  string
		allowed bool
		binding string
	}{
		{"editor creates in own tenant", alice, VerbCreate, "Network", "acme", true, "acme-editors"},
		{"group member creates in own tenant", bob, VerbCreate, "Policy", "acme", true, "acme-editors"},
		{"editor reads own tenant", alice, VerbGet, "Tenant", "acme", true, "acme-editors"},
		{"editor may not delete own tenant", alice, VerbDelete, "Tenant", "acme", false, ""},
		{"another tenant: get", alice, VerbGet, "Network", "globex", false, ""},
		{"another tenant: list", alice, VerbList, "Network", "globex", false, ""},
		{"another tenant: watch", alice, VerbWatch, "Policy", "globex", false, ""},
		{"another tenant: update", bob, VerbUpdate, "Policy", "globex", false, ""},
		{"cluster-scoped DSN needs a wildcard tenant", alice, VerbList, "DSN", "", false, ""},
		{"viewer reads anywhere", vic, VerbList, "DSN", "", true, "viewers"},
		{"wrong role: viewer may not create", vic, VerbCreate, "Network", "acme", false, ""},
		{"wrong role: viewer may not delete DSNs", vic, VerbDelete, "DSN", "", false, ""},
		{"deny by default", nobody, VerbGet, "Tenant", "acme", false, ""},
		{"binding to a missing role grants nothing", ghost, VerbGet, "Tenant", "acme", false, ""},
		{"nil principal", nil, VerbGet, "Tenant", "acme", false, ""},
		{"custom superuser may not create roles", sue, VerbCreate, KindRole, "", false, ""},
		{"custom superuser may not change bindings", sue, VerbUpdate, KindRoleBinding, "", false, ""},
		{"custom superuser may read bindings", sue, VerbList, KindRoleBinding, "", true, "superusers"},
		{"custom superuser may do the rest", sue, VerbDelete, "DSN", "", true, "superusers"},
		{"admin changes bindings", admin, VerbCreate, KindRoleBinding, "", true, AdminBinding},
		{"admin anything", admin, VerbDelete, "Tenant", "globex", true, AdminBinding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := a.Authorize(tt.p, tt.verb, tt.kind, tt.tenant)
			require.Equal(t, tt.allowed, d.Allowed, d.Reason)
			require.Equal(t, tt.binding, d.Binding)
			require.NotEmpty(t, d.Reason)
		})
	}
}

func TestFilterShowsOnlyWhatTheCallerMaySee(t *testing.T) {
	a := testAuthorizer()
	alice := &authn.Principal{User: "alice"}
	objs := []model.Object{
		{Kind: model.KindTenant, Metadata: model.Metadata{Name: "acme"}},
		{Kind: model.KindTenant, Metadata: model.Metadata{Name: "globex"}},
		{Kind: model.KindNetwork, Metadata: model.Metadata{Name: "n1", Tenant: "acme"}},
		{Kind: model.KindNetwork, Metadata: model.Metadata{Name: "n2", Tenant: "globex"}},
		{Kind: model.KindPolicy, Metadata: model.Metadata{Name: "p1", Tenant: "globex"}},
		{Kind: model.KindDSN, Metadata: model.Metadata{Name: "dsn-1"}},
	}
	require.True(t, a.AuthorizeAny(alice, VerbList, "Network").Allowed, "a list across tenants is allowed, then filtered")
	require.True(t, a.AuthorizeAny(alice, VerbWatch, "").Allowed)
	require.False(t, a.AuthorizeAny(alice, VerbList, "DSN").Allowed)
	require.False(t, a.AuthorizeAny(&authn.Principal{User: "nobody"}, VerbWatch, "").Allowed)

	for _, verb := range []Verb{VerbList, VerbWatch} {
		got := FilterObjects(a.Filter(alice, verb), append([]model.Object(nil), objs...))
		var names []string
		for _, o := range got {
			names = append(names, string(o.Kind)+"/"+o.Metadata.Name)
		}
		require.Equal(t, []string{"Tenant/acme", "Network/n1"}, names, verb)
	}
	require.Len(t, FilterObjects(nil, objs), len(objs), "no RBAC, no filtering")

	// A filter follows later changes: taking the binding away empties a running watch.
	f := a.Filter(alice, VerbWatch)
	require.True(t, f.Allows("Network", "acme"))
	a.Set(nil, nil)
	require.False(t, f.Allows("Network", "acme"))
}

func TestDenialsSayWhy(t *testing.T) {
	a := testAuthorizer()
	d := a.Authorize(&authn.Principal{User: "alice"}, VerbGet, "Network", "globex")
	require.False(t, d.Allowed)
	require.True(t, strings.Contains(d.Reason, `"alice"`) && strings.Contains(d.Reason, `"globex"`), d.Reason)
}
