package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/pki"
	"github.com/dsnscale/dsnscale/internal/natsserver"
)

// DefaultJoinTimeout bounds the wait for the cluster's JetStream meta leader at start.
const DefaultJoinTimeout = 60 * time.Second

// ClusterReplicas is the replica count of everything the control plane stores in cluster mode.
const ClusterReplicas = 3

// ErrClusterNotFormed is returned by Start when the replicas' NATS servers do not form one
// JetStream cluster in time.
var ErrClusterNotFormed = errors.New("controlplane: the cluster did not form")

// ClusterConfig makes the control plane one replica of several: its embedded NATS server joins
// the other replicas' servers as a NATS cluster with clustered JetStream, and every bucket,
// object store and stream the control plane creates has Config.Replicas copies (3). The
// replicas share one CA (Config.CADir) and one admin password file.
type ClusterConfig struct {
	// Name is the cluster's name, the same for every replica. Setting it turns cluster mode on.
	Name string
	// NodeName is this replica's name, unique in the cluster (its NATS server name).
	NodeName string
	// Listen is the host:port the other replicas' servers connect to (routes); a fixed port.
	Listen string
	// Peers are the other replicas' Listen addresses: host:port or nats-route://host:port.
	Peers []string
	// JoinTimeout bounds the wait for the JetStream meta leader at start (default
	// DefaultJoinTimeout): a replica started alone waits this long for enough of the others.
	JoinTimeout time.Duration
	// DrainDelay is how long a replica that is asked to stop answers /readyz with 503 before it
	// stops taking requests (default DefaultDrainDelay), so that a load balancer's health check
	// moves new requests to the others first; set it above the balancer's check interval.
	DrainDelay time.Duration
}

// DefaultDrainDelay is ClusterConfig.DrainDelay's default.
const DefaultDrainDelay = 2 * time.Second

// Enabled reports whether cluster mode is on.
func (c ClusterConfig) Enabled() bool { return c.Name != "" }

var clusterName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// validate checks the cluster settings against the rest of cfg.
func (c ClusterConfig) validate(cfg Config) error {
	if !c.Enabled() {
		if c.NodeName != "" || c.Listen != "" || len(c.Peers) > 0 {
			return fmt.Errorf("%w: node name, cluster listen and peers need a cluster name (--cluster)", ErrConfig)
		}
		if cfg.Replicas > 1 && cfg.NATSURL == "" {
			return fmt.Errorf("%w: replicas %d need a cluster: --cluster with peers, or --nats-url of a NATS cluster", ErrConfig, cfg.Replicas)
		}
		return nil
	}
	if !clusterName.MatchString(c.Name) {
		return fmt.Errorf("%w: cluster name %q: want 1 to 64 letters, digits, '_', '.' or '-'", ErrConfig, c.Name)
	}
	switch {
	case c.NodeName == "":
		return fmt.Errorf("%w: cluster %s: a node name (--node-name) is required", ErrConfig, c.Name)
	case !clusterName.MatchString(c.NodeName):
		return fmt.Errorf("%w: node name %q: want 1 to 64 letters, digits, '_', '.' or '-'", ErrConfig, c.NodeName)
	case cfg.NATSURL != "":
		return fmt.Errorf("%w: cluster and nats-url are exclusive: an external NATS forms its own cluster", ErrConfig)
	case c.JoinTimeout < 0:
		return fmt.Errorf("%w: join timeout %s is negative", ErrConfig, c.JoinTimeout)
	case c.DrainDelay < 0:
		return fmt.Errorf("%w: drain delay %s is negative", ErrConfig, c.DrainDelay)
	case !cfg.Insecure && cfg.AdminPasswordFile == "":
		return fmt.Errorf("%w: cluster mode needs an admin password file (--admin-password-file), the same for every replica: the first to start creates the admin user with it", ErrConfig)
	}
	self, err := routeAddr(c.Listen)
	if err != nil {
		return fmt.Errorf("%w: cluster listen: %w", ErrConfig, err)
	}
	seen := map[string]int{}
	for i, p := range c.Peers {
		addr, err := routeAddr(p)
		if err != nil {
			return fmt.Errorf("%w: peers[%d]: %w", ErrConfig, i, err)
		}
		if sameAddr(addr, self) {
			return fmt.Errorf("%w: peers[%d] %q is this node's own cluster address (%s)", ErrConfig, i, p, c.Listen)
		}
		if j, dup := seen[addr]; dup {
			return fmt.Errorf("%w: peers[%d] %q repeats peers[%d]", ErrConfig, i, p, j)
		}
		seen[addr] = i
	}
	if nodes, r := 1+len(c.Peers), cfg.replicas(); nodes < r {
		return fmt.Errorf("%w: R%d needs at least %d nodes, this one and %d peers; got %d peer(s)", ErrConfig, r, r, r-1, len(c.Peers))
	}
	return nil
}

