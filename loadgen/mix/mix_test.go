package mix

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/model"
)

func TestBuiltinsParseAndValidate(t *testing.T) {
	names := Builtins()
	for _, want := range []string{"default", "read-heavy", "write-heavy", "crud", "get-only", "update-only"} {
		assert.Contains(t, names, want)
	}
	for _, n := range names {
		m, err := Builtin(n)
		require.NoError(t, err, n)
		assert.Equal(t, n, m.Name)
		assert.Equal(t, SetupCreate, m.Setup)
		assert.Equal(t, DefaultTimeout, m.Timeout)
		assert.NotEmpty(t, m.Description)
	}
	_, err := Builtin("nope")
	require.ErrorIs(t, err, ErrUnknown)
	assert.Contains(t, err.Error(), "built-in mixes are crud, default,")
}

const good = `apiVersion: dsnscale/v1
kind: LoadMix
population:
  tenants: 2
  networksPerTenant: 3
operations:
  - op: get
    kind: Network
    weight: 3
  - op: list
    kind: Tenant
    weight: 1
  - op: search
    index: audit
    weight: 1
`

func TestParseFillsDefaults(t *testing.T) {
	m, err := Parse("dir/my-mix.yaml", []byte(good))
	require.NoError(t, err)
	assert.Equal(t, "my-mix", m.Name)
	assert.Equal(t, "lg", m.Population.Prefix)
	assert.Equal(t, 50, m.Operations[1].Size)
	assert.Equal(t, "tenant:{tenant}", m.Operations[2].Query)
	assert.Equal(t, "get/Network", m.Operations[0].Name())
	assert.Equal(t, "search/audit", m.Operations[2].Name())
}

