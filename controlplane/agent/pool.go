package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// PoolConfig configures a Pool: many agents sharing a few NATS connections.
type PoolConfig struct {
	// URL is the NATS server (required).
	URL string
	// Connections is how many connections the agents share (default 1); agents are spread
	// over them round-robin.
	Connections int
	// Agents configures each agent; Conn and JS are filled in by the pool.
	Agents []Config
	// Options are extra NATS connection options.
	Options []nats.Option
	// Logger; nil discards logs.
	Logger *slog.Logger
}

// Validate checks the configuration (agents' Conn excepted, which the pool provides).
func (c PoolConfig) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("URL: required"))
	}
	if c.Connections < 0 {
		errs = append(errs, fmt.Errorf("Connections: %d must not be negative", c.Connections))
	}
	seen := make(map[string]bool, len(c.Agents))
	for i, a := range c.Agents {
		if a.Conn != nil {
			errs = append(errs, fmt.Errorf("Agents[%d].Conn: set by the pool, must be nil", i))
		}
		a.Conn = &nats.Conn{}
		if err := a.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("Agents[%d]: %w", i, err))
		}
		if seen[a.ID] {
			errs = append(errs, fmt.Errorf("Agents[%d].ID: %q is used twice", i, a.ID))
		}
		seen[a.ID] = true
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	return nil
}

// Pool runs many agents over a few shared connections.
type Pool struct {
	conns  []*nats.Conn
	agents []*Agent
}

// NewPool connects and builds the agents; Run starts them.
func NewPool(cfg PoolConfig) (*Pool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := max(cfg.Connections, 1)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Pool{}
	byConn := make([][]*Agent, n)
	for i := 0; i < n; i++ {
		i := i
		opts := append([]nats.Option{
			nats.Name(fmt.Sprintf("dsn-agent-pool-%d", i)),
			nats.MaxReconnects(-1),
			nats.ReconnectWait(250 * time.Millisecond),
			nats.ReconnectJitter(250*time.Millisecond, time.Second),
			nats.ReconnectHandler(func(*nats.Conn) {
				for _, a := range byConn[i] {
					a.Reconnected()
				}
			}),
			nats.ErrorHandler(func(_ *nats.Conn, s *nats.Subscription, err error) {
				cfg.Logger.Debug("agent pool connection error", "conn", i, "err", err)
			}),
		}, cfg.Options...)
		nc, err := nats.Connect(cfg.URL, opts...)
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("agent pool: connecting to %s: %w", cfg.URL, err)
		}
		p.conns = append(p.conns, nc)
	}
	stores := make([]*storeCache, n)
	for i, nc := range p.conns {
		js, err := jetstream.New(nc)
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("agent pool: %w", err)
		}
		stores[i] = &storeCache{js: js, nc: nc}
	}
	for i, ac := range cfg.Agents {
		c := i % n
		ac.Conn, ac.JS = p.conns[c], stores[c].js
		if ac.Logger == nil {
			ac.Logger = cfg.Logger
		}
		a, err := New(ac)
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("agent pool: Agents[%d]: %w", i, err)
		}
		a.stores = stores[c]
		byConn[c] = append(byConn[c], a)
		p.agents = append(p.agents, a)
	}
	return p, nil
}

// Agents returns the pool's agents in the order of PoolConfig.Agents.
func (p *Pool) Agents() []*Agent { return p.agents }

// Conns returns the pool's connections.
func (p *Pool) Conns() []*nats.Conn { return p.conns }

// Run runs every agent until ctx ends, and returns the errors of agents that stopped early.
func (p *Pool) Run(ctx context.Context) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, a := range p.agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.Run(ctx); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("agent %s: %w", a.ID(), err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Close closes the pool's connections.
func (p *Pool) Close() {
	for _, nc := range p.conns {
		nc.Close()
	}
}
