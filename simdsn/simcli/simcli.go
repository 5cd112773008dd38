// Package simcli is the command line of the simulated fleet: `dsnscale sim` runs a fleet
// against any control plane that speaks the southbound protocol, `dsnscale sim child` is the
// hidden subcommand a unit's child process (or container) runs, and RunValidateMap backs
// `dsnscale validate FILE` for traffic maps.
package simcli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/dsnscale/dsnscale/controlplane/client"
	"github.com/dsnscale/dsnscale/simdsn"
	"github.com/dsnscale/dsnscale/simdsn/bus"
	"github.com/dsnscale/dsnscale/simdsn/driver"
	"github.com/dsnscale/dsnscale/simdsn/harness"
	"github.com/dsnscale/dsnscale/simdsn/stage"
	"github.com/dsnscale/dsnscale/simdsn/trafficmap"
	"github.com/dsnscale/dsnscale/target"

	// Every driver, and the sim benchmarks.
	_ "github.com/dsnscale/dsnscale/simdsn/docker"
	_ "github.com/dsnscale/dsnscale/simdsn/process"
	_ "github.com/dsnscale/dsnscale/simdsn/simbench"
	_ "github.com/dsnscale/dsnscale/simdsn/swarm"
)

// Exit codes.
const (
	ExitOK     = 0
	ExitUsage  = 2
	ExitBroken = 3
)

const usageText = `usage: dsnscale sim (--cp NATS_URL [--api API_URL --ca CA_FILE (--token-file F | --password-file F)] | --target FILE) [flags]

Runs a simulated DSN fleet against a control plane. --cp is the control plane's NATS URL
(tls://host:port, or nats://host:port for one run --insecure), the one ` + "`dsnscale cp serve`" + `
prints as "nats"; its northbound API does not publish it, so an http:// URL is refused.

A control plane with security on (the default) admits DSNs with bootstrap tokens: give --api
and --ca (its "api" and "ca" lines) and either --token-file (a gateway token for --conn shared,
a DSN token for --conn per-dsn) or --password-file (the sim logs in as --user and creates the
token it needs). Shared connections use one fleet gateway identity: a simulation-only trust
level (docs/PROTOCOL.md); --conn per-dsn gives every DSN its own identity.

--target FILE takes all of that from a target file (kind: Target, docs/TARGETS.md) instead:
the bus, the API, the CA, the credentials and the admission (a DSN bootstrap token means
--conn per-dsn). Check one first with dsnscale target check FILE.

`

type options struct {
	cp, driverName, mapFile, stagesDir, conn, idPrefix, binary, workDir, progress, logLevel string
	api, caFile, tokenFile, user, passwordFile, tenant, targetFile                          string
	count, dsnsPerConn, workers                                                             int
	seed                                                                                    uint64
	bootSpread, duration, cpTimeout, pingInterval                                           time.Duration
	unitProxies                                                                             bool
}

// Run runs `dsnscale sim ARGS` (args exclude "sim"). Exit codes: 0 ok, 2 bad input or usage,
// 3 failure.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "child" {
		return runChild(ctx, args[1:], stderr)
	}
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fs.PrintDefaults()
	}
	var o options
	fs.StringVar(&o.cp, "cp", "", "the control plane's NATS URL (required)")
	fs.IntVar(&o.count, "count", 0, "number of DSNs (default: the map's own count)")
	fs.StringVar(&o.driverName, "driver", "inproc", "fleet driver: "+strings.Join(driver.Names(), ", "))
	fs.StringVar(&o.mapFile, "map", "", "traffic-pattern map file (default: the embedded map)")
	fs.StringVar(&o.stagesDir, "stages", "", "directory of extra stage set and misbehaviour files")
	fs.StringVar(&o.conn, "conn", string(bus.Shared), "bus connections: shared (density) or per-dsn (realistic reconnect storms)")
	fs.IntVar(&o.dsnsPerConn, "dsns-per-conn", 1000, "DSNs per shared connection")
	fs.IntVar(&o.workers, "workers", 2, "worker goroutines per engine")
	fs.Uint64Var(&o.seed, "seed", 0, "random seed (0: random)")
	fs.DurationVar(&o.bootSpread, "boot-spread", 10*time.Second, "spread DSN boots over this window")
	fs.DurationVar(&o.duration, "duration", 0, "stop after this long (0: run until interrupted)")
	fs.DurationVar(&o.cpTimeout, "cp-timeout", 5*time.Second, "how long to try the control plane's bus before giving up")
	fs.DurationVar(&o.pingInterval, "ping-interval", 10*time.Second, "how often bus connections check the server")
	fs.StringVar(&o.idPrefix, "id-prefix", "sim-", "prefix of DSN ids")
	fs.StringVar(&o.binary, "binary", "", "dsnscale binary for the process, docker and swarm drivers (default: this one)")
	fs.StringVar(&o.workDir, "workdir", "", "directory for driver files (default: a temporary one)")
	fs.BoolVar(&o.unitProxies, "unit-proxies", false, "inproc: put a loopback proxy before each rack (for unit-disconnect)")
	fs.StringVar(&o.progress, "progress", "auto", "progress display: auto, bar, plain or none")
	fs.StringVar(&o.logLevel, "log-level", "warn", "debug, info, warn or error")
	fs.StringVar(&o.api, "api", "", "the control plane's API URL, for admission (https://host:port)")
	fs.StringVar(&o.caFile, "ca", "", "the control plane's CA certificate (cp serve's \"ca\" file)")
	fs.StringVar(&o.tokenFile, "token-file", "", "file holding a bootstrap token: a gateway token (--conn shared) or a DSN token (--conn per-dsn)")
	fs.StringVar(&o.user, "user", "admin", "user to log in as with --password-file")
	fs.StringVar(&o.passwordFile, "password-file", "", "log in with this password and create the bootstrap token (cp serve's \"admin-password\" file)")
	fs.StringVar(&o.targetFile, "target", "", "target file (kind: Target) giving the bus, API, CA, credentials and admission")
	fs.StringVar(&o.tenant, "tenant", "", "tenant of the DSN token created with --password-file and --conn per-dsn (must exist)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "dsnscale sim: unexpected argument %q\n", fs.Arg(0))
		return ExitUsage
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		fmt.Fprintf(stderr, "dsnscale sim: --log-level: %v\n", err)
		return ExitUsage
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	var tg *target.Target
	if o.targetFile != "" {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for _, name := range []string{"cp", "api", "ca", "token-file", "password-file", "user", "tenant"} {
			if set[name] {
				fmt.Fprintf(stderr, "dsnscale sim: --%s cannot be given with --target: the target file says it\n", name)
				return ExitUsage
			}
		}
		f, err := target.Load(o.targetFile)
		if err != nil {
			fmt.Fprintf(stderr, "dsnscale sim: --target: %v\n", err)
			return ExitUsage
		}
		tg = &f.Target
		o.cp, o.api, o.caFile = tg.BusURL, tg.APIURL, tg.CAFile
		if !set["conn"] {
			o.conn = string(tg.Conn())
		}
	}
	cfg, code := o.config(ctx, stderr, log, tg)
	if code != ExitOK {
		return code
	}
	return run(ctx, cfg, o, stdout, stderr)
}

