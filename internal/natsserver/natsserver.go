// Package natsserver runs an embedded nats-server with JetStream, for the control plane's
// default bus and for tests.
package natsserver

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config says where the server keeps its data and where it listens.
type Config struct {
	// StoreDir holds the JetStream file store. Required.
	StoreDir string
	// Listen is host:port for clients; "127.0.0.1:0" (the default) picks a free port.
	Listen string
	// MaxPayload caps one message; 0 keeps the server's default (1 MiB).
	MaxPayload int32
	// MaxConnections caps client connections; 0 means the server's default (64K).
	MaxConnections int
	// Configure, if set, may change the server's options before it starts: TLS and client
	// authentication (see package controlplane/pki/natsauth). An error stops Start.
	Configure func(*server.Options) error
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.StoreDir == "" {
		return errors.New("natsserver: StoreDir is required")
	}
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			return fmt.Errorf("natsserver: listen %q: %w", c.Listen, err)
		}
	}
	return nil
}

// Server is a running embedded server.
type Server struct {
	*server.Server
	tls bool
}

// Start starts a server and waits until it accepts connections.
func Start(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	listen := cfg.Listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	host, portStr, _ := net.SplitHostPort(listen)
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("natsserver: listen %q: port: %w", listen, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	} else {
		// The server only logs a failed listen (and logs nothing here) and would be waited on
		// for 30s: a port that is taken is found out now, with the system's reason.
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			return nil, fmt.Errorf("natsserver: listen %s: %w", listen, err)
		}
		_ = ln.Close()
	}
	opts := &server.Options{
		ServerName:         "dsnscale-cp",
		Host:               host,
		Port:               port,
		JetStream:          true,
		StoreDir:           cfg.StoreDir,
		NoSigs:             true,
		NoLog:              true,
		MaxPayload:         cfg.MaxPayload,
		MaxConn:            cfg.MaxConnections,
		WriteDeadline:      10 * time.Second,
		MaxPending:         64 << 20,
		JetStreamMaxMemory: 1 << 30,
		JetStreamMaxStore:  64 << 30,
	}
	if cfg.Configure != nil {
		if err := cfg.Configure(opts); err != nil {
			return nil, fmt.Errorf("natsserver: configure: %w", err)
		}
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsserver: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return nil, errors.New("natsserver: not ready for connections after 30s")
	}
	return &Server{Server: s, tls: opts.TLSConfig != nil}, nil
}

// URL is the URL clients connect to: nats://host:port, or tls://host:port when the server
// requires TLS.
func (s *Server) URL() string {
	u := s.ClientURL()
	if s.tls && len(u) > len("nats://") && u[:len("nats://")] == "nats://" {
		return "tls://" + u[len("nats://"):]
	}
	return u
}

// Stop shuts the server down and waits for it to finish.
func (s *Server) Stop() {
	s.Shutdown()
	s.WaitForShutdown()
}

// Local is an embedded server with one client connection and its JetStream context: what a
// benchmark or a tool needs to run one component on its own.
type Local struct {
	Server *Server
	Conn   *nats.Conn
	JS     jetstream.JetStream
}

// StartLocal starts a server storing under dir and connects to it with opts.
func StartLocal(dir string, opts ...nats.Option) (*Local, error) {
	s, err := Start(Config{StoreDir: dir})
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(s.URL(), opts...)
	if err != nil {
		s.Stop()
		return nil, fmt.Errorf("natsserver: connect: %w", err)
	}
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(30*time.Second))
	if err != nil {
		nc.Close()
		s.Stop()
		return nil, fmt.Errorf("natsserver: JetStream: %w", err)
	}
	return &Local{Server: s, Conn: nc, JS: js}, nil
}

// Close closes the connection and stops the server.
func (l *Local) Close() {
	l.Conn.Close()
	l.Server.Stop()
}
