package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/dsnscale/dsnscale/controlplane/wire"
)

// Mode says how DSNs get connections.
type Mode string

// Connection modes.
const (
	// Shared: DSNs of one pool share connections, DSNsPerConn each (density).
	Shared Mode = "shared"
	// PerDSN: every DSN dials its own connection (realistic reconnect storms).
	PerDSN Mode = "per-dsn"
)

// Config configures a NATS bus. It is pure data.
type Config struct {
	// URL is the control plane's NATS URL.
	URL string
	// PoolURLs overrides URL for the DSNs of some pools (a unit's proxy, say).
	PoolURLs map[string]string `json:"poolURLs,omitempty"`
	Mode     Mode
	// DSNsPerConn is how many DSNs share one connection in Shared mode (default 1000).
	DSNsPerConn int
	// ConnectTimeout bounds one dial (default 5s).
	ConnectTimeout time.Duration
	// PingInterval and MaxPingsOut decide how fast a dead connection is noticed (defaults 10s
	// and 3).
	PingInterval time.Duration
	MaxPingsOut  int
	// ReconnectMin and ReconnectMax bound the jittered exponential back-off of shared
	// connections (defaults 250ms and 10s).
	ReconnectMin, ReconnectMax time.Duration
	// RenewEvery is how often a per-DSN bus with Security renews the certificates of its
	// connected DSNs that are due (default a minute), over their own connections.
	RenewEvery time.Duration
	// Name prefixes connection names.
	Name string
	// QueueLen is the buffer of incoming messages shared by all subscriptions (default 65536).
	QueueLen int
	// Security, when set, connects with mutual TLS: shared connections as the fleet gateway,
	// per-DSN connections with each DSN's own identity. Nil connects in plain text (a control
	// plane run insecure).
	Security *Security    `json:"security,omitempty"`
	Logger   *slog.Logger `json:"-"`
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("URL: required"))
	}
	switch c.Mode {
	case Shared, PerDSN, "":
	default:
		errs = append(errs, fmt.Errorf("Mode: %q, want %q or %q", c.Mode, Shared, PerDSN))
	}
	if c.DSNsPerConn < 0 || c.MaxPingsOut < 0 || c.QueueLen < 0 {
		errs = append(errs, errors.New("DSNsPerConn, MaxPingsOut and QueueLen must not be negative"))
	}
	if c.ConnectTimeout < 0 || c.PingInterval < 0 || c.ReconnectMin < 0 || c.ReconnectMax < 0 || c.RenewEvery < 0 {
		errs = append(errs, errors.New("durations must not be negative"))
	}
	if c.Security != nil {
		if err := c.Security.validate(c.Mode); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	return nil
}

