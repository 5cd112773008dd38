package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/dsnscale/dsnscale/controlplane"
)

func init() {
	register("cp", "run the reference control plane (cp serve --data DIR --listen ADDR)", runCP)
}

const cpUsage = "usage: dsnscale cp serve --data DIR --listen ADDR [--nats-listen ADDR | --nats-url URL] " +
	"[--tls-cert FILE --tls-key FILE] [--admin-password-file FILE] [--ca-dir DIR] [--insecure] [--pprof-listen ADDR] " +
	"[--cluster NAME --node-name N --cluster-listen HOST:PORT --peers HOST:PORT,HOST:PORT]"

// hostList is a comma-separated flag value.
type hostList []string

func (h *hostList) String() string { return strings.Join(*h, ",") }

func (h *hostList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*h = append(*h, s)
		}
	}
	return nil
}

func runCP(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "serve" {
		fmt.Fprintln(stderr, cpUsage)
		return exitUsage
	}
	fs := flag.NewFlagSet("cp serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg controlplane.Config
	var hosts, peers hostList
	fs.StringVar(&cfg.DataDir, "data", "", "data directory (required)")
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:8080", "northbound API host:port")
	fs.StringVar(&cfg.NATSListen, "nats-listen", "", "embedded NATS host:port for DSNs (default 127.0.0.1:4222)")
	fs.StringVar(&cfg.NATSURL, "nats-url", "", "use an external NATS with JetStream instead of the embedded one (several servers of one cluster: comma separated)")
	fs.StringVar(&cfg.Cluster.Name, "cluster", "", "run as one replica of a cluster of this name: the embedded NATS servers of the replicas form a JetStream cluster and everything is stored with 3 replicas")
	fs.StringVar(&cfg.Cluster.NodeName, "node-name", "", "this replica's name, unique in the cluster (with --cluster)")
	fs.StringVar(&cfg.Cluster.Listen, "cluster-listen", "", "host:port the other replicas' NATS servers connect to (with --cluster)")
	fs.Var(&peers, "peers", "comma-separated --cluster-listen addresses of the other replicas (with --cluster; at least 2)")
	fs.DurationVar(&cfg.Cluster.JoinTimeout, "join-timeout", 0, "how long a replica waits at start for the cluster's JetStream meta leader (default 1m)")
	fs.DurationVar(&cfg.Cluster.DrainDelay, "drain-delay", 0, "how long a replica asked to stop (SIGTERM) answers /readyz with 503 before it stops taking requests, for a load balancer's health check to notice (with --cluster; default 2s)")
	fs.IntVar(&cfg.Replicas, "replicas", 0, "replicas of the control plane's buckets and streams (default 1, or 3 with --cluster); with --nats-url, the external cluster's replication")
	fs.StringVar(&cfg.CADir, "ca-dir", "", "the CA's directory (default DATA/ca); replicas of a cluster share one CA: give them the same directory or copies of it")
	fs.StringVar(&cfg.TSDBURL, "tsdb", "", "TSDB for DSN telemetry: victoriametrics://HOST:PORT, influxdb://HOST:PORT?org=&bucket=&token= (default: embedded under DATA)")
	fs.StringVar(&cfg.SearchURL, "search", "", "search backend for events, logs and audit: elasticsearch://HOST:PORT or opensearch://HOST:PORT (default: embedded under DATA)")
	fs.StringVar(&cfg.InventoryURL, "inventory", "", "SQL inventory of DSNs: postgres://USER:PASS@HOST:PORT/DB (default: SQLite under DATA)")
	fs.Int64Var(&cfg.MaxBodyBytes, "max-body-bytes", 1<<20, "largest accepted request body")
	fs.IntVar(&cfg.MaxInFlight, "max-in-flight", 512, "concurrent API requests before 429")
	fs.IntVar(&cfg.MaxConcurrentSyncs, "max-concurrent-syncs", 256, "concurrent DSN syncs before admission asks DSNs to retry")
	fs.DurationVar(&cfg.HeartbeatInterval, "heartbeat-interval", 0, "heartbeat interval DSNs are given (default 10s)")
	fs.DurationVar(&cfg.CoalesceWindow, "coalesce-window", 0, "intent changes within this window of the first are pushed as one delta per DSN group (default 20ms, at most 100ms; -1ns turns it off)")
	fs.DurationVar(&cfg.OfflineAfter, "offline-after", 0, "a DSN not heard from for this long is offline (default 3 heartbeat intervals)")
	fs.DurationVar(&cfg.StragglerDeadline, "straggler-deadline", 0, "how long a DSN may stay behind before each corrective step: resend, resync, quarantine (default 30s)")
	fs.DurationVar(&cfg.SyncTimeout, "sync-timeout", 0, "frees the sync slot of a DSN that has not acked its admission's delta or snapshot (default 2 straggler deadlines)")
	fs.StringVar(&cfg.AuditMode, "audit-mode", "durable", "durable: a call is answered once its audit record is stored in a JetStream stream; bounded: records queue for search and a full queue drops them")
	fs.BoolVar(&cfg.Insecure, "insecure", false, "plain HTTP and plain NATS with no authentication, RBAC, audit or rate limits (explicit opt-out only)")
	fs.StringVar(&cfg.TLSCertFile, "tls-cert", "", "PEM certificate chain for the API (default: one from the control plane's CA)")
	fs.StringVar(&cfg.TLSKeyFile, "tls-key", "", "PEM private key of --tls-cert")
	fs.Var(&hosts, "tls-hosts", "comma-separated names and addresses for the CA-issued API and bus certificates (default 127.0.0.1,localhost and the listen hosts)")
	fs.StringVar(&cfg.AdminPasswordFile, "admin-password-file", "", "file holding the first admin's password (default: generate one into DATA/admin-password)")
	fs.DurationVar(&cfg.TokenTTL, "token-ttl", 0, "lifetime of API tokens (default 15m)")
	fs.DurationVar(&cfg.CertTTL, "cert-ttl", 0, "lifetime of DSN certificates (default 24h)")
	fs.Float64Var(&cfg.RateLimits.UserRate, "rate-per-user", 0, fmt.Sprintf("API requests per second of each user (default %d)", controlplane.DefaultUserRate))
	fs.Float64Var(&cfg.RateLimits.SourceRate, "rate-per-source", 0, "API requests per second of each source address (default: twice --rate-total)")
	fs.Float64Var(&cfg.RateLimits.TotalRate, "rate-total", 0, fmt.Sprintf("API requests per second of all users together, shared fairly among them when short (default %d)", controlplane.DefaultTotalRate))
	fs.BoolVar(&cfg.RateLimits.Off, "no-rate-limits", false, "do not rate limit the API")
	pprofListen := fs.String("pprof-listen", "", "serve Go profiles (net/http/pprof, unauthenticated; block and mutex profiling on) on this loopback host:port")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args[1:]); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "dsnscale cp serve: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	cfg.TLSHosts = hosts
	cfg.Cluster.Peers = peers
	if cfg.NATSURL == "" && cfg.NATSListen == "" {
		cfg.NATSListen = "127.0.0.1:4222"
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "dsnscale cp serve: --log-level: %v\n", err)
		return exitUsage
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "dsnscale cp serve: %v\n", err)
		return exitUsage
	}
	if *pprofListen != "" {
		prof, err := startProfiles(*pprofListen)
		if err != nil {
			fmt.Fprintf(stderr, "dsnscale cp serve: %v\n", err)
			return exitUsage
		}
		defer prof.Close()
		cfg.Logger.Info("serving profiles", "url", prof.URL())
	}
	srv, err := controlplane.Start(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "dsnscale cp serve: %v\n", err)
		return exitBroken
	}
	// Callers parse these lines: "api URL", "nats URL", then with security on "ca FILE" (the
	// trust anchor of both) and "admin-password FILE".
	fmt.Fprintf(stdout, "api %s\nnats %s\n", srv.APIURL(), srv.NATSURL())
	if !srv.Insecure() {
		fmt.Fprintf(stdout, "ca %s\nadmin-password %s\n", srv.CAFile(), srv.AdminPasswordFile())
	} else {
		cfg.Logger.Warn("running insecure: the API and the bus accept anyone")
	}
	<-ctx.Done()
	cfg.Logger.Info("shutting down")
	srv.Stop()
	return exitOK
}
