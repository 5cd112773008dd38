package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dsnscale/dsnscale/controlplane/wire"
	"github.com/dsnscale/dsnscale/internal/benchfig"
	"github.com/dsnscale/dsnscale/internal/natsserver"
)

// Sizes of the ingestion benchmark: benchDSNs simulated DSNs publish batches of benchSamples
// samples as fast as the ingestion commits them, keeping at most benchWindow samples between
// publisher and TSDB; the rate is measured over benchMeasure after benchWarmup.
const (
	benchDSNs       = 1000
	benchSamples    = 50
	benchPublishers = 2
	benchWindow     = 200_000
	benchWarmup     = 2 * time.Second
	benchMeasure    = 10 * time.Second
)

func init() {
	benchfig.Register(benchfig.Benchmark{
		Name: "tsdb_ingest_embedded",
		Area: "tsdb",
		Run: func(ctx context.Context, env benchfig.Env) (map[string]float64, error) {
			rate, err := benchIngest(ctx, env, "", benchWarmup, benchMeasure)
			if err != nil {
				return nil, err
			}
			return map[string]float64{"tsdb_ingest_samples_per_s": rate}, nil
		},
	})
	benchfig.Register(benchfig.Benchmark{
		Name: "tsdb_ingest_victoriametrics",
		Area: "tsdb",
		Run: func(ctx context.Context, env benchfig.Env) (map[string]float64, error) {
			url, err := benchfig.ServerURL("DSNSCALE_TEST_VM_URL", "scripts/testservers/start.sh starts VictoriaMetrics")
			if err != nil {
				return nil, err
			}
			rate, err := benchIngest(ctx, env, url, benchWarmup, benchMeasure)
			if err != nil {
				return nil, err
			}
			return map[string]float64{"tsdb_ingest_vm_samples_per_s": rate}, nil
		},
	})
}

// benchIngest runs DSNs -> embedded NATS -> ingestion -> the TSDB at tsdbURL (embedded when
// empty) and returns the samples committed per second over measure, after warmup.
// maxBenchWindow bounds how far a measurement window grows while waiting for a commit.
const maxBenchWindow = 30 * time.Second

func benchIngest(ctx context.Context, env benchfig.Env, tsdbURL string, warmup, measure time.Duration) (float64, error) {
	ns, err := natsserver.Start(natsserver.Config{StoreDir: filepath.Join(env.WorkDir, "nats")})
	if err != nil {
		return 0, err
	}
	defer ns.Stop()
	cp, err := nats.Connect(ns.URL(), nats.Name("bench-cp"))
	if err != nil {
		return 0, err
	}
	defer cp.Close()
	in, err := Start(ctx, Config{Conn: cp, DataDir: filepath.Join(env.WorkDir, "cp"), TSDBURL: tsdbURL,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return 0, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = in.Close(cctx)
	}()

	// done counts the samples that left the pipeline: committed, refused or dropped.
	done := func() int64 {
		s := in.Stats()
		return int64(s.TSDB.Written) + int64(s.TSDB.DroppedTotal()) + int64(s.SamplesInvalid) +
			int64(s.Telemetry.Dropped+s.Telemetry.InvalidTotal())*benchSamples
	}
	var published atomic.Int64
	stop := make(chan struct{})
	errs := make(chan error, benchPublishers)
	var wg sync.WaitGroup
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	base := time.Now().Add(-5 * time.Minute).Truncate(time.Second)
	for p := range benchPublishers {
		nc, err := nats.Connect(ns.URL(), nats.Name(fmt.Sprintf("bench-dsns-%d", p)))
		if err != nil {
			close(stop)
			wg.Wait()
			return 0, err
		}
		defer nc.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- publishBench(nc, p, run, base, &published, done, stop)
		}()
	}

	collect := func() (committed int64, at time.Time) {
		s := in.Stats()
		return int64(s.TSDB.Written) - int64(s.SamplesRejected), time.Now()
	}
	wait := func(d time.Duration) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-errs:
			return fmt.Errorf("publisher: %w", err)
		case <-time.After(d):
			return nil
		}
	}
	err = wait(warmup)
	c0, t0 := collect()
	if err == nil {
		err = wait(measure)
	}
	c1, t1 := collect()
	// Commits land in whole batches: on a loaded machine a short window can fall between two
	// of them and would measure 0. The window then grows until a commit lands in it, so the
	// rate is over the time actually measured, and a pipeline that commits nothing is an error.
	for err == nil && c1 == c0 && t1.Sub(t0) < maxBenchWindow {
		err = wait(250 * time.Millisecond)
		c1, t1 = collect()
	}
	if err == nil && c1 == c0 {
		err = fmt.Errorf("no samples committed in %v", t1.Sub(t0).Round(time.Millisecond))
	}
	close(stop)
	wg.Wait()
	if err != nil {
		return 0, err
	}
	rate := float64(c1-c0) / t1.Sub(t0).Seconds()
	s := in.Stats()
	env.Logf("tsdb ingest (%s): %d DSNs, batches of %d samples: %.0f samples/s committed over %v; published %d samples, "+
		"committed %d, rejected %d, dropped %d in the queue and %d messages on the bus",
		describe("tsdb", tsdbURL), benchDSNs, benchSamples, rate, t1.Sub(t0).Round(time.Millisecond), published.Load()*benchSamples,
		s.TSDB.Written-s.SamplesRejected, s.SamplesRejected, s.TSDB.DroppedTotal(), s.Telemetry.Dropped)
	return rate, nil
}

// publishBench publishes batches of the DSNs of publisher p round after round, one second of
// simulated time per round, keeping at most benchWindow samples in the pipeline.
func publishBench(nc *nats.Conn, p int, run string, base time.Time, published *atomic.Int64, done func() int64, stop <-chan struct{}) error {
	type dsn struct {
		subject string
		batch   wire.TelemetryBatch
	}
	var dsns []dsn
	for i := p; i < benchDSNs; i += benchPublishers {
		id := fmt.Sprintf("bench-%s-%04d", run, i)
		b := wire.TelemetryBatch{DSN: id, Samples: make([]wire.Sample, benchSamples)}
		for j := range b.Samples {
			b.Samples[j] = wire.Sample{Name: fmt.Sprintf("dsn_bench_metric_%d", j/5), Labels: map[string]string{"interface": "eth" + strconv.Itoa(j%5)}}
		}
		dsns = append(dsns, dsn{subject: wire.TelemetrySubject(id), batch: b})
	}
	for round := 0; ; round++ {
		for i := range dsns {
			for published.Load()*benchSamples-done() > benchWindow {
				select {
				case <-stop:
					return nil
				case <-time.After(time.Millisecond):
				}
			}
			select {
			case <-stop:
				return nil
			default:
			}
			d := &dsns[i]
			d.batch.TimeUnixNano = base.Add(time.Duration(round) * time.Second).UnixNano()
			for j := range d.batch.Samples {
				d.batch.Samples[j].Value = float64(round*benchSamples + j)
			}
			data, err := json.Marshal(&d.batch)
			if err != nil {
				return err
			}
			if err := nc.Publish(d.subject, data); err != nil {
				return err
			}
			published.Add(1)
		}
	}
}