func (c *Config) setDefaults() {
	if c.Mode == "" {
		c.Mode = Shared
	}
	if c.DSNsPerConn == 0 {
		c.DSNsPerConn = 1000
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 5 * time.Second
	}
	if c.PingInterval == 0 {
		c.PingInterval = 10 * time.Second
	}
	if c.MaxPingsOut == 0 {
		c.MaxPingsOut = 3
	}
	if c.ReconnectMin == 0 {
		c.ReconnectMin = 250 * time.Millisecond
	}
	if c.ReconnectMax == 0 {
		c.ReconnectMax = 10 * time.Second
	}
	if c.Name == "" {
		c.Name = "dsnscale-sim"
	}
	if c.RenewEvery == 0 {
		c.RenewEvery = time.Minute
	}
	if c.QueueLen == 0 {
		c.QueueLen = 65536
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// conn is one NATS connection and the DSNs attached to it.
type conn struct {
	nc     *nats.Conn
	inbox  string // reply prefix, "<inbox>.": replies come to <inbox>.<dsn>.<token>
	mu     sync.Mutex
	subs   map[int32]*nats.Subscription     // attached DSNs' push subscriptions
	stores map[string]jetstream.ObjectStore // object store handles by bucket; nil: not kept
	js     jetstream.JetStream
	closed bool // closed on purpose
}

type member struct {
	id     string
	pool   string
	labels map[string]string // admitted with, when the DSN admits itself
	slot   int               // shared: index into shared; per-DSN: unused
	c      *conn             // per-DSN: the DSN's own connection, nil when down
	// dial numbers per-DSN connection attempts: an attempt that a newer one (or a
	// Disconnect) has overtaken closes what it dialled instead of installing it.
	dial uint64
}

// NATS is a Bus over NATS.
type NATS struct {
	cfg     Config
	deliver Deliver
	msgs    chan *nats.Msg
	ids     *identities // nil without security

	mu      sync.Mutex
	members []member
	byID    map[string]int32
	shared  []*conn
	pools   map[string][]int // pool -> shared slots
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	// releaseGC gives back the collector target a per-DSN bus holds (see DensityGCPercent).
	releaseGC func()
	renewals  atomic.Int64
}

// NewNATS returns a bus for cfg; Register DSNs, then Start.
func NewNATS(cfg Config) (*NATS, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	ids, err := newIdentities(ctx, cfg.Security, cfg.Mode)
	if err != nil {
		cancel()
		return nil, err
	}
	b := &NATS{cfg: cfg, ids: ids, msgs: make(chan *nats.Msg, cfg.QueueLen), byID: map[string]int32{},
		pools: map[string][]int{}, ctx: ctx, cancel: cancel, releaseGC: func() {}}
	if cfg.Mode == PerDSN {
		b.releaseGC = holdDensityGC()
	}
	return b, nil
}

// Register implements Bus.
func (b *NATS) Register(n int32, id, pool string, labels map[string]string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for int(n) >= len(b.members) {
		b.members = append(b.members, member{slot: -1})
	}
	b.members[n] = member{id: id, pool: pool, labels: labels, slot: -1}
	b.byID[id] = n
}

// Start implements Bus: it creates the shared connections (which keep retrying in the
// background if the server is not there yet) and the dispatcher.
func (b *NATS) Start(d Deliver) error {
	b.deliver = d
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.dispatch()
	}()
	if b.cfg.Mode != Shared {
		if b.ids != nil {
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				b.keepRenewed()
			}()
		}
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	count := map[string]int{}
	for i := range b.members {
		m := &b.members[i]
		if m.id == "" {
			continue
		}
		slots := b.pools[m.pool]
		if count[m.pool]%b.cfg.DSNsPerConn == 0 {
			c, err := b.dialShared(b.urlFor(m.pool), fmt.Sprintf("%s-%s-%d", b.cfg.Name, m.pool, len(slots)))
			if err != nil {
				return err
			}
			b.shared = append(b.shared, c)
			slots = append(slots, len(b.shared)-1)
			b.pools[m.pool] = slots
		}
		count[m.pool]++
		m.slot = slots[len(slots)-1]
	}
	return nil
}

func (b *NATS) urlFor(pool string) string {
	if u, ok := b.cfg.PoolURLs[pool]; ok {
		return u
	}
	return b.cfg.URL
}

func (b *NATS) dialShared(url, name string) (*conn, error) {
	c := &conn{subs: map[int32]*nats.Subscription{}, stores: map[string]jetstream.ObjectStore{}}
	secure, inbox, err := b.ids.sharedOptions()
	if err != nil {
		return nil, err
	}
	if inbox == "" {
		inbox = "_INBOX." + nuid.Next()
	}
	opts := append(b.options(name), secure...)
	opts = append(opts,
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(func(attempts int) time.Duration {
			d := b.cfg.ReconnectMin << min(attempts, 16)
			if d <= 0 || d > b.cfg.ReconnectMax {
				d = b.cfg.ReconnectMax
			}
			return time.Duration(float64(d) * (0.5 + rand.Float64()/2))
		}),
		nats.DisconnectErrHandler(func(*nats.Conn, error) { b.lost(c) }),
	)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("bus: %s: %w", url, err)
	}
	return b.bind(c, nc, inbox+".")
}

func (b *NATS) options(name string) []nats.Option {
	return []nats.Option{
		nats.Name(name),
		nats.Timeout(b.cfg.ConnectTimeout),
		nats.PingInterval(b.cfg.PingInterval),
		nats.MaxPingsOutstanding(b.cfg.MaxPingsOut),
		nats.NoCallbacksAfterClientClose(),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			b.cfg.Logger.Debug("bus connection error", "conn", name, "err", err)
		}),
	}
}

