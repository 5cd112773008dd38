package cpbench

import (
	"context"
	"errors"
	"fmt"

	"github.com/dsnscale/dsnscale/internal/benchfig"
	"github.com/dsnscale/dsnscale/reports"
)

// failoverScenario is the library scenario the failover figures come from, failoverDSNs the
// fleet size it runs with, and failoverStep its step in which a replica is killed.
const (
	failoverScenario = "cp-failover"
	failoverDSNs     = 10_000
	failoverStep     = "failover"
)

// The figures of the failover scenario benchmark.
const (
	figFailoverAPI   = "cp_failover_api_s"
	figFailoverReown = "cp_failover_reown_s"
)

func init() {
	benchfig.Register(benchfig.Benchmark{Name: "cp_failover_scenario", Area: "cp", Runs: 1, Run: runFailoverScenario,
		Figures: []string{figFailoverAPI, figFailoverReown}})
}

// runFailoverScenario runs cp-failover (three replicas, one killed while writes go on) with
// failoverDSNs DSNs once, as a user runs it, and derives its figures (failoverFigures).
func runFailoverScenario(ctx context.Context, env benchfig.Env) (map[string]float64, error) {
	run, err := runLibraryScenario(ctx, env, "cp_failover_scenario", failoverScenario, failoverDSNs)
	if err != nil {
		return nil, err
	}
	return failoverFigures(run)
}

// failoverFigures derives, from the failover step of a cp-failover run:
//   - cp_failover_api_s: from the replica's kill to the first write acknowledged after it
//     (through the load balancer, so by a survivor);
//   - cp_failover_reown_s: from the kill until every DSN whose session it ended is back in
//     session with a survivor, forwarding, at the current revision.
//
// A figure the run did not measure is an error naming why, never a 0.
func failoverFigures(run *reports.Run) (map[string]float64, error) {
	figs := map[string]float64{}
	var errs []error
	for fig, src := range map[string][2]string{
		figFailoverAPI:   {"acked-writes", "failover_write_seconds"},
		figFailoverReown: {"failover-reown", "failover_reown_seconds"},
	} {
		v, err := stepValue(run, failoverStep, src[0], src[1])
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", fig, err))
			continue
		}
		figs[fig] = v
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("run %s (%s): %w", run.ID, run.Result, errors.Join(errs...))
	}
	return figs, nil
}
