package action

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/faults"
)

func init() { mustRegister(changeIntent{}) }

// changeIntent updates policies seed-intent made, one at a time (a new port on every rule):
// each update is one intent change the convergence measurement follows.
type changeIntent struct{}

var changeParams = []faults.Param{
	{Name: "count", Type: faults.TypeInt, Default: "1", Description: "policy updates to make, one after another"},
	{Name: "interval", Type: faults.TypeDuration, Default: "0s", Description: "pause between updates"},
}

func (changeIntent) Name() string { return "change-intent" }

func (changeIntent) Description() string {
	return "update the policies seed-intent made, one at a time; each update is an intent change"
}

func (changeIntent) Params() []faults.Param { return changeParams }

func (changeIntent) Run(ctx context.Context, env Env, p faults.ParamValues) error {
	count, err := p.Int("count")
	if err != nil {
		return err
	}
	interval, err := p.Duration("interval")
	if err != nil {
		return err
	}
	policies, err := env.API.List(ctx, model.KindPolicy, "", map[string]string{SeedLabel: "true"})
	if err != nil {
		return fmt.Errorf("change-intent: list policies: %w", err)
	}
	if len(policies) == 0 {
		return fmt.Errorf("change-intent: no policy labelled %s=true to change (run seed-intent first)", SeedLabel)
	}
	r := rand.New(rand.NewPCG(uint64(env.Seed), 0x6368616e6765))
	for i := range count {
		if i > 0 && interval > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-env.Clock.After(interval):
			}
		}
		k := r.IntN(len(policies))
		pol := policies[k]
		var spec model.PolicySpec
		if err := pol.DecodeSpec(&spec); err != nil {
			return fmt.Errorf("change-intent: %s: %w", pol.Key(), err)
		}
		variant := r.IntN(1 << 20)
		for j := range spec.Rules {
			spec.Rules[j].Ports = []string{fmt.Sprint(1024 + (j*37+variant)%60000)}
		}
		upd := *pol
		if err := upd.EncodeSpec(spec); err != nil {
			return err
		}
		upd.Status = nil
		sent := env.Clock.Now()
		stored, err := env.API.Update(ctx, &upd)
		if err != nil {
			return fmt.Errorf("change-intent: update %s: %w", pol.Key(), err)
		}
		recordWrite(env, stored, "update "+pol.Key().String(), sent)
		policies[k] = stored
	}
	return nil
}