// bind sets up a connection's reply inbox (prefix ends with a dot) and JetStream context.
func (b *NATS) bind(c *conn, nc *nats.Conn, prefix string) (*conn, error) {
	c.nc = nc
	c.inbox = prefix
	if _, err := nc.ChanSubscribe(c.inbox+">", b.msgs); err != nil {
		nc.Close()
		return nil, fmt.Errorf("bus: inbox: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("bus: jetstream: %w", err)
	}
	c.js = js
	return c, nil
}

// lost detaches every DSN of a shared connection that dropped.
func (b *NATS) lost(c *conn) {
	c.mu.Lock()
	var gone []int32
	for n, sub := range c.subs {
		_ = sub.Unsubscribe()
		gone = append(gone, n)
	}
	clear(c.subs)
	c.mu.Unlock()
	for _, n := range gone {
		b.deliver(Delivery{DSN: n, Kind: ConnLost, Err: ErrNotConnected})
	}
}

func (b *NATS) member(n int32) *member {
	b.mu.Lock()
	defer b.mu.Unlock()
	if int(n) >= len(b.members) {
		return nil
	}
	return &b.members[n]
}

// Connect implements Bus.
func (b *NATS) Connect(n int32) {
	m := b.member(n)
	if m == nil || m.id == "" {
		b.deliver(Delivery{DSN: n, Kind: ConnFailed, Err: fmt.Errorf("bus: DSN %d is not registered", n)})
		return
	}
	if b.cfg.Mode == Shared {
		c := b.shared[m.slot]
		if !c.nc.IsConnected() {
			b.deliver(Delivery{DSN: n, Kind: ConnFailed, Err: ErrNotConnected})
			return
		}
		c.mu.Lock()
		if _, ok := c.subs[n]; !ok {
			sub, err := c.nc.ChanSubscribe(wire.PushSubject(m.id), b.msgs)
			if err != nil {
				c.mu.Unlock()
				b.deliver(Delivery{DSN: n, Kind: ConnFailed, Err: err})
				return
			}
			c.subs[n] = sub
		}
		c.mu.Unlock()
		b.deliver(Delivery{DSN: n, Kind: ConnUp})
		return
	}
	attempt := b.detach(n)
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.dialOwn(n, m.id, m.labels, b.urlFor(m.pool), attempt)
	}()
}

// dialOwn dials DSN n's own connection for connection attempt number attempt.
func (b *NATS) dialOwn(n int32, id string, labels map[string]string, url string, attempt uint64) {
	// A DSN fetches a snapshot rarely (on boot and resync), so its own connection keeps no
	// object store handles (stores nil), and asks JetStream in the old request style: a
	// subscription per request instead of a response multiplexer, with its goroutine and
	// buffers, that would live as long as the connection. With ten thousand connections each
	// of those is a few hundred megabytes.
	c := &conn{subs: map[int32]*nats.Subscription{}}
	current := func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.members[n].dial == attempt
	}
	fail := func(err error) {
		if current() { // an overtaken attempt's failure is no news
			b.deliver(Delivery{DSN: n, Kind: ConnFailed, Err: err})
		}
	}
	actx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	secure, err := b.ids.dsnOptions(actx, id, labels)
	cancel()
	if err != nil {
		fail(fmt.Errorf("bus: identity of %s: %w", id, err))
		return
	}
	opts := append(append(b.options(b.cfg.Name+"-"+id), secure...),
		nats.NoReconnect(),
		nats.UseOldRequestStyle(),
		nats.WriteBufferSize(4096),
		nats.ReconnectBufSize(-1),
		nats.ClosedHandler(func(*nats.Conn) {
			c.mu.Lock()
			purposeful := c.closed
			c.mu.Unlock()
			if !purposeful {
				b.mu.Lock()
				if b.members[n].c == c {
					b.members[n].c = nil
				}
				b.mu.Unlock()
				b.deliver(Delivery{DSN: n, Kind: ConnLost, Err: ErrNotConnected})
			}
		}),
	)
	nc, err := nats.Connect(url, opts...)
	if err == nil {
		// A DSN's own connection uses the inbox prefix its identity is confined to
		// (docs/PROTOCOL.md, Identity).
		_, err = b.bind(c, nc, "_INBOX."+id+".")
	}
	if err == nil {
		var sub *nats.Subscription
		if sub, err = nc.ChanSubscribe(wire.PushSubject(id), b.msgs); err == nil {
			c.subs[n] = sub
		} else {
			c.closed = true
			nc.Close()
		}
	}
	if err != nil {
		fail(err)
		return
	}
	b.mu.Lock()
	installed := b.members[n].dial == attempt
	if installed {
		b.members[n].c = c
	}
	b.mu.Unlock()
	if !installed {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		nc.Close()
		return
	}
	b.deliver(Delivery{DSN: n, Kind: ConnUp})
}

// Disconnect implements Bus.
func (b *NATS) Disconnect(n int32) {
	m := b.member(n)
	if m == nil {
		return
	}
	if b.cfg.Mode == Shared {
		if m.slot < 0 {
			return
		}
		c := b.shared[m.slot]
		c.mu.Lock()
		if sub, ok := c.subs[n]; ok {
			_ = sub.Unsubscribe()
			delete(c.subs, n)
		}
		c.mu.Unlock()
		return
	}
	b.detach(n)
}

// detach closes DSN n's own connection, if any, and starts its next connection attempt,
// whose number it returns: in one step, so that two attempts never share a number.
func (b *NATS) detach(n int32) (attempt uint64) {
	b.mu.Lock()
	c := b.members[n].c
	b.members[n].c = nil
	b.members[n].dial++
	attempt = b.members[n].dial
	b.mu.Unlock()
	if c != nil {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		c.nc.Close()
	}
	return attempt
}

