package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/dsnscale/dsnscale/controlplane"
)

func init() {
	register("cp", "run the reference control plane (cp serve --data DIR --listen ADDR)", runCP)
}

func runCP(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "serve" {
		fmt.Fprintln(stderr, "usage: dsnscale cp serve --data DIR --listen ADDR [--nats-listen ADDR | --nats-url URL]")
		return exitUsage
	}
	fs := flag.NewFlagSet("cp serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg controlplane.Config
	fs.StringVar(&cfg.DataDir, "data", "", "data directory (required)")
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:8080", "northbound API host:port")
	fs.StringVar(&cfg.NATSListen, "nats-listen", "", "embedded NATS host:port for DSNs (default 127.0.0.1:4222)")
	fs.StringVar(&cfg.NATSURL, "nats-url", "", "use an external NATS with JetStream instead of the embedded one")
	fs.Int64Var(&cfg.MaxBodyBytes, "max-body-bytes", 1<<20, "largest accepted request body")
	fs.IntVar(&cfg.MaxInFlight, "max-in-flight", 512, "concurrent API requests before 429")
	fs.IntVar(&cfg.MaxConcurrentSyncs, "max-concurrent-syncs", 256, "concurrent DSN syncs before admission asks DSNs to retry")
	fs.DurationVar(&cfg.HeartbeatInterval, "heartbeat-interval", 0, "heartbeat interval DSNs are given (default 10s)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args[1:]); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "dsnscale cp serve: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
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
	srv, err := controlplane.Start(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "dsnscale cp serve: %v\n", err)
		return exitBroken
	}
	fmt.Fprintf(stdout, "api %s\nnats %s\n", srv.APIURL(), srv.NATSURL())
	<-ctx.Done()
	cfg.Logger.Info("shutting down")
	srv.Stop()
	return exitOK
}
