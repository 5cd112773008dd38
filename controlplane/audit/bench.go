package audit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/dsnscale/dsnscale/internal/benchfig"
	"github.com/dsnscale/dsnscale/internal/procstat"
	"github.com/dsnscale/dsnscale/search"
)

func init() {
	benchfig.Register(benchfig.Benchmark{Name: "cp_audit", Area: "cp", Run: runBenchmark})
}

// The benchmark's traffic: GETs of benchObjects objects spread over benchTenants tenants, as
// the API capacity benchmark makes, at benchRate records per second of record time.
const (
	benchRecords = 300_000
	benchTenants = 20
	benchObjects = 4000
	benchRate    = 20_000
	// benchQueued is the most records the benchmark lets wait, below the default queue.
	benchQueued = 20_000
	// benchSettle is how long the index is given after the last write to finish its merges,
	// whose CPU is part of what a record costs.
	benchSettle = 3 * time.Second
)

// runBenchmark measures what auditing an API call costs the process: a Recorder writing blocks
// to the embedded search index, merges included (audit_record_cpu_us), and how fast it takes
// records (audit_records_per_s).
func runBenchmark(ctx context.Context, env benchfig.Env) (map[string]float64, error) {
	idx, err := search.OpenBleve(filepath.Join(env.WorkDir, "audit"))
	if err != nil {
		return nil, err
	}
	defer idx.Close()
	rec, err := NewRecorder(RecorderConfig{Sink: NewSearchStore(idx)})
	if err != nil {
		return nil, err
	}
	records := make([]Record, benchRecords)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range records {
		tenant, name := fmt.Sprint("t", i%benchTenants), fmt.Sprint("net-", (i*7919)%(benchObjects/benchTenants))
		records[i] = Record{
			Time: t0.Add(time.Duration(i) * time.Second / benchRate), User: "admin", Source: "127.0.0.1",
			Method: "GET", Path: "/api/v1/tenants/" + tenant + "/networks/" + name, Verb: "get", Kind: "network",
			Tenant: tenant, Name: name, Status: 200, Verdict: VerdictAllowed, Binding: "admin", DurationMs: 0.2,
		}
	}
	cpu := func() (float64, error) {
		s, err := procstat.Read(os.Getpid())
		return s.CPUSeconds, err
	}
	before, err := cpu()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	for i, r := range records {
		// Records come as fast as the writer takes them, with the queue never full: as a busy
		// API makes them, and none dropped.
		for i%1000 == 0 && rec.waiting() > benchQueued {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			time.Sleep(time.Millisecond)
		}
		rec.Record(r)
	}
	if err := rec.Close(ctx); err != nil {
		return nil, err
	}
	took := time.Since(start)
	st := rec.Stats()
	if st.Written != benchRecords {
		return nil, fmt.Errorf("audit benchmark: %d of %d records written (%d dropped, %d failed)", st.Written, benchRecords, st.Dropped, st.Failed)
	}
	select {
	case <-time.After(benchSettle):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	after, err := cpu()
	if err != nil {
		return nil, err
	}
	env.Logf("cp_audit: %d records in %s, %.1f CPU-s with merges", benchRecords, took.Round(time.Millisecond), after-before)
	return map[string]float64{
		"audit_record_cpu_us": (after - before) / benchRecords * 1e6,
		"audit_records_per_s": benchRecords / took.Seconds(),
	}, nil
}
