package loadbench

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/dsnscale/dsnscale/controlplane"
	"github.com/dsnscale/dsnscale/controlplane/audit"
	"github.com/dsnscale/dsnscale/loadgen/northbound"
)

// target is the system under load.
type target struct {
	url  string
	stop func()
	// secure says whether the control plane runs with its security on; auth is then how a
	// workload reaches it (CA, credentials).
	secure bool
	auth   northbound.Config
	// audit reads the secure target's audit counters.
	audit func() audit.Stats
}

// auditSettle bounds the wait, after a step against the secure target, for its audit trail to
// reach the search index: the indexing works behind the requests, and must not fall into the
// next step (of either target) nor go uncounted.
const auditSettle = 15 * time.Second

// settleAudit waits until every audit record so far is written (or dropped, or failed) and
// returns how many were dropped since the last call's count, dropped.
func (t *target) settleAudit(ctx context.Context, dropped *uint64) uint64 {
	if t.audit == nil {
		return 0
	}
	deadline := time.Now().Add(auditSettle)
	for {
		st := t.audit()
		if st.Recorded == st.Written+st.Failed || time.Now().After(deadline) || ctx.Err() != nil {
			d := st.Dropped - *dropped
			*dropped = st.Dropped
			return d
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// label names the target's mode in logs.
func (t *target) label() string {
	if t.secure {
		return "secure"
	}
	return "insecure"
}

// startTarget starts the reference control plane in this process, on loopback, with its data
// under dir. It is the one place the benchmarks get their target from.
//
// A secure target runs as `dsnscale cp serve` does by default: TLS on the API, every request
// authenticated (a JWT), authorized (RBAC), rate limited and audited (to the embedded search
// index). Its rate limits are set far above what the machine can serve, so that the
// benchmark measures what the limiter costs rather than where it is set. An insecure one is
// `--insecure`: plain HTTP, none of it.
func startTarget(ctx context.Context, dir string, secure bool) (*target, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cfg := controlplane.Config{DataDir: filepath.Join(dir, "cp"), Listen: "127.0.0.1:0", Insecure: !secure}
	if secure {
		cfg.DataDir = filepath.Join(dir, "cp-secure")
		cfg.RateLimits = controlplane.RateLimits{SourceRate: 1e6, UserRate: 1e6}
	}
	cp, err := controlplane.Start(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("starting the control plane: %w", err)
	}
	if err := cp.WaitReady(ctx); err != nil {
		cp.Stop()
		return nil, fmt.Errorf("control plane not ready: %w", err)
	}
	t := &target{url: cp.APIURL(), stop: cp.Stop, secure: secure, auth: northbound.Config{Target: cp.APIURL()}}
	if secure {
		user, pw, err := cp.AdminCredentials()
		if err != nil {
			cp.Stop()
			return nil, err
		}
		t.auth.CA, t.auth.User, t.auth.Password = cp.CAPEM(), user, pw
		t.audit = cp.AuditStats
	}
	return t, nil
}
