package action

import (
	"context"
	"fmt"
	"strconv"

	"github.com/dsnscale/dsnscale/controlplane/client"
	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/faults"
	"github.com/dsnscale/dsnscale/scenarios/measure"
)

func init() { mustRegister(ackedWrites{}) }

// ackedWrites creates uniquely named tenants through the API, one after another, and records
// each the API acknowledges (2xx) for the acked-writes measurement to read back: a write a
// failing-over control plane acknowledged must not be lost. Writes that fail are counted and
// not retried: the next one is a new object.
type ackedWrites struct{}

var ackedParams = []faults.Param{
	{Name: "count", Type: faults.TypeInt, Default: "100", Description: "writes to make, one after another"},
	{Name: "interval", Type: faults.TypeDuration, Default: "100ms", Description: "pause between writes"},
	{Name: "prefix", Type: faults.TypeString, Default: "acked", Description: "prefix of the tenants' names (each gets the step's seed and its index)"},
}

func (ackedWrites) Name() string { return "acked-writes" }

func (ackedWrites) Description() string {
	return "create uniquely named tenants one after another and record every write the API acknowledges, for the acked-writes measurement"
}

func (ackedWrites) Params() []faults.Param { return ackedParams }

// AckedLabel marks the tenants acked-writes creates.
const AckedLabel = "dsnscale.io/acked-write"

func (ackedWrites) Run(ctx context.Context, env Env, p faults.ParamValues) error {
	n, err := p.Int("count")
	if err != nil {
		return err
	}
	interval, err := p.Duration("interval")
	if err != nil {
		return err
	}
	prefix, err := p.String("prefix")
	if err != nil {
		return err
	}
	if env.Acked == nil {
		return fmt.Errorf("acked-writes: the run keeps no ledger of acknowledged writes")
	}
	failed := 0
	for i := range n {
		if i > 0 && interval > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-env.Clock.After(interval):
			}
		}
		name := fmt.Sprintf("%s-%d-%d", prefix, uint64(env.Seed), i)
		o, err := obj(model.KindTenant, "", name, model.TenantSpec{DisplayName: "acknowledged write " + strconv.Itoa(i)})
		if err != nil {
			return err
		}
		o.Metadata.Labels = map[string]string{AckedLabel: "true"}
		path, err := client.ObjectPath(o.Key())
		if err != nil {
			return err
		}
		sent := env.Clock.Now()
		stored, err := env.API.Create(ctx, o)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			env.Acked.Fail()
			failed++
			env.Logger.Debug("acked-writes: write not acknowledged", "object", name, "err", err)
			continue
		}
		env.Acked.Add(measure.AckedWrite{Path: path, At: env.Clock.Now()})
		recordWrite(env, stored, "create "+o.Key().String(), sent)
	}
	if failed > 0 {
		env.Logger.Info("acked-writes: writes not acknowledged", "failed", failed, "of", n)
	}
	return nil
}
