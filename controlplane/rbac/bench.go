package rbac

import (
	"context"
	"fmt"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/authn"
	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/internal/benchfig"
)

func init() {
	benchfig.Register(benchfig.Benchmark{Name: "cp_rbac", Area: "cp", Run: runBenchmark})
}

// Benchmark sizes: 200 tenants each with an editor role bound to a group; the caller is in 5
// groups; lists of 10000 objects.
const (
	benchTenants    = 200
	benchDecisions  = 200000
	benchListLength = 10000
	benchLists      = 20
)

// runBenchmark measures authorization decisions per second and objects filtered per second
// (lists and watches across tenants).
func runBenchmark(ctx context.Context, env benchfig.Env) (map[string]float64, error) {
	var roles []Role
	var bindings []Binding
	for i := range benchTenants {
		tenant := fmt.Sprintf("tenant-%d", i)
		roles = append(roles, Role{Name: tenant + "-editor", Rules: []Rule{{
			Verbs: []Verb{Any}, Kinds: []string{"Network", "Policy"}, Tenants: []string{tenant},
		}}})
		bindings = append(bindings, Binding{Name: tenant + "-editors", Role: tenant + "-editor",
			Subjects: []Subject{{Kind: SubjectGroup, Name: tenant}}})
	}
	a := NewAuthorizer()
	a.Set(roles, bindings)
	p := &authn.Principal{User: "alice", Groups: []string{"tenant-1", "tenant-50", "tenant-99", "tenant-150", "tenant-199"}}

	start := time.Now()
	allowed := 0
	for i := range benchDecisions {
		if i%10000 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if a.Authorize(p, VerbGet, "Network", fmt.Sprint("tenant-", i%benchTenants)).Allowed {
			allowed++
		}
	}
	decisionRate := benchDecisions / time.Since(start).Seconds()
	if allowed != benchDecisions*5/benchTenants {
		return nil, fmt.Errorf("rbac benchmark: %d decisions allowed, want %d", allowed, benchDecisions*5/benchTenants)
	}

	objs := make([]model.Object, benchListLength)
	for i := range objs {
		objs[i] = model.Object{Kind: model.KindNetwork, Metadata: model.Metadata{Name: fmt.Sprint("n", i), Tenant: fmt.Sprint("tenant-", i%benchTenants)}}
	}
	start = time.Now()
	f := a.Filter(p, VerbList)
	for range benchLists {
		buf := append([]model.Object(nil), objs...)
		if n := len(FilterObjects(f, buf)); n != benchListLength*5/benchTenants {
			return nil, fmt.Errorf("rbac benchmark: filter kept %d objects", n)
		}
	}
	filterRate := float64(benchLists*benchListLength) / time.Since(start).Seconds()
	env.Logf("cp_rbac: %.0f decisions/s, %.0f objects filtered/s", decisionRate, filterRate)
	return map[string]float64{"cp_rbac_decisions_per_s": decisionRate, "cp_rbac_filtered_objects_per_s": filterRate}, nil
}
