package authn

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/dsnscale/dsnscale/internal/benchfig"
	"github.com/dsnscale/dsnscale/internal/natsserver"
)

func init() {
	benchfig.Register(benchfig.Benchmark{Name: "cp_authn", Area: "cp", Run: runBenchmark})
}

// Benchmark sizes.
const (
	benchVerifies = 20000
	benchWorkers  = 4
	benchLogins   = 10
)

// runBenchmark measures token verification per second from 4 goroutines (the cost every API
// request pays), token issue per second, and the latency of a login at the default bcrypt cost
// (the cost that makes password guessing slow).
func runBenchmark(ctx context.Context, env benchfig.Env) (map[string]float64, error) {
	local, err := natsserver.StartLocal(env.WorkDir)
	if err != nil {
		return nil, err
	}
	defer local.Close()
	js := local.JS
	tokens, err := OpenTokens(ctx, TokensConfig{JS: js})
	if err != nil {
		return nil, err
	}
	defer tokens.Close()

	start := time.Now()
	toks := make([]string, 1000)
	for i := range toks {
		if toks[i], _, err = tokens.Issue(Principal{User: fmt.Sprintf("user-%d", i), Groups: []string{"ops"}}); err != nil {
			return nil, err
		}
	}
	issueRate := float64(len(toks)) / time.Since(start).Seconds()

	var wg sync.WaitGroup
	errs := make(chan error, benchWorkers)
	start = time.Now()
	for w := range benchWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < benchVerifies; i += benchWorkers {
				if _, err := tokens.Verify(ctx, toks[i%len(toks)]); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	verifyRate := benchVerifies / time.Since(start).Seconds()

	users, err := OpenUsers(ctx, js, "", nil)
	if err != nil {
		return nil, err
	}
	hash, err := HashPassword("a benchmark password", 0)
	if err != nil {
		return nil, err
	}
	if err := users.Create(ctx, User{Name: "bench", PasswordHash: hash}); err != nil {
		return nil, err
	}
	idp := &LocalProvider{Users: users}
	start = time.Now()
	for range benchLogins {
		if _, err := idp.Authenticate(ctx, "bench", "a benchmark password"); err != nil {
			return nil, err
		}
	}
	loginMs := float64(time.Since(start).Microseconds()) / 1000 / benchLogins
	env.Logf("cp_authn: verify %.0f/s, issue %.0f/s, login %.1f ms", verifyRate, issueRate, loginMs)
	return map[string]float64{
		"cp_authn_verify_per_s": verifyRate,
		"cp_authn_issue_per_s":  issueRate,
		"cp_authn_login_ms":     loginMs,
	}, nil
}
