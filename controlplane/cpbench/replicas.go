package cpbench

import (
	"context"
	"fmt"

	"github.com/dsnscale/dsnscale/internal/benchfig"
	"github.com/dsnscale/dsnscale/reports"
)

// replicasScenario is the library scenario the replication figures come from, replicasDSNs
// the fleet size it runs with, and replicasStep its step of intent changes.
const (
	replicasScenario = "cp-replicas"
	replicasDSNs     = 10_000
	replicasStep     = "changes"
)

// The figures of the replicas benchmark.
const (
	figPropagation1 = "cp_replicas_1_propagation_p99_ms"
	figPropagation3 = "cp_replicas_3_propagation_p99_ms"
	figReplicaRatio = "cp_replicas_3_vs_1_propagation_ratio"
)

func init() {
	benchfig.Register(benchfig.Benchmark{Name: "cp_replicas_propagation", Area: "cp", Runs: 1, Run: runReplicasPropagation,
		Figures: []string{figPropagation1, figPropagation3, figReplicaRatio}})
}

// runReplicasPropagation runs cp-replicas with replicasDSNs DSNs twice, back to back: against
// one control-plane replica, then against three (a JetStream R3 cluster behind a load balancer),
// and compares how long their intent changes take to reach the fleet (replicasFigures).
func runReplicasPropagation(ctx context.Context, env benchfig.Env) (map[string]float64, error) {
	runs := map[int]*reports.Run{}
	for _, n := range []int{1, 3} {
		run, err := runLibraryScenario(ctx, env, "cp_replicas_propagation", replicasScenario, replicasDSNs, fmt.Sprintf("replicas=%d", n))
		if err != nil {
			return nil, err
		}
		runs[n] = run
	}
	return replicasFigures(runs[1], runs[3])
}

// replicasFigures derives, from the changes step of a run against one replica and one against
// three, each one's slowest time for a change to reach 99% of the fleet (from the API call),
// in milliseconds, and the ratio of three to one. A figure a run did not measure is an error.
func replicasFigures(one, three *reports.Run) (map[string]float64, error) {
	p1, err := stepValue(one, replicasStep, "convergence", "convergence_p99_seconds")
	if err != nil {
		return nil, fmt.Errorf("%s (run %s, %s): %w", figPropagation1, one.ID, one.Result, err)
	}
	p3, err := stepValue(three, replicasStep, "convergence", "convergence_p99_seconds")
	if err != nil {
		return nil, fmt.Errorf("%s (run %s, %s): %w", figPropagation3, three.ID, three.Result, err)
	}
	figs := map[string]float64{figPropagation1: p1 * 1000, figPropagation3: p3 * 1000}
	if p1 > 0 {
		figs[figReplicaRatio] = p3 / p1
	}
	return figs, nil
}
