package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/client"
	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/store"
	"github.com/dsnscale/dsnscale/internal/benchfig"
	"github.com/dsnscale/dsnscale/internal/natsserver"
)

// Benchmark sizes: small enough for a run of a few seconds on a shared two-core machine.
const (
	benchWorkers  = 8
	benchCreates  = 1000
	benchTxns     = 10
	benchTxnOps   = 100
	benchRules    = 50
	benchValidate = 2000
)

func init() {
	benchfig.Register(benchfig.Benchmark{Name: "cp_api", Area: "cp", Run: runBenchmark})
}

// runBenchmark measures the write path of the northbound API over loopback HTTP on a real store
// on an embedded NATS server: creates per second from 8 closed-loop clients (each a validated,
// relation-checked JetStream commit), creates per second inside 100-operation transactions
// (one atomic batch each), and the validation rate of a 50-rule policy on its own. (Get and
// update rates under open-loop load are the loadgen benchmark's.)
func runBenchmark(ctx context.Context, env benchfig.Env) (map[string]float64, error) {
	local, err := natsserver.StartLocal(env.WorkDir)
	if err != nil {
		return nil, err
	}
	defer local.Close()
	js := local.JS
	st, err := store.Open(ctx, js, store.Config{})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	h, err := New(Config{Store: st, MaxInFlight: 4 * benchWorkers})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * benchWorkers}}
	c := client.New("http://"+ln.Addr().String(), hc)

	if _, err := c.Create(ctx, &model.Object{APIVersion: model.APIVersion, Kind: model.KindTenant, Metadata: model.Metadata{Name: "bench"}}); err != nil {
		return nil, err
	}
	env.Logf("cp_api: %d creates with %d workers", benchCreates, benchWorkers)
	start := time.Now()
	if err := parallel(benchWorkers, benchCreates, func(i int) error {
		o, err := benchNetwork(i)
		if err != nil {
			return err
		}
		_, err = c.Create(ctx, o)
		return err
	}); err != nil {
		return nil, err
	}
	createRate := float64(benchCreates) / time.Since(start).Seconds()

	env.Logf("cp_api: %d transactions of %d creates", benchTxns, benchTxnOps)
	start = time.Now()
	for tx := range benchTxns {
		ops := make([]client.Operation, benchTxnOps)
		for i := range ops {
			n := benchCreates + tx*benchTxnOps + i
			o, err := benchNetwork(n)
			if err != nil {
				return nil, err
			}
			ops[i] = client.Operation{Op: client.OpCreate, Object: o}
		}
		if _, err := c.Transaction(ctx, ops); err != nil {
			return nil, err
		}
	}
	txnRate := float64(benchTxns*benchTxnOps) / time.Since(start).Seconds()

	pol := &model.Object{APIVersion: model.APIVersion, Kind: model.KindPolicy, Metadata: model.Metadata{Name: "p", Tenant: "bench"}}
	spec := model.PolicySpec{Selector: model.Selector{MatchLabels: map[string]string{"site": "a"}}}
	for i := range benchRules {
		spec.Rules = append(spec.Rules, model.Rule{Action: model.ActionAllow, From: model.Peer{Network: fmt.Sprintf("n%d", i)},
			To: model.Peer{Labels: map[string]string{"app": "db"}}, Protocol: "tcp", Ports: []string{"443", "8000-8080"}})
	}
	if err := pol.EncodeSpec(spec); err != nil {
		return nil, err
	}
	start = time.Now()
	for range benchValidate {
		if err := model.Validate(pol); err != nil {
			return nil, err
		}
	}
	validateRate := float64(benchValidate) / time.Since(start).Seconds()
	env.Logf("cp_api: %.0f creates/s, %.0f creates/s in transactions, %.0f validations/s of a %d-rule policy",
		createRate, txnRate, validateRate, benchRules)
	return map[string]float64{
		"cp_api_create_closed8_per_s": createRate,
		"cp_api_txn100_creates_per_s": txnRate,
		"cp_validate_policy50_per_s":  validateRate,
	}, nil
}

// benchNetwork is network i of the benchmark's tenant.
func benchNetwork(i int) (*model.Object, error) {
	o := &model.Object{APIVersion: model.APIVersion, Kind: model.KindNetwork,
		Metadata: model.Metadata{Name: fmt.Sprintf("n%d", i), Tenant: "bench", Labels: map[string]string{"i": fmt.Sprint(i % 10)}}}
	err := o.EncodeSpec(model.NetworkSpec{CIDR: fmt.Sprintf("10.%d.%d.0/24", i/256%256, i%256), VLAN: 1 + i%4094})
	return o, err
}

// parallel runs fn(0..n-1) on workers goroutines and returns the first error.
func parallel(workers, n int, fn func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					errs[w] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
