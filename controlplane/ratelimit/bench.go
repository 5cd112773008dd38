package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/dsnscale/dsnscale/internal/benchfig"
)

func init() {
	benchfig.Register(benchfig.Benchmark{Name: "cp_ratelimit", Area: "cp", Run: runBenchmark})
}

// Benchmark sizes: 4 goroutines deciding for 1000 keys.
const (
	benchWorkers   = 4
	benchDecisions = 400000
	benchKeys      = 1000
)

// runBenchmark measures limiter decisions per second under concurrent use (the cost every API
// request pays twice: per source and per user).
func runBenchmark(ctx context.Context, env benchfig.Env) (map[string]float64, error) {
	l, err := New(Config{Rate: 1e6, Burst: 1e5})
	if err != nil {
		return nil, err
	}
	keys := make([]string, benchKeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("10.0.%d.%d", i/256, i%256)
	}
	var wg sync.WaitGroup
	start := time.Now()
	for w := range benchWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < benchDecisions; i += benchWorkers {
				if i%10000 == 0 && ctx.Err() != nil {
					return
				}
				l.Allow(keys[i%benchKeys])
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	rate := benchDecisions / time.Since(start).Seconds()
	env.Logf("cp_ratelimit: %.0f decisions/s", rate)
	return map[string]float64{"cp_ratelimit_decisions_per_s": rate}, nil
}
