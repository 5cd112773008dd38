// Package netproxy is a TCP proxy on loopback whose traffic can be impaired: latency, a
// bandwidth limit, sliced writes, resets, a blackhole or the link going down. It embeds the
// Toxiproxy library (no separate server): a simulated unit, or the load generator, reaches the
// control plane through one, so that faults impair the harness's own links and no other
// network.
package netproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"sync"
	"sync/atomic"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
)

// Toxic types, as Toxiproxy names them.
const (
	Latency   = "latency"    // attributes: latency, jitter (ms)
	Bandwidth = "bandwidth"  // attributes: rate (KB/s)
	Slicer    = "slicer"     // attributes: average_size, size_variation (bytes), delay (µs)
	ResetPeer = "reset_peer" // attributes: timeout (ms before the reset)
	Timeout   = "timeout"    // attributes: timeout (ms; 0 holds the connection, data dropped)
	LimitData = "limit_data" // attributes: bytes
)

// Streams a toxic acts on.
const (
	Upstream   = "upstream"   // client to target
	Downstream = "downstream" // target to client
)

// Toxic is one impairment of a proxy's traffic in one direction.
type Toxic struct {
	// Name identifies the toxic on its proxy; it must be unique there.
	Name   string
	Type   string
	Stream string
	// Toxicity is the share of connections the toxic applies to, in [0, 1].
	Toxicity float64
	// Attributes are the type's parameters (see the type constants).
	Attributes map[string]int64
}

// Validate checks the toxic on its own.
func (t Toxic) Validate() error {
	switch {
	case t.Name == "":
		return errors.New("netproxy: toxic without a name")
	case t.Stream != Upstream && t.Stream != Downstream:
		return fmt.Errorf("netproxy: toxic %s: stream %q, want %s or %s", t.Name, t.Stream, Upstream, Downstream)
	case !(t.Toxicity >= 0 && t.Toxicity <= 1) || math.IsNaN(t.Toxicity):
		return fmt.Errorf("netproxy: toxic %s: toxicity %g is not in [0, 1]", t.Name, t.Toxicity)
	}
	switch t.Type {
	case Latency, Bandwidth, Slicer, ResetPeer, Timeout, LimitData:
	default:
		return fmt.Errorf("netproxy: toxic %s: unknown type %q", t.Name, t.Type)
	}
	for k, v := range t.Attributes {
		if v < 0 {
			return fmt.Errorf("netproxy: toxic %s: %s is negative", t.Name, k)
		}
	}
	if t.Type == Bandwidth && t.Attributes["rate"] <= 0 {
		return fmt.Errorf("netproxy: toxic %s: rate must be above 0 KB/s", t.Name)
	}
	return nil
}

// server is the one Toxiproxy server of the process: proxies need one for their logger and
// metrics, but it never listens.
var server = sync.OnceValue(func() *toxiproxy.ApiServer {
	// Toxics log through zerolog's global logger, at trace level for every interrupted pipe:
	// nothing in this program uses zerolog otherwise, so it is silenced as a whole.
	zerolog.SetGlobalLevel(zerolog.Disabled)
	return toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
})

var seq atomic.Int64

// Proxy forwards connections from a loopback listener to a target address.
type Proxy struct {
	px  *toxiproxy.Proxy
	log *slog.Logger

	mu        sync.Mutex
	addr      string
	toxics    map[string]Toxic
	blackhole bool
	down      bool
	closed    bool
}

// Start listens on 127.0.0.1 (a free port) and forwards to target.
func Start(target string, log *slog.Logger) (*Proxy, error) { return StartOn("127.0.0.1", target, log) }

// StartOn listens on host (a free port) and forwards to target.
func StartOn(host, target string, log *slog.Logger) (*Proxy, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	name := fmt.Sprintf("netproxy-%d", seq.Add(1))
	px := toxiproxy.NewProxy(server(), name, net.JoinHostPort(host, "0"), target)
	if err := px.Start(); err != nil {
		return nil, fmt.Errorf("netproxy: listen: %w", err)
	}
	return &Proxy{px: px, log: log, addr: px.Listen, toxics: map[string]Toxic{}}, nil
}

