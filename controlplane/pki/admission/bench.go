package admission

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/pki"
	"github.com/dsnscale/dsnscale/internal/benchfig"
	"github.com/dsnscale/dsnscale/internal/natsserver"
)

func init() {
	benchfig.Register(benchfig.Benchmark{Name: "cp_admission", Area: "cp", Run: runBenchmark})
}

// Benchmark sizes: an admission storm of 1000 DSNs from 16 at once, all with one multi-use
// token (the worst case: every admission updates the same record).
const (
	benchDSNs    = 1000
	benchWorkers = 16
)

// runBenchmark measures admissions per second (CSR check, compare-and-swap on the token's
// record in JetStream, signature) on an embedded NATS server.
func runBenchmark(ctx context.Context, env benchfig.Env) (map[string]float64, error) {
	local, err := natsserver.StartLocal(env.WorkDir + "/nats")
	if err != nil {
		return nil, err
	}
	defer local.Close()
	js := local.JS
	tokens, err := OpenStore(ctx, js, "", nil)
	if err != nil {
		return nil, err
	}
	ca, err := pki.OpenCA(env.WorkDir+"/ca", nil)
	if err != nil {
		return nil, err
	}
	adm, err := NewAdmitter(tokens, ca, time.Hour)
	if err != nil {
		return nil, err
	}
	secret, _, err := tokens.Create(ctx, Spec{Tenant: "bench", Uses: benchDSNs}, "bench")
	if err != nil {
		return nil, err
	}
	reqs := make([]Request, benchDSNs)
	for i := range reqs {
		key, err := pki.NewKey()
		if err != nil {
			return nil, err
		}
		id := fmt.Sprintf("dsn-%05d", i)
		csr, err := pki.NewCSR(key, id)
		if err != nil {
			return nil, err
		}
		reqs[i] = Request{Token: secret, DSN: id, CSR: csr}
	}
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range benchWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= benchDSNs || ctx.Err() != nil {
					return
				}
				if _, err := adm.Admit(ctx, reqs[i]); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	rate := benchDSNs / time.Since(start).Seconds()
	env.Logf("cp_admission: %d admissions with one token from %d workers at %.0f/s", benchDSNs, benchWorkers, rate)
	return map[string]float64{"cp_admission_admit_per_s": rate}, nil
}