// config checks every input before anything starts.
func (o options) config(ctx context.Context, stderr io.Writer, log *slog.Logger, tg *target.Target) (simdsn.Config, int) {
	bad := func(format string, args ...any) (simdsn.Config, int) {
		fmt.Fprintf(stderr, "dsnscale sim: "+format+"\n", args...)
		return simdsn.Config{}, ExitUsage
	}
	if o.cp == "" {
		return bad("--cp is required: the control plane's NATS URL (nats://host:port)")
	}
	if strings.HasPrefix(o.cp, "http://") || strings.HasPrefix(o.cp, "https://") {
		return bad("--cp %s: give the control plane's NATS URL (nats://host:port), not its API URL", o.cp)
	}
	if o.count < 0 || o.dsnsPerConn < 1 || o.workers < 1 {
		return bad("--count must not be negative; --dsns-per-conn and --workers must be at least 1")
	}
	switch o.progress {
	case "auto", "bar", "plain", "none":
	default:
		return bad("--progress %q: want auto, bar, plain or none", o.progress)
	}
	reg := stage.Default()
	if o.stagesDir != "" {
		if err := reg.AddDir(o.stagesDir); err != nil {
			return bad("--stages: %v", err)
		}
	}
	m := trafficmap.Default()
	if o.mapFile != "" {
		var err error
		if m, err = trafficmap.Load(o.mapFile, reg); err != nil {
			return bad("--map: %v", err)
		}
	}
	cfg := simdsn.Config{Driver: o.driverName, NATSURL: o.cp, Count: o.count, Map: m, Stages: reg, IDPrefix: o.idPrefix,
		Conn: bus.Mode(o.conn), DSNsPerConn: o.dsnsPerConn, PingInterval: o.pingInterval, UnitProxies: o.unitProxies,
		Seed: o.seed, Workers: o.workers, WorkDir: o.workDir, Binary: o.binary, Logger: log}
	if err := cfg.Validate(); err != nil {
		return bad("%v", err)
	}
	if _, err := m.Place(o.count, o.idPrefix); err != nil {
		return bad("%v", err)
	}
	if o.caFile == "" && tg == nil && strings.HasPrefix(o.cp, "tls://") {
		return bad("--cp %s requires TLS: give --ca and --api, with --token-file or --password-file", o.cp)
	}
	// The control plane's bus must answer before anything starts.
	if err := preflight(o); err != nil {
		return bad("control plane unreachable: cannot connect to its bus at %s within %v: %v", o.cp, o.cpTimeout, err)
	}
	if tg != nil {
		sec, err := targetSecurity(ctx, tg)
		if err != nil {
			return bad("--target: %v", err)
		}
		cfg.Security = sec
		if err := cfg.Validate(); err != nil {
			return bad("%v", err)
		}
	} else if o.caFile != "" {
		sec, err := o.security(ctx, int(cfg.Count))
		if err != nil {
			return bad("%v", err)
		}
		cfg.Security = sec
		if err := cfg.Validate(); err != nil {
			return bad("%v", err)
		}
	}
	return cfg, ExitOK
}

