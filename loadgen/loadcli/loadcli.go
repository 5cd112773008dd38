// Package loadcli is the "dsnscale load" command: northbound load against one control plane,
// on its own, like vegeta or k6. It sets up the mix's population, runs one executor, prints a
// summary (for people, or as JSON with --json) and optionally tears down what it made.
package loadcli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/client"
	"github.com/dsnscale/dsnscale/loadgen"
	"github.com/dsnscale/dsnscale/loadgen/mix"
	"github.com/dsnscale/dsnscale/loadgen/northbound"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitUsage   = 2 // bad flags, config or mix
	ExitFailure = 3 // setup, the run or teardown failed
)

const usage = `usage: dsnscale load --target URL --rate N/s --duration D [flags]

Runs northbound load against a control plane and prints what it saw. A control plane with
security on (the default) is reached with --ca (its "ca" file, to trust its TLS certificate)
and either --token or --user with --password-file (the load logs in, and again before the token
expires).

Executors: constant-arrival-rate (default; --rate, --duration), ramping-arrival-rate (--rate as the
start rate, --stages 30s:500/s,1m:500/s), constant-vus (--vus, --duration), ramping-vus (--vus as
the start, --stages 30s:10,1m:50). Mixes: a built-in name (%s) or a LoadMix YAML file.

Flags:
`

// Report is the JSON that --json prints.
type Report struct {
	Plan     loadgen.Plan              `json:"plan"`
	Mix      string                    `json:"mix"`
	Target   string                    `json:"target"`
	Setup    *northbound.SetupStats    `json:"setup,omitempty"`
	Summary  *loadgen.Summary          `json:"summary,omitempty"`
	Teardown *northbound.TeardownStats `json:"teardown,omitempty"`
	Error    string                    `json:"error,omitempty"`
}

type options struct {
	target, token, mixName, executor, stages, setup, runID string
	caFile, user, passwordFile                             string
	rate                                                   loadgen.Rate
	duration, graceful, timeout                            time.Duration
	vus, maxVUs, preVUs                                    int
	seed                                                   uint64
	seedSet, asJSON, teardown, planOnly, verbose           bool
}

func parse(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, usage, strings.Join(mix.Builtins(), ", "))
		fs.PrintDefaults()
	}
	fs.StringVar(&o.target, "target", "", "control plane base `URL` (required unless --plan)")
	fs.StringVar(&o.token, "token", "", "bearer `token` sent with every request")
	fs.StringVar(&o.caFile, "ca", "", "PEM `file` of the CA that signed the target's TLS certificate (cp serve's \"ca\")")
	fs.StringVar(&o.user, "user", "", "log in as this `user` (with --password-file)")
	fs.StringVar(&o.passwordFile, "password-file", "", "`file` holding the password of --user (cp serve's \"admin-password\" for admin)")
	fs.TextVar(&o.rate, "rate", loadgen.Rate(0), "arrival `rate`: N/s, N/m or N/h")
	fs.DurationVar(&o.duration, "duration", 0, "how long new iterations start")
	fs.StringVar(&o.mixName, "mix", loadgen.DefaultMix, "built-in mix `name` or LoadMix `file`")
	fs.StringVar(&o.executor, "executor", loadgen.ConstantArrivalRate, "executor `type`: "+strings.Join(loadgen.Types(), ", "))
	fs.StringVar(&o.stages, "stages", "", "ramping stages: `D:TARGET,...` (30s:500/s for rates, 30s:10 for VUs)")
	fs.IntVar(&o.vus, "vus", 0, "virtual users (constant-vus) or the start (ramping-vus)")
	fs.IntVar(&o.maxVUs, "max-vus", 0, "most virtual users an arrival-rate executor may start (default: 1s of the peak rate)")
	fs.IntVar(&o.preVUs, "pre-allocated-vus", 0, "virtual users started up front (default: 50ms of the peak rate)")
	fs.DurationVar(&o.graceful, "graceful-stop", 0, "time in-flight iterations may finish (default 10s)")
	fs.DurationVar(&o.timeout, "timeout", 0, "per-request timeout (default: the mix's)")
	fs.Func("seed", "population `seed` (default: the mix's)", func(s string) error {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return errors.New("must be a non-negative integer")
		}
		o.seed, o.seedSet = v, true
		return nil
	})
	fs.StringVar(&o.setup, "setup", "", "population setup: create or skip (default: the mix's)")
	fs.BoolVar(&o.teardown, "teardown", false, "delete everything the run set up or created, afterwards")
	fs.StringVar(&o.runID, "run-id", "", "names this run's created objects (default: from the time)")
	fs.BoolVar(&o.asJSON, "json", false, "print the report as JSON")
	fs.BoolVar(&o.planOnly, "plan", false, "print what would run, and exit")
	fs.BoolVar(&o.verbose, "v", false, "log progress details")
	if err := fs.Parse(args); err != nil {
		return nil, reported{err}
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return o, nil
}