// routeAddr is the host:port of a peer given as host:port or as a URL; the port must be fixed.
func routeAddr(s string) (string, error) {
	hp := s
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			return "", fmt.Errorf("%q: %w", s, err)
		}
		switch u.Scheme {
		case "nats-route", "nats", "tls":
		default:
			return "", fmt.Errorf("%q: scheme %q: want nats-route://host:port or host:port", s, u.Scheme)
		}
		hp = u.Host
	}
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		return "", fmt.Errorf("%q: %w", s, err)
	}
	if port == "0" || port == "" {
		return "", fmt.Errorf("%q: needs a fixed port: the other replicas dial it", s)
	}
	return net.JoinHostPort(host, port), nil
}

// sameAddr reports whether two host:port name one listener: the same port on the same host,
// or on loopback or wildcard addresses that all reach this machine.
func sameAddr(a, b string) bool {
	ha, pa, _ := net.SplitHostPort(a)
	hb, pb, _ := net.SplitHostPort(b)
	if pa != pb {
		return false
	}
	local := func(h string) bool {
		if h == "" || h == "localhost" {
			return true
		}
		ip := net.ParseIP(h)
		return ip != nil && (ip.IsLoopback() || ip.IsUnspecified())
	}
	return ha == hb || local(ha) && local(hb)
}

// natsCluster is the embedded server's cluster settings.
func (c ClusterConfig) natsCluster() natsserver.Cluster {
	if !c.Enabled() {
		return natsserver.Cluster{}
	}
	routes := make([]string, len(c.Peers))
	for i, p := range c.Peers {
		addr, _ := routeAddr(p) // checked by validate
		routes[i] = "nats-route://" + addr
	}
	return natsserver.Cluster{Name: c.Name, NodeName: c.NodeName, Listen: c.Listen, Routes: routes}
}

// routeTLS makes routes mutual TLS with the CA: each node serves a certificate for hosts and
// presents a control-plane client certificate when it dials; both sides must come from the CA.
// A node with another CA never joins.
func routeTLS(ca *pki.CA, hosts []string) (func(*server.Options) error, error) {
	srv, err := ca.ServerTLSConfig(hosts, 0, true)
	if err != nil {
		return nil, fmt.Errorf("controlplane: route TLS: %w", err)
	}
	cli, err := ca.ControlPlaneTLSConfig("route", 0)
	if err != nil {
		return nil, fmt.Errorf("controlplane: route TLS: %w", err)
	}
	tc := srv.Clone()
	tc.GetClientCertificate = cli.GetClientCertificate
	tc.RootCAs = ca.Pool()
	// One configuration accepts and dials routes: the chain checks against the CA (ClientCAs
	// for the dialler's client certificate, RootCAs for the server's) are the standard ones; the
	// CA's own check of DSN client certificates would refuse a server certificate when dialling.
	tc.VerifyPeerCertificate = nil
	return func(o *server.Options) error {
		o.Cluster.TLSConfig = tc
		o.Cluster.TLSTimeout = 2
		return nil
	}, nil
}

// joinCluster waits for the JetStream meta leader of the embedded server's cluster, up to the
// join timeout, and explains what usually keeps a cluster from forming.
func (s *Server) joinCluster() error {
	c := s.cfg.Cluster
	timeout := c.JoinTimeout
	if timeout == 0 {
		timeout = DefaultJoinTimeout
	}
	s.cfg.Logger.Info("waiting for the cluster's JetStream meta leader", "cluster", c.Name, "node", c.NodeName,
		"peers", strings.Join(c.Peers, ","), "timeout", timeout)
	if err := s.nats.WaitMetaLeader(timeout); err != nil {
		return fmt.Errorf("%w: cluster %q, node %q: %w; routes up to %d of %d peers (%s). Likely causes: "+
			"the peers are not running or not reachable at those addresses; a peer runs with another cluster name (--cluster); "+
			"a peer has another CA (routes are mutual TLS: every replica needs the same --ca-dir)",
			ErrClusterNotFormed, c.Name, c.NodeName, err, len(s.routeRemotes()), len(c.Peers), strings.Join(c.Peers, ","))
	}
	return nil
}

// routeRemotes names the nodes this replica's embedded server has routes to.
func (s *Server) routeRemotes() []string {
	if s.nats == nil {
		return nil
	}
	rz, err := s.nats.Routez(nil)
	if err != nil {
		return nil
	}
	var names []string
	for _, r := range rz.Routes {
		if r.RemoteName != "" && !slices.Contains(names, r.RemoteName) {
			names = append(names, r.RemoteName)
		}
	}
	slices.Sort(names)
	return names
}

