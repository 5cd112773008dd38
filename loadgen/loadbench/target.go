package loadbench

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dsnscale/dsnscale/controlplane"
	"github.com/dsnscale/dsnscale/controlplane/audit"
	"github.com/dsnscale/dsnscale/controlplane/client"
	"github.com/dsnscale/dsnscale/controlplane/cpproc"
	"github.com/dsnscale/dsnscale/internal/procstat"
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
	audit func(ctx context.Context) (audit.Stats, error)
	// cpu reads the CPU time the target has used, when it runs as a process of its own (nil
	// when it shares this one).
	cpu func() (time.Duration, error)
}

// auditDropped returns how many audit records the target dropped since the last call's count,
// dropped. It does not wait for the audit trail to reach the search index: the indexing runs
// behind the requests in every step, as it does in steady state, and its cost falls inside the
// measured window (with the durable audit, the default, nothing is dropped; the bounded queue
// drops what the index does not take in time, counted here).
func (t *target) auditDropped(ctx context.Context, dropped *uint64) uint64 {
	if t.audit == nil {
		return 0
	}
	st, err := t.audit(ctx)
	if err != nil || st.Dropped < *dropped {
		return 0 // no count to go by; the next read catches up
	}
	d := st.Dropped - *dropped
	*dropped = st.Dropped
	return d
}

// label names the target's mode in logs.
func (t *target) label() string {
	if t.secure {
		return "secure"
	}
	return "insecure"
}

// startTarget starts the reference control plane on loopback, with its data under dir: as
// `dsnscale cp serve`, a process of its own, when binary is given (the benchmarks: the
// generator's work and the server's are then told apart by process, and two control planes
// never share a heap), else in this process (the tests). It is the one place the benchmarks
// get their target from.
//
// A secure target runs as `dsnscale cp serve` does by default: TLS on the API, every request
// authenticated (a JWT), authorized (RBAC), rate limited and audited (to the embedded search
// index). Its rate limits are set far above what the machine can serve, so that the
// benchmark measures what the limiter costs rather than where it is set. An insecure one is
// `--insecure`: plain HTTP, none of it.
func startTarget(ctx context.Context, binary, dir string, secure bool) (*target, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	name := "cp"
	if secure {
		name = "cp-secure"
	}
	if binary != "" {
		return startProcessTarget(ctx, binary, filepath.Join(dir, name), secure)
	}
	cfg := controlplane.Config{DataDir: filepath.Join(dir, name), Listen: "127.0.0.1:0", Insecure: !secure}
	if secure {
		cfg.RateLimits = controlplane.RateLimits{SourceRate: 1e6, UserRate: 1e6, TotalRate: 1e6}
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
		t.audit = func(context.Context) (audit.Stats, error) { return cp.AuditStats(), nil }
	}
	return t, nil
}

func startProcessTarget(ctx context.Context, binary, dir string, secure bool) (*target, error) {
	opts := cpproc.Options{Binary: binary, Dir: dir, Insecure: !secure, UserAgent: "dsnscale-bench"}
	if secure {
		opts.Args = []string{"--rate-per-source", "1e6", "--rate-per-user", "1e6", "--rate-total", "1e6"}
	}
	p, err := cpproc.Start(ctx, opts)
	if err != nil {
		return nil, err
	}
	t := &target{url: p.APIURL(), stop: p.Stop, secure: secure, auth: northbound.Config{Target: p.APIURL()}}
	t.cpu = func() (time.Duration, error) {
		s, err := procstat.Read(p.PID())
		return time.Duration(s.CPUSeconds * float64(time.Second)), err
	}
	if secure {
		t.auth.CA = p.CAPEM()
		t.auth.User, t.auth.Password = p.AdminCredentials()
		hc, err := client.HTTPClient(p.CAPEM(), 10*time.Second)
		if err != nil {
			p.Stop()
			return nil, err
		}
		t.audit = func(ctx context.Context) (audit.Stats, error) { return scrapeAudit(ctx, hc, p.API(), p.APIURL()) }
	}
	return t, nil
}

// scrapeAudit reads the audit counters from the control plane's /metrics.
func scrapeAudit(ctx context.Context, hc *http.Client, api *client.Client, base string) (audit.Stats, error) {
	tok, err := api.Token(ctx)
	if err != nil {
		return audit.Stats{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return audit.Stats{}, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := hc.Do(req)
	if err != nil {
		return audit.Stats{}, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return audit.Stats{}, fmt.Errorf("GET /metrics: %s", res.Status)
	}
	var st audit.Stats
	counters := map[string]*uint64{
		"dsnscale_audit_records_total": &st.Recorded, "dsnscale_audit_records_dropped_total": &st.Dropped,
		"dsnscale_audit_records_written_total": &st.Written, "dsnscale_audit_records_failed_total": &st.Failed,
	}
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if dst := counters[name]; ok && dst != nil {
			v, err := strconv.ParseFloat(value, 64)
			if err != nil {
				return audit.Stats{}, fmt.Errorf("GET /metrics: %s: %w", name, err)
			}
			*dst = uint64(v)
		}
	}
	return st, sc.Err()
}