// connOf returns the live connection of an attached DSN.
func (b *NATS) connOf(n int32) *conn {
	m := b.member(n)
	if m == nil {
		return nil
	}
	if b.cfg.Mode == Shared {
		if m.slot < 0 {
			return nil
		}
		c := b.shared[m.slot]
		c.mu.Lock()
		_, attached := c.subs[n]
		c.mu.Unlock()
		if !attached {
			return nil
		}
		return c
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.members[n].c
}

// Publish implements Bus.
func (b *NATS) Publish(n int32, subject string, data []byte) error {
	c := b.connOf(n)
	if c == nil || !c.nc.IsConnected() {
		return ErrNotConnected
	}
	return c.nc.Publish(subject, data)
}

// Request implements Bus. The reply comes to the connection's inbox with the DSN and token in
// the subject, so one subscription serves every DSN on the connection.
func (b *NATS) Request(n int32, subject string, data []byte, token uint32) error {
	c := b.connOf(n)
	if c == nil || !c.nc.IsConnected() {
		return ErrNotConnected
	}
	reply := c.inbox + strconv.Itoa(int(n)) + "." + strconv.FormatUint(uint64(token), 10)
	return c.nc.PublishRequest(subject, reply, data)
}

// Fetch implements Bus.
func (b *NATS) Fetch(n int32, bucket, object string, token uint32, timeout time.Duration) {
	c := b.connOf(n)
	if c == nil {
		b.deliver(Delivery{DSN: n, Kind: Fetched, Token: token, Err: ErrNotConnected})
		return
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		ctx, cancel := context.WithTimeout(b.ctx, timeout)
		defer cancel()
		data, err := c.get(ctx, bucket, object)
		b.deliver(Delivery{DSN: n, Kind: Fetched, Token: token, Data: data, Err: err})
	}()
}

func (c *conn) get(ctx context.Context, bucket, object string) ([]byte, error) {
	c.mu.Lock()
	obs := c.stores[bucket]
	c.mu.Unlock()
	if obs == nil {
		var err error
		if obs, err = c.js.ObjectStore(ctx, bucket); err != nil {
			return nil, fmt.Errorf("object store %s: %w", bucket, err)
		}
		c.mu.Lock()
		if c.stores != nil {
			c.stores[bucket] = obs
		}
		c.mu.Unlock()
	}
	data, err := obs.GetBytes(ctx, object)
	if err != nil {
		return nil, fmt.Errorf("object %s/%s: %w", bucket, object, err)
	}
	return data, nil
}

// dispatch routes incoming messages to their DSNs.
func (b *NATS) dispatch() {
	for {
		select {
		case <-b.ctx.Done():
			return
		case msg := <-b.msgs:
			b.route(msg)
		}
	}
}

func (b *NATS) route(msg *nats.Msg) {
	if strings.HasPrefix(msg.Subject, "_INBOX.") {
		// _INBOX.<nuid or DSN id>.<dsn index>.<token>
		parts := strings.Split(msg.Subject, ".")
		if len(parts) != 4 {
			return
		}
		n, err1 := strconv.ParseInt(parts[2], 10, 32)
		tok, err2 := strconv.ParseUint(parts[3], 10, 32)
		if err1 != nil || err2 != nil {
			return
		}
		d := Delivery{DSN: int32(n), Kind: Reply, Token: uint32(tok), Data: msg.Data}
		if len(msg.Data) == 0 && msg.Header.Get("Status") == "503" {
			d.Data, d.Err = nil, ErrNoResponders
		}
		b.deliver(d)
		return
	}
	id, ok := wire.DSNFromSubject(msg.Subject)
	if !ok {
		return
	}
	b.mu.Lock()
	n, ok := b.byID[id]
	b.mu.Unlock()
	if ok {
		b.deliver(Delivery{DSN: n, Kind: Push, Data: msg.Data})
	}
}

// Connected reports how many connections are up (shared mode) or how many DSNs have one.
func (b *NATS) Connected() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, c := range b.shared {
		if c.nc.IsConnected() {
			n++
		}
	}
	for _, m := range b.members {
		if m.c != nil {
			n++
		}
	}
	return n
}

// Close implements Bus.
func (b *NATS) Close() {
	b.mu.Lock()
	var all []*conn
	all = append(all, b.shared...)
	for i := range b.members {
		if c := b.members[i].c; c != nil {
			all = append(all, c)
			b.members[i].c = nil
		}
	}
	b.mu.Unlock()
	for _, c := range all {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		c.nc.Close()
	}
	b.cancel()
	b.wg.Wait()
	b.releaseGC()
}