// replicated creates every bucket, object store and stream with at least n replicas, whatever
// the component that creates it asks for: the control plane's stores need not each be told. It
// also retries a creation or update that went unanswered: while a new cluster's routes settle,
// and when replicas create the same bucket at once, a request can be dropped, and the stores
// would otherwise wait out the whole request timeout and fail. Creating or updating with the
// same configuration again is harmless.
type replicated struct {
	jetstream.JetStream
	n int
}

// Attempts of a creation or update through replicated: each gets createAttempt, all together
// createBudget unless the caller's context ends first.
const (
	createAttempt = 5 * time.Second
	createBudget  = time.Minute
)

func retryCreate[T any](ctx context.Context, f func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, createBudget)
	defer cancel()
	for {
		actx, acancel := context.WithTimeout(ctx, createAttempt)
		v, err := f(actx)
		acancel()
		if err == nil || ctx.Err() != nil || !unanswered(err) && !peersJoining(err) {
			return v, err
		}
		// No responders comes back at once: pause a moment rather than spin.
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// retryIfReplicated runs f through retryCreate in a cluster, once otherwise. In a cluster that
// is still forming, a bucket's leader may move just after it was elected, and a read or a
// watch of it finds nobody to answer for a moment.
func retryIfReplicated[T any](ctx context.Context, replicas int, f func(context.Context) (T, error)) (T, error) {
	if replicas > 1 {
		return retryCreate(ctx, f)
	}
	return f(ctx)
}

// unanswered tells whether a JetStream request went unanswered for a moment: it timed out, or
// nobody listened because a leader was being elected.
func unanswered(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders)
}

// errCodeNoPeers is JetStream's "no suitable peers for placement".
const errCodeNoPeers jetstream.ErrorCode = 10005

// peersJoining tells whether a creation found too few JetStream peers to place its replicas:
// in a cluster that is starting, the meta leader is elected before every node has joined, and
// an R3 creation asked just then succeeds a moment later.
func peersJoining(err error) bool {
	var je jetstream.JetStreamError
	return errors.As(err, &je) && je.APIError() != nil && je.APIError().ErrorCode == errCodeNoPeers
}

// led runs a creation or bind through retryCreate, then waits until the stream behind it has a
// leader. A new replicated stream elects its leader after the creation is acknowledged, and
// until then a read of it (a KV get, a consumer) finds nobody to answer.
func led[T any](ctx context.Context, r replicated, stream string, f func(context.Context) (T, error)) (T, error) {
	v, err := retryCreate(ctx, f)
	if err != nil {
		return v, err
	}
	_, err = retryCreate(ctx, func(ctx context.Context) (struct{}, error) {
		st, err := r.JetStream.Stream(ctx, stream)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			// Just created: the server asked may not have applied the assignment yet.
			return struct{}{}, fmt.Errorf("not assigned here yet: %w", nats.ErrNoResponders)
		}
		if err != nil {
			return struct{}{}, err
		}
		if ci := st.CachedInfo().Cluster; ci != nil && ci.Leader == "" {
			return struct{}{}, fmt.Errorf("no leader yet: %w", nats.ErrNoResponders)
		}
		return struct{}{}, nil
	})
	if err != nil {
		return v, fmt.Errorf("stream %s: waiting for its leader: %w", stream, err)
	}
	return v, nil
}

func (r replicated) CreateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	cfg.Replicas = max(cfg.Replicas, r.n)
	return led(ctx, r, "KV_"+cfg.Bucket, func(ctx context.Context) (jetstream.KeyValue, error) { return r.JetStream.CreateKeyValue(ctx, cfg) })
}

func (r replicated) CreateOrUpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	cfg.Replicas = max(cfg.Replicas, r.n)
	return led(ctx, r, "KV_"+cfg.Bucket, func(ctx context.Context) (jetstream.KeyValue, error) {
		return r.JetStream.CreateOrUpdateKeyValue(ctx, cfg)
	})
}

func (r replicated) UpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	cfg.Replicas = max(cfg.Replicas, r.n)
	return led(ctx, r, "KV_"+cfg.Bucket, func(ctx context.Context) (jetstream.KeyValue, error) { return r.JetStream.UpdateKeyValue(ctx, cfg) })
}

func (r replicated) CreateObjectStore(ctx context.Context, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	cfg.Replicas = max(cfg.Replicas, r.n)
	return led(ctx, r, "OBJ_"+cfg.Bucket, func(ctx context.Context) (jetstream.ObjectStore, error) {
		return r.JetStream.CreateObjectStore(ctx, cfg)
	})
}