// targetSecurity is the fleet's admission as the target declares it, logged in with its
// credentials when it has the harness issue a gateway token.
func targetSecurity(ctx context.Context, tg *target.Target) (*bus.Security, error) {
	hc, err := tg.HTTPClient(30 * time.Second)
	if err != nil {
		return nil, err
	}
	opts, err := tg.ClientOptions()
	if err != nil {
		return nil, err
	}
	api := client.New(tg.APIURL, hc, append(opts, client.WithUserAgent("dsnscale-sim"))...)
	return tg.FleetSecurity(ctx, api, "dsnscale sim fleet gateway")
}

// preflight checks that the bus answers: a NATS handshake in plain text, or a TCP connection
// when the bus requires mutual TLS (the identities come later).
func preflight(o options) error {
	if o.caFile == "" && o.targetFile == "" {
		nc, err := nats.Connect(o.cp, nats.Timeout(o.cpTimeout), nats.Name("dsnscale-sim-preflight"))
		if err != nil {
			return err
		}
		nc.Close()
		return nil
	}
	addr, err := driver.HostPort(o.cp)
	if err != nil {
		return err
	}
	c, err := net.DialTimeout("tcp", addr, o.cpTimeout)
	if err != nil {
		return err
	}
	return c.Close()
}

// security reads the CA and the bootstrap token, or logs in and creates the token: a gateway
// token for shared connections, a DSN token with a use per DSN (and as many spare, for
// restarts of the process driver's units) for per-DSN ones.
func (o options) security(ctx context.Context, count int) (*bus.Security, error) {
	if o.api == "" {
		return nil, errors.New("--ca needs --api: DSNs are admitted through the control plane's API")
	}
	if (o.tokenFile == "") == (o.passwordFile == "") {
		return nil, errors.New("--ca needs exactly one of --token-file and --password-file")
	}
	ca, err := client.ReadCAFile(o.caFile)
	if err != nil {
		return nil, fmt.Errorf("--ca: %w", err)
	}
	sec := &bus.Security{CA: string(ca), APIURL: o.api}
	perDSN := bus.Mode(o.conn) == bus.PerDSN
	var token string
	if o.tokenFile != "" {
		if token, err = client.ReadPasswordFile(o.tokenFile); err != nil {
			return nil, fmt.Errorf("--token-file: %w", err)
		}
	} else {
		pw, err := client.ReadPasswordFile(o.passwordFile)
		if err != nil {
			return nil, fmt.Errorf("--password-file: %w", err)
		}
		hc, err := client.HTTPClient(ca, 30*time.Second)
		if err != nil {
			return nil, err
		}
		api := client.New(o.api, hc, client.WithCredentials(o.user, pw), client.WithUserAgent("dsnscale-sim"))
		spec := client.BootstrapTokenSpec{Role: client.RoleGateway, Description: "dsnscale sim fleet gateway"}
		if perDSN {
			if o.tenant == "" {
				return nil, errors.New("--conn per-dsn with --password-file needs --tenant: DSN tokens belong to a tenant")
			}
			if count == 0 {
				count = 100000
			}
			spec = client.BootstrapTokenSpec{Tenant: o.tenant, Uses: min(2*count, 100000), Description: "dsnscale sim DSNs"}
		}
		created, err := api.CreateBootstrapToken(ctx, spec)
		if err != nil {
			return nil, fmt.Errorf("creating a bootstrap token at %s: %w", o.api, err)
		}
		token = created.Secret
	}
	if perDSN {
		sec.BootstrapToken = token
	} else {
		sec.GatewayToken = token
	}
	return sec, nil
}

func runChild(ctx context.Context, args []string, stderr io.Writer) int {
	a, err := harness.ParseChildArgs(args, os.Getenv, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "dsnscale sim child: %v\n", err)
		return ExitUsage
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := harness.RunChild(ctx, a, log); err != nil {
		fmt.Fprintf(stderr, "dsnscale sim child: %v\n", err)
		return ExitBroken
	}
	return ExitOK
}

// RunValidateMap checks a TrafficMap file (with the embedded stages) and says what is wrong,
// with file:line and field path. It returns 0 when the map is valid, 2 otherwise.
func RunValidateMap(path string, stderr io.Writer) int {
	m, err := trafficmap.Load(path, stage.Default())
	if err != nil {
		fmt.Fprintln(stderr, err)
		return ExitUsage
	}
	racks := 0
	for _, s := range m.Sites {
		racks += len(s.Racks)
	}
	fmt.Fprintf(stderr, "%s: valid TrafficMap %q: %d DSNs in %d groups, %d sites, %d racks\n", path, m.Name, m.DSNs(), len(m.Groups), len(m.Sites), racks)
	return ExitOK
}

// IsTrafficMap reports whether a YAML file declares kind TrafficMap, so that `dsnscale
// validate` can route it here.
func IsTrafficMap(path string) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(line) == "kind: "+trafficmap.Kind {
			return true
		}
	}
	return false
}