// reported is an error the flag package has already printed, with the usage.
type reported struct{ err error }

func (r reported) Error() string { return r.err.Error() }
func (r reported) Unwrap() error { return r.err }

// executorConfig builds the executor config from the flags.
func (o *options) executorConfig() (loadgen.ExecutorConfig, error) {
	c := loadgen.ExecutorConfig{
		Type: o.executor, Rate: o.rate, Duration: o.duration, VUs: o.vus, MaxVUs: o.maxVUs,
		PreAllocatedVUs: o.preVUs, GracefulStop: o.graceful, Mix: o.mixName,
	}
	if o.stages != "" {
		st, err := parseStages(o.stages, o.executor == loadgen.RampingVUs)
		if err != nil {
			return c, err
		}
		c.Stages = st
	}
	if err := c.Validate(); err != nil {
		return c, flagErrors(err)
	}
	return c, nil
}

// parseStages reads "30s:500/s,1m:0/s" (rates) or "30s:10,1m:0" (VUs).
func parseStages(s string, vus bool) ([]loadgen.Stage, error) {
	var out []loadgen.Stage
	for i, part := range strings.Split(s, ",") {
		d, target, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok {
			return nil, fmt.Errorf("--stages: stage %d %q: want DURATION:TARGET such as 30s:500/s", i+1, part)
		}
		dur, err := time.ParseDuration(d)
		if err != nil {
			return nil, fmt.Errorf("--stages: stage %d: duration %q: %w", i+1, d, err)
		}
		st := loadgen.Stage{Duration: dur}
		if vus {
			n, err := strconv.Atoi(target)
			if err != nil {
				return nil, fmt.Errorf("--stages: stage %d: %q is not a number of VUs", i+1, target)
			}
			st.VUs = n
		} else {
			r, err := loadgen.ParseRate(target)
			if err != nil {
				return nil, fmt.Errorf("--stages: stage %d: %w", i+1, err)
			}
			st.Rate = r
		}
		out = append(out, st)
	}
	return out, nil
}

var flagNames = map[string]string{
	"type": "--executor", "rate": "--rate", "duration": "--duration", "vus": "--vus", "maxVUs": "--max-vus",
	"preAllocatedVUs": "--pre-allocated-vus", "gracefulStop": "--graceful-stop", "stages": "--stages",
}

// flagErrors renames config fields as the flags that set them.
func flagErrors(err error) error {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	var msgs []string
	for _, e := range errs {
		var fe *loadgen.FieldError
		if errors.As(e, &fe) {
			field := fe.Field
			head, rest, _ := strings.Cut(field, "[")
			if f, ok := flagNames[head]; ok {
				field = f
				if rest != "" {
					field += "[" + rest
				}
			}
			msgs = append(msgs, field+": "+fe.Message)
			continue
		}
		msgs = append(msgs, e.Error())
	}
	return errors.New(strings.Join(msgs, "\n"))
}

