package pki

import (
	"context"
	"fmt"
	"time"

	"github.com/dsnscale/dsnscale/internal/benchfig"
)

func init() {
	benchfig.Register(benchfig.Benchmark{Name: "cp_pki", Area: "cp", Run: runBenchmark})
}

// benchSigns is how many CSRs one run signs: enough for a stable rate in about a second.
const benchSigns = 2000

// runBenchmark measures how fast the CA signs DSN CSRs (parse, signature check, identity check,
// issue), the work of one admission or renewal, on one goroutine.
func runBenchmark(ctx context.Context, env benchfig.Env) (map[string]float64, error) {
	ca, err := OpenCA(env.WorkDir, nil)
	if err != nil {
		return nil, err
	}
	csrs := make([][]byte, 64)
	for i := range csrs {
		key, err := NewKey()
		if err != nil {
			return nil, err
		}
		if csrs[i], err = NewCSR(key, fmt.Sprintf("dsn-%d", i)); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	for i := range benchSigns {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if _, err := ca.SignCSR(csrs[i%len(csrs)], fmt.Sprintf("dsn-%d", i%len(csrs)), time.Hour); err != nil {
			return nil, err
		}
	}
	rate := benchSigns / time.Since(start).Seconds()
	env.Logf("cp_pki: %d CSRs signed at %.0f/s", benchSigns, rate)
	return map[string]float64{"cp_pki_sign_csr_per_s": rate}, nil
}