// Addr is the proxy's host:port; it stays the same while the proxy is down.
func (p *Proxy) Addr() string { return p.addr }

// Add puts a toxic in place on the proxy's connections, present and future.
func (p *Proxy) Add(t Toxic) error {
	if err := t.Validate(); err != nil {
		return err
	}
	body, err := json.Marshal(map[string]any{"name": t.Name, "type": t.Type, "stream": t.Stream,
		"toxicity": t.Toxicity, "attributes": t.Attributes})
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("netproxy: proxy closed")
	}
	if _, ok := p.toxics[t.Name]; ok {
		return fmt.Errorf("netproxy: toxic %s is already in place", t.Name)
	}
	if _, err := p.px.Toxics.AddToxicJson(bytes.NewReader(body)); err != nil {
		return fmt.Errorf("netproxy: add toxic %s: %w", t.Name, err)
	}
	p.toxics[t.Name] = t
	p.log.Debug("toxic added", "proxy", p.addr, "toxic", t.Name, "type", t.Type)
	return nil
}

// Remove takes a toxic away; removing one that is not there does nothing.
func (p *Proxy) Remove(name string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.remove(name)
}

func (p *Proxy) remove(name string) error {
	if _, ok := p.toxics[name]; !ok {
		return nil
	}
	delete(p.toxics, name)
	if err := p.px.Toxics.RemoveToxic(context.Background(), name); err != nil {
		return fmt.Errorf("netproxy: remove toxic %s: %w", name, err)
	}
	return nil
}

// Toxics lists the names of the toxics in place.
func (p *Proxy) Toxics() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.toxics))
	for n := range p.toxics {
		out = append(out, n)
	}
	return out
}

// SetDown takes the link down (its connections closed, new ones refused, both ways) or brings
// it up again on the same address.
func (p *Proxy) SetDown(down bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.down == down {
		return nil
	}
	p.down = down
	if down {
		p.px.Stop()
		return nil
	}
	p.px.Listen = p.addr
	if err := p.px.Start(); err != nil {
		return fmt.Errorf("netproxy: up again on %s: %w", p.addr, err)
	}
	return nil
}

// Down reports whether the link is down.
func (p *Proxy) Down() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.down
}

const blackholeToxic = "netproxy-blackhole"

// SetBlackhole starts or ends a blackhole. While it lasts, bytes in either direction are
// dropped and new connections are accepted but never answered, like a partitioned network.
// When it ends, the connections it held are closed (their streams lost data) and new ones are
// forwarded again.
func (p *Proxy) SetBlackhole(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.blackhole == on {
		return
	}
	p.blackhole = on
	for _, s := range []string{Upstream, Downstream} {
		name := blackholeToxic + "-" + s
		if on {
			body := fmt.Sprintf(`{"name":%q,"type":"timeout","stream":%q,"toxicity":1,"attributes":{"timeout":0}}`, name, s)
			if _, err := p.px.Toxics.AddToxicJson(bytes.NewReader([]byte(body))); err != nil {
				p.log.Warn("blackhole", "proxy", p.addr, "err", err)
				continue
			}
			p.toxics[name] = Toxic{Name: name, Type: Timeout, Stream: s, Toxicity: 1}
		} else if err := p.remove(name); err != nil {
			p.log.Warn("blackhole end", "proxy", p.addr, "err", err)
		}
	}
	if !on && !p.down {
		// Streams that lost bytes are no use: close every connection, as a real partition's
		// end finds them broken.
		p.px.Stop()
		p.px.Listen = p.addr
		if err := p.px.Start(); err != nil {
			p.log.Warn("blackhole end: up again", "proxy", p.addr, "err", err)
		}
	}
}

// Blackholed reports whether traffic is being dropped.
func (p *Proxy) Blackholed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.blackhole
}

// Close removes every toxic, stops the proxy and closes every connection.
func (p *Proxy) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	p.px.Toxics.ResetToxics(context.Background())
	p.toxics = map[string]Toxic{}
	p.px.Stop()
}
