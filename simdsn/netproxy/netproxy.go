// Package netproxy is a TCP proxy on loopback that can blackhole its traffic: the way a
// simulated unit is cut off from the control plane without touching any network but the
// harness's own.
package netproxy

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Proxy forwards connections from a loopback listener to a target address.
type Proxy struct {
	ln     net.Listener
	target string
	log    *slog.Logger

	mu        sync.Mutex
	blackhole bool
	conns     map[*pair]bool
	closed    bool
	wg        sync.WaitGroup
}

type pair struct {
	mu             sync.Mutex
	client, server net.Conn
	held           bool // accepted or kept during a blackhole: closed when it ends
}

// Start listens on 127.0.0.1 (a free port) and forwards to target.
func Start(target string, log *slog.Logger) (*Proxy, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, log: log, conns: map[*pair]bool{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Blackholed reports whether traffic is being dropped.
func (p *Proxy) Blackholed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.blackhole
}

// SetBlackhole starts or ends a blackhole. While it lasts, bytes in either direction are read
// and dropped and new connections are accepted but never answered, like a partitioned network.
// When it ends, the connections it held are closed (their streams lost data) and new ones are
// forwarded again.
func (p *Proxy) SetBlackhole(on bool) {
	p.mu.Lock()
	p.blackhole = on
	var stale []*pair
	for c := range p.conns {
		if on {
			c.held = true
		} else if c.held {
			stale = append(stale, c)
		}
	}
	p.mu.Unlock()
	for _, c := range stale {
		c.close()
	}
}

func (c *pair) close() {
	c.mu.Lock()
	srv := c.server
	c.mu.Unlock()
	_ = c.client.Close()
	if srv != nil {
		_ = srv.Close()
	}
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		cl, err := p.ln.Accept()
		if err != nil {
			return
		}
		c := &pair{client: cl}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			_ = cl.Close()
			return
		}
		c.held = p.blackhole
		p.conns[c] = true
		p.mu.Unlock()
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *Proxy) serve(c *pair) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
		c.close()
	}()
	if c.held {
		// Accepted during a blackhole: swallow whatever comes until it is closed.
		_, _ = io.Copy(io.Discard, c.client)
		return
	}
	srv, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		p.log.Debug("proxy dial", "target", p.target, "err", err)
		return
	}
	c.mu.Lock()
	c.server = srv
	c.mu.Unlock()
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return
	}
	done := make(chan struct{}, 2)
	go func() { p.pipe(srv, c.client); done <- struct{}{} }()
	p.pipe(c.client, srv)
	c.close()
	<-done
}

// pipe copies src to dst, dropping bytes while the proxy is blackholed.
func (p *Proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.Blackholed() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				p.log.Debug("proxy read", "err", err)
			}
			_ = dst.Close()
			return
		}
	}
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	conns := make([]*pair, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	_ = p.ln.Close()
	for _, c := range conns {
		c.close()
	}
	p.wg.Wait()
}
