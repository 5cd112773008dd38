package cptarget

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// balancer is a TCP load balancer in front of the replicas of a control plane, as a deployment
// puts one before its API: each connection goes to the next replica in turn; one that refuses
// it or cannot be reached is skipped for the next. TLS passes through, so the replicas'
// certificates must name the balancer's address (127.0.0.1). A health check marks replicas
// that fail it: new connections avoid them while any other is healthy. The connections open to
// a replica that stops answering (a frozen one still accepts connections) are closed, so that
// clients that keep connections alive find a healthy replica on their next; those open to one
// that answers "not ready" (draining before it stops) are left to it: it finishes their
// requests and closes them itself.
type balancer struct {
	ln       net.Listener
	backends []string
	check    func(ctx context.Context, addr string) error // ErrDraining: it answers, not ready
	next     atomic.Uint64
	down     []atomic.Bool

	mu    sync.Mutex
	conns map[net.Conn]int // to the backend's index, or -1 for a client's

	closed bool
	done   chan struct{}
	wg     sync.WaitGroup
}

// errDraining is what a health check returns for a replica that answers but is not ready:
// it gets no new connections, and keeps those it has.
var errDraining = errors.New("answers, not ready")

// balancerDialTimeout bounds one dial of a replica before the next is tried.
const balancerDialTimeout = time.Second

// balancerCheckEvery is how often each replica's health is checked.
const balancerCheckEvery = 500 * time.Millisecond

// newBalancer listens on 127.0.0.1 and balances over backends (host:port). check, if set, is
// the health check run against each backend.
func newBalancer(backends []string, check func(ctx context.Context, addr string) error) (*balancer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &balancer{ln: ln, backends: backends, check: check, down: make([]atomic.Bool, len(backends)),
		conns: map[net.Conn]int{}, done: make(chan struct{})}
	b.wg.Add(1)
	go b.serve()
	if check != nil {
		for i := range backends {
			b.wg.Add(1)
			go b.watch(i)
		}
	}
	return b, nil
}

// Addr is the host:port clients connect to.
func (b *balancer) Addr() string { return b.ln.Addr().String() }

func (b *balancer) serve() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		if !b.track(c, -1, true) {
			_ = c.Close()
			return
		}
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			defer b.track(c, -1, false)
			b.handle(c)
		}()
	}
}

// track adds or removes a connection (to backend, or -1 for a client's); it refuses to add one
// once the balancer is closed.
func (b *balancer) track(c net.Conn, backend int, add bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !add {
		delete(b.conns, c)
		return true
	}
	if b.closed {
		return false
	}
	b.conns[c] = backend
	return true
}

// order is the replicas a new connection tries, in turn from the next one: the healthy first,
// then the others (a health check may be behind).
func (b *balancer) order() []int {
	n := len(b.backends)
	start := int(b.next.Add(1) % uint64(n))
	var healthy, rest []int
	for k := range n {
		i := (start + k) % n
		if b.down[i].Load() {
			rest = append(rest, i)
		} else {
			healthy = append(healthy, i)
		}
	}
	return append(healthy, rest...)
}

func (b *balancer) handle(c net.Conn) {
	defer c.Close()
	for _, i := range b.order() {
		up, err := net.DialTimeout("tcp", b.backends[i], balancerDialTimeout)
		if err != nil {
			continue
		}
		if !b.track(up, i, true) {
			_ = up.Close()
			return
		}
		defer b.track(up, i, false)
		pipe(c, up)
		return
	}
}

// pipe copies both ways until either side ends, then closes both.
func pipe(a, b net.Conn) {
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go cp(a, b)
	go cp(b, a)
	<-done
	// One direction ended; the other may still carry the rest of an answer. A reset or a
	// dead peer ends it too once both are closed.
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	_ = a.Close()
	_ = b.Close()
}

// watch checks backend i until the balancer closes.
func (b *balancer) watch(i int) {
	defer b.wg.Done()
	t := time.NewTicker(balancerCheckEvery)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), balancerCheckEvery*2)
		err := b.check(ctx, b.backends[i])
		cancel()
		if was := b.down[i].Swap(err != nil); err != nil && !was && !errors.Is(err, errDraining) {
			b.shutSessions(i)
		}
		select {
		case <-b.done:
			return
		case <-t.C:
		}
	}
}

// shutSessions closes the connections open to backend i, which was just marked down; their
// clients' ends close with them.
func (b *balancer) shutSessions(i int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for c, to := range b.conns {
		if to == i {
			_ = c.Close()
		}
	}
}

// Close stops accepting, ends every connection and waits for the balancer's goroutines.
func (b *balancer) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return errors.New("balancer already closed")
	}
	b.closed = true
	close(b.done)
	err := b.ln.Close()
	for c := range b.conns {
		_ = c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
	return err
}
