// Package natsserver runs an embedded nats-server with JetStream, for the control plane's
// default bus and for tests.
package natsserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
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
	// authentication (see package controlplane/pki/natsauth), route TLS. An error stops Start.
	Configure func(*server.Options) error
	// Cluster, when its Name is set, makes the server one node of a NATS cluster with
	// clustered JetStream.
	Cluster Cluster
}

// Cluster says how a server joins a NATS cluster. Route TLS, if any, is set by Config.Configure
// (server.Options.Cluster.TLSConfig).
type Cluster struct {
	// Name is the cluster's name; every node must have the same.
	Name string
	// NodeName is this server's name, unique in the cluster (the JetStream peer name).
	NodeName string
	// Listen is host:port for routes from the other nodes ("127.0.0.1:0" picks a free port,
	// which the others can then not be told in advance).
	Listen string
	// Routes are the other nodes' route URLs (nats-route://host:port, or tls:// when routes use
	// TLS).
	Routes []string
}

// Enabled reports whether the server is to join a cluster.
func (c Cluster) Enabled() bool { return c.Name != "" }

// Validate checks the cluster settings.
func (c Cluster) Validate() error {
	if !c.Enabled() {
		if c.NodeName != "" || c.Listen != "" || len(c.Routes) > 0 {
			return errors.New("natsserver: cluster node name, listen or routes without a cluster name")
		}
		return nil
	}
	if c.NodeName == "" {
		return errors.New("natsserver: cluster node name is required")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("natsserver: cluster listen %q: %w", c.Listen, err)
	}
	for i, r := range c.Routes {
		u, err := url.Parse(r)
		if err != nil || u.Host == "" {
			return fmt.Errorf("natsserver: cluster routes[%d] %q: not a URL with a host", i, r)
		}
	}
	return nil
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
	return c.Cluster.Validate()
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
	if cl := cfg.Cluster; cl.Enabled() {
		if err := clusterOptions(opts, cl); err != nil {
			return nil, err
		}
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

// clusterOptions makes opts one node of the cluster cl.
func clusterOptions(opts *server.Options, cl Cluster) error {
	host, portStr, _ := net.SplitHostPort(cl.Listen)
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("natsserver: cluster listen %q: port: %w", cl.Listen, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	} else {
		ln, err := net.Listen("tcp", cl.Listen)
		if err != nil {
			return fmt.Errorf("natsserver: cluster listen %s: %w", cl.Listen, err)
		}
		_ = ln.Close()
	}
	opts.ServerName = cl.NodeName
	opts.Cluster = server.ClusterOpts{
		Name: cl.Name,
		Host: host,
		Port: port,
	}
	// Explicit routes are retried until they connect: nodes may come up in any order.
	opts.Routes = server.RoutesFromStr(strings.Join(cl.Routes, ","))
	// A node leaving on purpose (Handover) closes its clients over a few seconds, not the
	// default two minutes: they reconnect to the other nodes without a storm.
	opts.LameDuckDuration = lameDuckDuration
	opts.LameDuckGracePeriod = lameDuckGrace
	return nil
}

// How a node leaving its cluster on purpose closes its client connections: it waits
// lameDuckGrace, then spreads the closes over the rest of lameDuckDuration.
const (
	lameDuckDuration = 3 * time.Second
	lameDuckGrace    = time.Second
)

// Handover stops a cluster node the way a node leaves on purpose: it hands the leadership of
// every JetStream stream, consumer and the meta group it leads to other nodes (a new leader is
// chosen at once, instead of after the election timeout a lost leader costs), closes its
// clients over a few seconds so that they reconnect elsewhere, and shuts down. Outside a
// cluster it is Stop.
func (s *Server) Handover() {
	if s.ClusterName() == "" {
		s.Stop()
		return
	}
	s.LameDuckShutdown()
	s.WaitForShutdown()
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

// ErrNoMetaLeader is returned when a clustered JetStream has elected no meta leader in time.
var ErrNoMetaLeader = errors.New("natsserver: no JetStream meta leader")

// MetaLeader is the server name of the JetStream meta leader this server knows of: its own name
// when it is not clustered, "" while the cluster has none.
func (s *Server) MetaLeader() string {
	if !s.JetStreamIsClustered() {
		return s.Name()
	}
	jsz, err := s.Jsz(&server.JSzOptions{})
	if err != nil || jsz.Meta == nil {
		return ""
	}
	return jsz.Meta.Leader
}

// WaitMetaLeader waits until the JetStream meta leader is known, up to timeout: only then can
// streams and buckets be created. It polls, since the server has no notification of it.
func (s *Server) WaitMetaLeader(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if s.MetaLeader() != "" {
			return nil
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("%w after %s (%d routes up)", ErrNoMetaLeader, timeout, s.NumRoutes())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// WaitJetStream waits until JetStream answers an API request through js (account info, which a
// clustered JetStream answers from its meta leader), trying every second with a short timeout
// of its own, until ctx ends. A cluster that has just elected its meta leader may still drop
// requests while its routes settle (duplicate routes between nodes that dialled each other are
// closed): one answered request says the path works.
func WaitJetStream(ctx context.Context, js jetstream.JetStream) error {
	for {
		tctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := js.AccountInfo(tctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("natsserver: JetStream does not answer: %w (last error: %w)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// FreeAddrs returns n distinct loopback host:port addresses that were free a moment ago, for
// the nodes of a cluster that must know each other's addresses before they start.
func FreeAddrs(n int) ([]string, error) {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	addrs := make([]string, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("natsserver: free address: %w", err)
		}
		ls = append(ls, l)
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}

// StartCluster starts n servers on loopback as one cluster named name, storing under
// dir/node-<i>, and waits (up to 30s) for their JetStream meta leader: an R3 bus in one process,
// for tests and tools.
func StartCluster(dir, name string, n int) ([]*Server, error) {
	if n < 1 {
		return nil, fmt.Errorf("natsserver: cluster of %d nodes", n)
	}
	routes, err := FreeAddrs(n)
	if err != nil {
		return nil, err
	}
	cfgs := make([]Config, n)
	for i := range n {
		var peers []string
		for j, r := range routes {
			if j != i {
				peers = append(peers, "nats-route://"+r)
			}
		}
		cfgs[i] = Config{StoreDir: fmt.Sprintf("%s/node-%d", dir, i),
			Cluster: Cluster{Name: name, NodeName: fmt.Sprintf("n%d", i), Listen: routes[i], Routes: peers}}
	}
	servers := make([]*Server, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { servers[i], errs[i] = Start(cfgs[i]) })
	}
	wg.Wait()
	stop := func() {
		for _, s := range servers {
			if s != nil {
				s.Stop()
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		stop()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, s := range servers {
		if err := s.WaitMetaLeader(30 * time.Second); err != nil {
			stop()
			return nil, err
		}
		if err := waitJetStreamAt(ctx, s.URL()); err != nil {
			stop()
			return nil, err
		}
	}
	return servers, nil
}

// waitJetStreamAt waits until JetStream answers through a client of url.
func waitJetStreamAt(ctx context.Context, url string) error {
	nc, err := nats.Connect(url)
	if err != nil {
		return fmt.Errorf("natsserver: connect: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("natsserver: JetStream: %w", err)
	}
	return WaitJetStream(ctx, js)
}
