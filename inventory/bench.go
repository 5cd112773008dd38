package inventory

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/internal/benchfig"
)

// Benchmark sizes: upserts of benchBatch records per transaction over benchFleet DSNs, for
// benchDuration. A heartbeat-driven control plane writes this way: status changes in batches,
// labels mostly unchanged.
const (
	benchFleet    = 10000
	benchBatch    = 100
	benchDuration = 5 * time.Second
)

func init() {
	benchfig.Register(benchfig.Benchmark{
		Name: "inventory_upserts_sqlite",
		Area: "inventory",
		Run: func(ctx context.Context, env benchfig.Env) (map[string]float64, error) {
			inv, err := Open("", filepath.Join(env.WorkDir, "inventory"), Options{})
			if err != nil {
				return nil, err
			}
			defer inv.Close()
			rate, err := benchUpserts(ctx, inv, env)
			if err != nil {
				return nil, err
			}
			return map[string]float64{"inventory_upserts_per_s_sqlite": rate}, nil
		},
	})
	benchfig.Register(benchfig.Benchmark{
		Name: "inventory_upserts_postgres",
		Area: "inventory",
		Run: func(ctx context.Context, env benchfig.Env) (map[string]float64, error) {
			url, err := benchfig.ServerURL("DSNSCALE_TEST_POSTGRES_URL", "scripts/testservers/start.sh starts PostgreSQL")
			if err != nil {
				return nil, err
			}
			inv, err := Open(url, "", Options{})
			if err != nil {
				return nil, err
			}
			defer inv.Close()
			rate, err := benchUpserts(ctx, inv, env)
			if err != nil {
				return nil, err
			}
			return map[string]float64{"inventory_upserts_per_s_postgres": rate}, nil
		},
	})
}

// benchUpserts upserts batches round-robin over the fleet for benchDuration and returns records
// per second. Every fourth pass changes the labels, so label replacement is part of the cost.
func benchUpserts(ctx context.Context, inv *DB, env benchfig.Env) (float64, error) {
	run := time.Now().UnixNano() // distinct IDs per run on a shared server
	states := []string{model.DSNStateInSync, model.DSNStateInSync, model.DSNStateLagging, model.DSNStateSyncing}
	batch := make([]DSNRecord, benchBatch)
	start := time.Now()
	n := 0
	for time.Since(start) < benchDuration {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		for i := range batch {
			k := (n + i) % benchFleet
			pass := (n + i) / benchFleet
			batch[i] = DSNRecord{
				ID:              fmt.Sprintf("bench-%x-%05d", run, k),
				Labels:          map[string]string{"site": fmt.Sprintf("site-%d", k%10), "rack": fmt.Sprintf("r%d", k%40), "pass": fmt.Sprint(pass / 4)},
				SoftwareVersion: fmt.Sprintf("1.%d.0", pass/8),
				Site:            fmt.Sprintf("site-%d", k%10),
				Rack:            fmt.Sprintf("r%d", k%40),
				State:           states[(n+i)%len(states)],
				AppliedRevision: uint64(n + i),
				LastSeen:        time.Now(),
			}
		}
		if err := inv.UpsertDSNs(ctx, batch...); err != nil {
			return 0, err
		}
		n += len(batch)
	}
	elapsed := time.Since(start)
	rate := float64(n) / elapsed.Seconds()
	env.Logf("inventory (%s): upserted %d records in batches of %d in %v: %.0f upserts/s", inv.Dialect(), n, benchBatch, elapsed.Round(time.Millisecond), rate)
	if inv.Dialect() == dialectPostgres {
		// Leave the shared server as it was.
		if _, err := inv.db.ExecContext(ctx, `DELETE FROM dsns WHERE id LIKE $1`, fmt.Sprintf("bench-%x-%%", run)); err != nil {
			return 0, fmt.Errorf("%w: cleaning up benchmark rows: %w", ErrBackend, err)
		}
	}
	return rate, nil
}
