package search

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/dsnscale/dsnscale/internal/benchfig"
)

// Benchmark sizes: batches of benchBatch documents for benchDuration.
const (
	benchBatch    = 1000
	benchDuration = 5 * time.Second
)

func init() {
	benchfig.Register(benchfig.Benchmark{
		Name: "search_index_bleve",
		Area: "search",
		Run: func(ctx context.Context, env benchfig.Env) (map[string]float64, error) {
			idx, err := OpenBleve(filepath.Join(env.WorkDir, "search"))
			if err != nil {
				return nil, err
			}
			defer idx.Close()
			rate, err := benchIndex(ctx, idx, env)
			if err != nil {
				return nil, err
			}
			return map[string]float64{"search_index_docs_per_s": rate}, nil
		},
	})
}

// benchIndex indexes event-like documents in batches for benchDuration and returns documents per
// second.
func benchIndex(ctx context.Context, idx Index, env benchfig.Env) (float64, error) {
	severities := []string{"info", "info", "info", "warning", "error"}
	base := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	start := time.Now()
	n := 0
	batch := make([]Document, benchBatch)
	for time.Since(start) < benchDuration {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		for i := range batch {
			dsn := fmt.Sprintf("dsn-%05d", n%10000)
			batch[i] = Document{
				ID: fmt.Sprintf("ev-%09d", n), Time: base.Add(time.Duration(n) * time.Millisecond), Kind: KindEvent,
				DSN: dsn, Type: "config.applied", Severity: severities[n%len(severities)],
				Message: fmt.Sprintf("%s applied revision %d in %d ms after a push from the control plane", dsn, n/10000, n%97),
				Fields:  map[string]string{"tenant": fmt.Sprintf("tenant-%d", n%20), "site": fmt.Sprintf("site-%d", n%5)},
			}
			n++
		}
		if err := idx.Index(ctx, batch...); err != nil {
			return 0, err
		}
	}
	elapsed := time.Since(start)
	rate := float64(n) / elapsed.Seconds()
	env.Logf("search: indexed %d documents in batches of %d in %v: %.0f docs/s", n, benchBatch, elapsed.Round(time.Millisecond), rate)
	return rate, nil
}
