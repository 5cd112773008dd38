package action

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/client"
	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/faults"
	"github.com/dsnscale/dsnscale/scenarios/measure"
)

func init() { mustRegister(seedIntent{}) }

// seedIntent creates tenants, networks and policies: the intent the fleet converges on. Policy i
// of a tenant selects the i-th DSN group of the traffic map (round robin), or every DSN when the
// fleet has no groups.
type seedIntent struct{}

var seedParams = []faults.Param{
	{Name: "tenants", Type: faults.TypeInt, Default: "1", Description: "tenants to create"},
	{Name: "networks", Type: faults.TypeInt, Default: "2", Description: "networks per tenant"},
	{Name: "policies", Type: faults.TypeInt, Default: "4", Description: "policies per tenant"},
	{Name: "rules", Type: faults.TypeInt, Default: "8", Description: "rules per policy"},
	{Name: "prefix", Type: faults.TypeString, Default: "seed", Description: "prefix of the object names"},
}

func (seedIntent) Name() string { return "seed-intent" }

func (seedIntent) Description() string {
	return "create tenants, networks and policies (selecting the fleet's DSN groups) through the API"
}

func (seedIntent) Params() []faults.Param { return seedParams }

// SeedLabel marks the objects seed-intent creates; change-intent changes only those, so that a
// run never rewrites intent it did not make (someone else's, in staging).
const SeedLabel = "dsnscale.io/seeded"

func obj(kind model.Kind, tenant, name string, spec any) (*model.Object, error) {
	o := &model.Object{APIVersion: model.APIVersion, Kind: kind,
		Metadata: model.Metadata{Name: name, Tenant: tenant, Labels: map[string]string{SeedLabel: "true"}}}
	return o, o.EncodeSpec(spec)
}

// ruleSet builds n rules between the tenant's networks, alternating allow and deny.
func ruleSet(n, networks, variant int) []model.Rule {
	rules := make([]model.Rule, n)
	for i := range rules {
		act := model.ActionAllow
		if i%4 == 3 {
			act = model.ActionDeny
		}
		rules[i] = model.Rule{
			Action:   act,
			From:     model.Peer{Network: "net-" + strconv.Itoa(i%max(networks, 1))},
			To:       model.Peer{Labels: map[string]string{"app": "app-" + strconv.Itoa(i%7)}},
			Protocol: "tcp",
			Ports:    []string{strconv.Itoa(1024 + (i*37+variant)%60000)},
		}
	}
	return rules
}

func (seedIntent) Run(ctx context.Context, env Env, p faults.ParamValues) error {
	tenants, err := p.Int("tenants")
	if err != nil {
		return err
	}
	networks, err := p.Int("networks")
	if err != nil {
		return err
	}
	policies, err := p.Int("policies")
	if err != nil {
		return err
	}
	rules, err := p.Int("rules")
	if err != nil {
		return err
	}
	prefix, err := p.String("prefix")
	if err != nil {
		return err
	}
	create := func(o *model.Object) error {
		sent := env.Clock.Now()
		stored, err := env.API.Create(ctx, o)
		if client.IsConflict(err) {
			// A control plane that outlives runs (staging) holds the last run's seed: replace
			// it, so this run seeds the same intent and still commits a revision to converge on.
			sent = env.Clock.Now()
			stored, err = env.API.Update(ctx, o)
		}
		if err != nil {
			return fmt.Errorf("seed-intent: create %s: %w", o.Key(), err)
		}
		recordWrite(env, stored, "create "+o.Key().String(), sent)
		return nil
	}
	for t := range tenants {
		tenant := fmt.Sprintf("%s-%d", prefix, t)
		o, err := obj(model.KindTenant, "", tenant, model.TenantSpec{DisplayName: "seeded tenant " + strconv.Itoa(t)})
		if err != nil {
			return err
		}
		if err := create(o); err != nil {
			return err
		}
		for n := range networks {
			o, err := obj(model.KindNetwork, tenant, "net-"+strconv.Itoa(n), model.NetworkSpec{
				CIDR: fmt.Sprintf("10.%d.%d.0/24", t%256, n%256), VLAN: 100 + n%3900})
			if err != nil {
				return err
			}
			if err := create(o); err != nil {
				return err
			}
		}
		for i := range policies {
			var sel model.Selector
			if len(env.Labels) > 0 {
				sel.MatchLabels = env.Labels[i%len(env.Labels)]
			}
			o, err := obj(model.KindPolicy, tenant, "policy-"+strconv.Itoa(i), model.PolicySpec{Selector: sel, Rules: ruleSet(rules, networks, 0)})
			if err != nil {
				return err
			}
			if err := create(o); err != nil {
				return err
			}
		}
	}
	return nil
}

// recordWrite records the revision a write committed, timed when its request was sent: the
// commit happened between then and the answer, so convergence measured from here errs on the
// slow side by at most the request's own latency.
func recordWrite(env Env, stored *model.Object, what string, sent time.Time) {
	if stored == nil {
		return
	}
	rev, err := strconv.ParseUint(stored.Metadata.ResourceVersion, 10, 64)
	if err != nil || rev == 0 {
		env.Logger.Warn("write answered without a resourceVersion", "what", what)
		return
	}
	env.Revisions.Add(measure.Mark{Revision: rev, At: sent, Source: measure.SourceWrite, Description: what})
}
