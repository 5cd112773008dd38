package queue

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Clock is the queue's view of time: when to flush a partial batch, when to retry, when it last
// warned. Tests inject one they control.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Option sets one of the queue's collaborators.
type Option func(*settings)

type settings struct {
	clock Clock
	log   *slog.Logger
	reg   prometheus.Registerer
}

// WithClock makes the queue use c instead of the wall clock.
func WithClock(c Clock) Option { return func(s *settings) { s.clock = c } }

// WithLogger makes the queue log to l instead of slog.Default().
func WithLogger(l *slog.Logger) Option { return func(s *settings) { s.log = l } }

// WithRegisterer registers the queue's metrics with r (see the package documentation of metrics).
func WithRegisterer(r prometheus.Registerer) Option { return func(s *settings) { s.reg = r } }