func (r replicated) CreateOrUpdateObjectStore(ctx context.Context, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	cfg.Replicas = max(cfg.Replicas, r.n)
	return led(ctx, r, "OBJ_"+cfg.Bucket, func(ctx context.Context) (jetstream.ObjectStore, error) {
		return r.JetStream.CreateOrUpdateObjectStore(ctx, cfg)
	})
}

func (r replicated) UpdateObjectStore(ctx context.Context, cfg jetstream.ObjectStoreConfig) (jetstream.ObjectStore, error) {
	cfg.Replicas = max(cfg.Replicas, r.n)
	return led(ctx, r, "OBJ_"+cfg.Bucket, func(ctx context.Context) (jetstream.ObjectStore, error) {
		return r.JetStream.UpdateObjectStore(ctx, cfg)
	})
}

func (r replicated) CreateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	cfg.Replicas = max(cfg.Replicas, r.n)
	return led(ctx, r, cfg.Name, func(ctx context.Context) (jetstream.Stream, error) { return r.JetStream.CreateStream(ctx, cfg) })
}

func (r replicated) CreateOrUpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	cfg.Replicas = max(cfg.Replicas, r.n)
	return led(ctx, r, cfg.Name, func(ctx context.Context) (jetstream.Stream, error) {
		return r.JetStream.CreateOrUpdateStream(ctx, cfg)
	})
}

func (r replicated) UpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	cfg.Replicas = max(cfg.Replicas, r.n)
	return led(ctx, r, cfg.Name, func(ctx context.Context) (jetstream.Stream, error) { return r.JetStream.UpdateStream(ctx, cfg) })
}

// Stream binds to a stream, retrying an unanswered request like the creations, and waits for
// its leader.
func (r replicated) Stream(ctx context.Context, name string) (jetstream.Stream, error) {
	return led(ctx, r, name, func(ctx context.Context) (jetstream.Stream, error) { return r.JetStream.Stream(ctx, name) })
}

// OwnershipReporter is implemented by a distributor that spreads DSN groups or partitions over
// the replicas: Owners maps each to the replica (node name) that owns it. GET /api/v1/cluster
// reports it when the distributor implements it.
type OwnershipReporter interface {
	Owners() map[string]string
}

// ClusterStatus describes the bus as this replica sees it: its NATS node and routes, the
// JetStream meta leader and the meta group's peers, and ownership when it is reported.
func (s *Server) ClusterStatus() model.ClusterStatus {
	st := model.ClusterStatus{Mode: "single", Replicas: s.cfg.replicas(), Owners: map[string]string{}}
	if o, ok := any(s.distrib).(OwnershipReporter); ok {
		for k, v := range o.Owners() {
			st.Owners[k] = v
		}
	}
	if s.nats == nil {
		st.Mode = "external"
		if s.nc != nil {
			st.Node = model.ClusterNode{ServerName: s.nc.ConnectedServerName(), ClusterName: s.nc.ConnectedClusterName()}
		}
		return st
	}
	remotes := s.routeRemotes()
	st.Node = model.ClusterNode{ServerName: s.nats.Name(), ClusterName: s.nats.ClusterName(), RoutesUp: s.nats.NumRoutes(), Remotes: remotes}
	if !s.cfg.Cluster.Enabled() {
		st.MetaLeader = s.nats.Name()
		st.Peers = []model.ClusterPeer{{Name: s.nats.Name(), Current: true, Leader: true}}
		return st
	}
	st.Mode = "cluster"
	jsz, err := s.nats.Jsz(&server.JSzOptions{})
	if err != nil || jsz.Meta == nil {
		return st
	}
	st.MetaLeader = jsz.Meta.Leader
	self := model.ClusterPeer{Name: s.nats.Name(), Current: s.nats.JetStreamIsCurrent(), Leader: st.MetaLeader == s.nats.Name()}
	st.Peers = append(st.Peers, self)
	for _, p := range jsz.Meta.Replicas {
		if p.Name == self.Name {
			continue
		}
		st.Peers = append(st.Peers, model.ClusterPeer{Name: p.Name, Current: p.Current, Offline: p.Offline,
			ActiveMillis: p.Active.Milliseconds(), Leader: p.Name == st.MetaLeader})
	}
	slices.SortFunc(st.Peers, func(a, b model.ClusterPeer) int { return strings.Compare(a.Name, b.Name) })
	return st
}

// clusterHandler serves GET /api/v1/cluster.
func (s *Server) clusterHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeClusterJSON(w, s.ClusterStatus())
	})
}

func writeClusterJSON(w http.ResponseWriter, st model.ClusterStatus) {
	b, err := json.Marshal(st)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(b, '\n'))
}