// Run runs the command with args (without the command name) and returns its exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	var rep reported
	if err != nil {
		if !errors.As(err, &rep) {
			fmt.Fprintf(stderr, "dsnscale load: %v\n", err)
		}
		return ExitUsage
	}
	cfg, err := o.executorConfig()
	if err != nil {
		fmt.Fprintf(stderr, "dsnscale load: %v\n", err)
		return ExitUsage
	}
	m, err := mix.Load(o.mixName)
	if err != nil {
		fmt.Fprintf(stderr, "dsnscale load: --mix: %v\n", err)
		return ExitUsage
	}
	if o.seedSet {
		m.Population.Seed = o.seed
	}
	if o.setup != "" {
		m.Setup = o.setup
	}
	if o.timeout != 0 {
		m.Timeout = o.timeout
	}
	if o.teardown {
		m.Teardown = true
	}
	if err := m.Validate(); err != nil {
		fmt.Fprintf(stderr, "dsnscale load: %v\n", strings.NewReplacer("setup:", "--setup:", "timeout:", "--timeout:").Replace(err.Error()))
		return ExitUsage
	}
	plan, _ := cfg.Plan() // cfg is valid
	if o.planOnly {
		return printPlan(plan, m, o, stdout)
	}
	level := slog.LevelWarn
	if o.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	nc := northbound.Config{Target: o.target, Token: o.token, Mix: m, RunID: o.runID, User: o.user, Logger: log}
	if o.caFile != "" {
		if nc.CA, err = client.ReadCAFile(o.caFile); err != nil {
			fmt.Fprintf(stderr, "dsnscale load: --ca: %v\n", err)
			return ExitUsage
		}
	}
	if o.passwordFile != "" {
		if nc.Password, err = client.ReadPasswordFile(o.passwordFile); err != nil {
			fmt.Fprintf(stderr, "dsnscale load: --password-file: %v\n", err)
			return ExitUsage
		}
	}
	w, err := northbound.New(nc)
	if err != nil {
		fmt.Fprintf(stderr, "dsnscale load: %v\n", strings.NewReplacer("target", "--target", "run id", "--run-id", "token:", "--token:", "user and password", "--user and --password-file").Replace(err.Error()))
		return ExitUsage
	}
	defer w.CloseIdleConnections()
	return run(ctx, o, cfg, plan, m, w, log, stdout, stderr)
}

func printPlan(plan loadgen.Plan, m *mix.Mix, o *options, stdout io.Writer) int {
	if o.asJSON {
		_ = writeJSON(stdout, Report{Plan: plan, Mix: m.Name, Target: o.target})
		return ExitOK
	}
	fmt.Fprint(stdout, plan.String())
	p := m.Population
	fmt.Fprintf(stdout, "mix %s: %d tenants x (%d networks, %d policies of %d rules), setup %s, teardown %v\n",
		m.Name, p.Tenants, p.NetworksPerTenant, p.PoliciesPerTenant, p.RulesPerPolicy, m.Setup, m.Teardown)
	for _, op := range m.Operations {
		fmt.Fprintf(stdout, "  %-22s weight %g\n", op.Name(), op.Weight)
	}
	return ExitOK
}

func run(ctx context.Context, o *options, cfg loadgen.ExecutorConfig, plan loadgen.Plan, m *mix.Mix, w *northbound.Workload,
	log *slog.Logger, stdout, stderr io.Writer) int {
	rep := Report{Plan: plan, Mix: m.Name, Target: o.target}
	code := ExitOK
	fail := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		rep.Error = msg
		fmt.Fprintf(stderr, "dsnscale load: %s\n", msg)
		code = ExitFailure
	}
	fmt.Fprintf(stderr, "setting up mix %s at %s\n", m.Name, o.target)
	st, err := w.Setup(ctx)
	rep.Setup = &st
	if err != nil {
		fail("setup: %v", err)
	} else {
		fmt.Fprintf(stderr, "setup: %d created, %d adopted, %d assumed, %d DSNs in %s\n",
			st.Created, st.Adopted, st.Assumed, st.DSNs, st.Duration.Round(time.Millisecond))
		ex, err := loadgen.New(cfg, w, loadgen.Options{Logger: log})
		if err != nil {
			fail("%v", err)
		} else {
			prog := startProgress(stderr, plan)
			sum, err := ex.Run(ctx, prog)
			prog.stop()
			rep.Summary = &sum
			if err != nil {
				fail("run: %v", err)
			}
		}
	}
	if m.Teardown {
		tctx := context.WithoutCancel(ctx)
		td, err := w.Teardown(tctx)
		rep.Teardown = &td
		if err != nil {
			fail("teardown: %v", err)
		} else {
			fmt.Fprintf(stderr, "teardown: %d deleted, %d already gone in %s\n", td.Deleted, td.Missing, td.Duration.Round(time.Millisecond))
		}
	}
	if o.asJSON {
		if err := writeJSON(stdout, rep); err != nil {
			fmt.Fprintf(stderr, "dsnscale load: %v\n", err)
			return ExitFailure
		}
		return code
	}
	if rep.Summary != nil {
		fmt.Fprintf(stdout, "target       %s, mix %s\n", o.target, m.Name)
		if err := rep.Summary.Write(stdout); err != nil {
			return ExitFailure
		}
	}
	return code
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
