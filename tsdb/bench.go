package tsdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/promutils"

	"github.com/dsnscale/dsnscale/internal/benchfig"
)

// Benchmark sizes: a batch is one scrape of benchSeries series; a run lasts benchDuration.
const (
	benchSeries   = 1000
	benchDuration = 5 * time.Second
)

func init() {
	benchfig.Register(benchfig.Benchmark{
		Name: "tsdb_append_embedded",
		Area: "tsdb",
		Run: func(ctx context.Context, env benchfig.Env) (map[string]float64, error) {
			st, err := OpenEmbedded(filepath.Join(env.WorkDir, "tsdb"), Options{Logger: discardLogger()})
			if err != nil {
				return nil, err
			}
			defer st.Close()
			rate, err := benchAppend(ctx, st, env)
			if err != nil {
				return nil, err
			}
			return map[string]float64{"tsdb_append_samples_per_s": rate}, nil
		},
	})
	benchfig.Register(benchfig.Benchmark{
		Name: "tsdb_append_victoriametrics",
		Area: "tsdb",
		Run: func(ctx context.Context, env benchfig.Env) (map[string]float64, error) {
			url, err := benchfig.ServerURL("DSNSCALE_TEST_VM_URL", "scripts/testservers/start.sh starts VictoriaMetrics")
			if err != nil {
				return nil, err
			}
			st, err := Open(url, "", Options{Logger: discardLogger()})
			if err != nil {
				return nil, err
			}
			defer st.Close()
			rate, err := benchAppend(ctx, st, env)
			if err != nil {
				return nil, err
			}
			return map[string]float64{"tsdb_vm_append_samples_per_s": rate}, nil
		},
	})
}

// benchAppend appends batches of benchSeries samples (one per series, one timestamp per batch,
// 10s apart) for benchDuration and returns samples per second.
func benchAppend(ctx context.Context, st Storage, env benchfig.Env) (float64, error) {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	run := hex.EncodeToString(b)
	series := make([]*promutils.Labels, benchSeries)
	for i := range series {
		series[i] = Labels("dsn_bench_cpu_seconds", "dsn", fmt.Sprintf("dsn-%05d", i), "site", fmt.Sprintf("site-%d", i%10), "run", run)
	}
	base := time.Now().Add(-24 * time.Hour).Truncate(time.Second)
	start := time.Now()
	samples := 0
	for batch := 0; time.Since(start) < benchDuration; batch++ {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		app := st.Appender()
		t := base.Add(time.Duration(batch) * 10 * time.Second)
		for i, ls := range series {
			if err := app.Append(ls, t, float64(batch*i)); err != nil {
				return 0, err
			}
		}
		if err := app.Commit(ctx); err != nil {
			return 0, err
		}
		samples += len(series)
	}
	elapsed := time.Since(start)
	rate := float64(samples) / elapsed.Seconds()
	env.Logf("tsdb: appended %d samples in batches of %d in %v: %.0f samples/s", samples, benchSeries, elapsed.Round(time.Millisecond), rate)
	return rate, nil
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