func TestParseErrorsHaveFileAndLine(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{
			name: "unknown field",
			yaml: strings.Replace(good, "    weight: 3\n", "    weight: 3\n    wieght: 4\n", 1),
			want: []string{`m.yaml:10: operations[0].wieght: unknown field; did you mean "weight"? (known: op, kind, weight, size, index, query)`},
		},
		{
			name: "wrong type",
			yaml: strings.Replace(good, "tenants: 2", "tenants: many", 1),
			want: []string{`m.yaml:4: population.tenants: "many" is not an integer`},
		},
		{
			name: "bad duration",
			yaml: good + "timeout: soon\n",
			want: []string{`m.yaml:16: timeout: "soon" is not a duration (such as 30s or 1m30s)`},
		},
		{
			name: "syntax",
			yaml: "apiVersion: dsnscale/v1\nkind: LoadMix\npopulation:\n\ttenants: 2\n",
			want: []string{"m.yaml:4: found character that cannot start any token"},
		},
		{
			name: "two documents",
			yaml: good + "---\nkind: LoadMix\n",
			want: []string{"m.yaml:16: more than one YAML document"},
		},
		{
			name: "empty",
			yaml: "",
			want: []string{"m.yaml:1: empty document"},
		},
		{
			name: "semantic errors at their lines",
			yaml: strings.NewReplacer(
				"kind: LoadMix", "kind: Mix",
				"    weight: 3\n", "    weight: -3\n",
				"    kind: Tenant\n", "    kind: Tenent\n",
				"    index: audit\n", "    index: logs\n",
			).Replace(good),
			want: []string{
				`m.yaml:2: kind: must be "LoadMix", got "Mix"`,
				"m.yaml:9: operations[0].weight: must be a positive number, got -3",
				`m.yaml:11: operations[1].kind: list needs a kind: one of Tenant, Network, Policy, DSN, got "Tenent"`,
				`m.yaml:14: operations[2].index: must be "events" or "audit", got "logs"`,
			},
		},
		{
			name: "population bounds",
			yaml: strings.Replace(good, "networksPerTenant: 3", "networksPerTenant: 5000\n  rulesPerPolicy: -1", 1),
			want: []string{
				"m.yaml:5: population.networksPerTenant: must be in 0-4094, got 5000",
				"m.yaml:6: population.rulesPerPolicy: must be in 0-1024, got -1",
			},
		},
		{
			name: "nothing to work on",
			yaml: good + "  - {op: update, kind: Policy, weight: 1}\n  - {op: delete, kind: Network, weight: 1}\n  - {op: create, kind: DSN, weight: 1}\n",
			want: []string{
				"m.yaml:16: operations[3]: update Policy has nothing to work on: population.policiesPerTenant is 0 and no operation creates one",
				"m.yaml:17: operations[4]: delete Network needs an operation that creates Network objects: a run deletes only what it created",
				"m.yaml:18: operations[5].kind: create does not apply to DSN: DSNs are admitted by the southbound protocol, only read here",
			},
		},
		{
			name: "fields that do not apply",
			yaml: good + "  - {op: watch, kind: Network, weight: 1, size: 3, query: x}\n  - {op: dance, weight: 1}\n",
			want: []string{
				"m.yaml:16: operations[3].kind: not used by watch",
				"m.yaml:16: operations[3].size: not used by watch",
				"m.yaml:16: operations[3].query: not used by watch",
				`m.yaml:17: operations[4].op: must be one of get, list, create, update, delete, watch, transaction, search, got "dance"`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("m.yaml", []byte(tt.yaml))
			require.ErrorIs(t, err, ErrInvalid)
			var got []string
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				for _, e := range j.Unwrap() {
					var me *Error
					require.True(t, errors.As(e, &me))
					got = append(got, me.Error())
				}
			} else {
				got = []string{err.Error()}
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.yaml")
	require.NoError(t, os.WriteFile(p, []byte(good), 0o600))
	m, err := Load(p)
	require.NoError(t, err)
	assert.Equal(t, "x", m.Name)

	_, err = Load(filepath.Join(dir, "missing.yaml"))
	require.ErrorIs(t, err, os.ErrNotExist)

	m, err = Load("read-heavy")
	require.NoError(t, err)
	assert.Equal(t, "read-heavy", m.Name)
}

func TestGeneratedObjectsAreValid(t *testing.T) {
	g := NewGenerator(Population{Tenants: 3, NetworksPerTenant: 40, PoliciesPerTenant: 5, RulesPerPolicy: 30, Seed: 7})
	objs := g.Objects()
	require.Len(t, objs, 3+120+15)
	cidrs := map[string]bool{}
	for _, o := range objs {
		require.NoError(t, model.Validate(o), "%s", o.Key())
		if o.Kind == model.KindNetwork {
			var spec model.NetworkSpec
			require.NoError(t, o.DecodeSpec(&spec))
			assert.False(t, cidrs[spec.CIDR], "CIDR %s is unique", spec.CIDR)
			cidrs[spec.CIDR] = true
		}
	}
	created := []*model.Object{
		g.NewTenant("r1", 1),
		g.NewNetwork("lg-t0000", "r1", 1),
		g.NewNetwork("lg-t0000", "r1", 1<<20),
		g.NewPolicy("lg-t0000", []string{"lg-net0000"}, "r1", 2),
		g.Mutate(objs[len(objs)-1], 99),
		g.Mutate(objs[5], 3),
	}
	for _, o := range created {
		require.NoError(t, model.Validate(o), "%s", o.Key())
	}
	assert.Equal(t, "99", created[4].Metadata.Labels[LabelRevision])
	assert.NotEqual(t, string(objs[len(objs)-1].Spec), string(created[4].Spec), "a policy update changes its rules")
	assert.Empty(t, objs[len(objs)-1].Metadata.Labels[LabelRevision], "Mutate copies")
}

func TestGeneratorIsDeterministic(t *testing.T) {
	p := Population{Tenants: 2, NetworksPerTenant: 3, PoliciesPerTenant: 2, RulesPerPolicy: 5, Seed: 42}
	a, b := NewGenerator(p).Objects(), NewGenerator(p).Objects()
	require.Equal(t, a, b)
	p.Seed = 43
	c := NewGenerator(p).Objects()
	assert.NotEqual(t, a[len(a)-1].Spec, c[len(c)-1].Spec, "another seed gives other policies")
}

func FuzzParse(f *testing.F) {
	for _, n := range Builtins() {
		data, err := builtinFS.ReadFile("builtin/" + n + ".yaml")
		require.NoError(f, err)
		f.Add(data)
	}
	f.Add([]byte(good))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse("f.yaml", data)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalid)
			return
		}
		require.NoError(t, m.Validate())
	})
}

// The example in the package documentation is testdata/policy-churn.yaml.
func TestDocumentedExampleLoads(t *testing.T) {
	m, err := Load("testdata/policy-churn.yaml")
	require.NoError(t, err)
	assert.Equal(t, "policy-churn", m.Name)
	assert.Len(t, m.Operations, 8)
}
