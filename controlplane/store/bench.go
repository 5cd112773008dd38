package store

import (
	"context"
	"fmt"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/internal/benchfig"
	"github.com/dsnscale/dsnscale/internal/natsserver"
)

func init() {
	benchfig.Register(benchfig.Benchmark{Name: "cp_store", Area: "cp", Run: runBench})
}

// Sizes of the registered benchmark: about a thousand objects, as a mid-sized fleet's intent.
const (
	benchObjects  = 1000
	benchCommits  = 2000
	benchBatches  = 20
	benchBatchOps = 100
	benchGets     = 200_000
)

// runBench measures the store on an embedded server in env.WorkDir: single-op and batched
// commits, reads, and the time to reopen (rebuild from the stream).
func runBench(ctx context.Context, env benchfig.Env) (map[string]float64, error) {
	local, err := natsserver.StartLocal(env.WorkDir)
	if err != nil {
		return nil, err
	}
	defer local.Close()
	js := local.JS
	s, err := Open(ctx, js, Config{})
	if err != nil {
		return nil, err
	}
	defer func() { _ = s.Close() }()

	keys := make([]model.Key, benchObjects)
	for i := 0; i < benchObjects; i += benchBatchOps {
		ops := make([]Op, 0, benchBatchOps)
		for j := i; j < i+benchBatchOps; j++ {
			o := benchObject(j, 0)
			keys[j] = o.Key()
			ops = append(ops, Op{Type: OpCreate, Object: o})
		}
		if _, _, err := s.Commit(ctx, ops, nil, false); err != nil {
			return nil, fmt.Errorf("seed: %w", err)
		}
	}
	env.Logf("store: seeded %d objects", benchObjects)
	figs := map[string]float64{}

	start := time.Now()
	for i := range benchCommits {
		o := benchObject(i%benchObjects, i)
		if _, _, err := s.Commit(ctx, []Op{{Type: OpUpdate, Object: o}}, nil, false); err != nil {
			return nil, fmt.Errorf("commit: %w", err)
		}
	}
	figs["cp_store_commit_per_s"] = benchCommits / time.Since(start).Seconds()

	start = time.Now()
	for b := range benchBatches {
		ops := make([]Op, benchBatchOps)
		for j := range ops {
			ops[j] = Op{Type: OpUpdate, Object: benchObject((b*benchBatchOps+j)%benchObjects, b)}
		}
		if _, _, err := s.Commit(ctx, ops, nil, false); err != nil {
			return nil, fmt.Errorf("batch commit: %w", err)
		}
	}
	figs["cp_store_batch_ops_per_s"] = benchBatches * benchBatchOps / time.Since(start).Seconds()
	env.Logf("store: %.0f commits/s, %.0f batched ops/s", figs["cp_store_commit_per_s"], figs["cp_store_batch_ops_per_s"])

	start = time.Now()
	for i := range benchGets {
		if _, err := s.Get(ctx, keys[i%benchObjects]); err != nil {
			return nil, fmt.Errorf("get: %w", err)
		}
	}
	figs["cp_store_get_per_s"] = benchGets / time.Since(start).Seconds()

	if err := s.Close(); err != nil {
		return nil, err
	}
	start = time.Now()
	s, err = Open(ctx, js, Config{})
	if err != nil {
		return nil, fmt.Errorf("reopen: %w", err)
	}
	figs["cp_store_reopen_ms"] = float64(time.Since(start).Microseconds()) / 1000
	env.Logf("store: %.0f gets/s, reopen at revision %d in %.1f ms", figs["cp_store_get_per_s"], s.Revision(), figs["cp_store_reopen_ms"])
	return figs, nil
}

func benchObject(i, gen int) *model.Object {
	o := &model.Object{
		APIVersion: model.APIVersion,
		Kind:       model.KindNetwork,
		Metadata: model.Metadata{
			Tenant: fmt.Sprintf("t%d", i%10),
			Name:   fmt.Sprintf("net-%d", i),
			Labels: map[string]string{"site": fmt.Sprintf("s%d", i%4), "gen": fmt.Sprint(gen)},
		},
	}
	_ = o.EncodeSpec(model.NetworkSpec{CIDR: fmt.Sprintf("10.%d.%d.0/24", i/256, i%256), VLAN: 1 + i%4000})
	return o
}
