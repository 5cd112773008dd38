package distrib

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/wire"
)

// stoppedClock is a clock that moves only when told.
type stoppedClock struct{ now time.Time }

func (c *stoppedClock) Now() time.Time                       { return c.now }
func (c *stoppedClock) NewTicker(time.Duration) Ticker       { panic("not used") }
func (c *stoppedClock) After(time.Duration) <-chan time.Time { panic("not used") }

// TestQueuedHellosThatNobodyWaitsForAreDropped checks the Hello queue under a burst: of two
// Hellos of one DSN queued together only the newer is handled, and one that waited longer
// than HelloMaxWait is dropped, since its DSN has stopped waiting and will ask again.
func TestQueuedHellosThatNobodyWaitsForAreDropped(t *testing.T) {
	m, err := newMetrics(prometheus.NewRegistry())
	require.NoError(t, err)
	clk := &stoppedClock{now: time.Unix(1000, 0)}
	d := &Distributor{cfg: Config{HelloMaxWait: 4 * time.Second}, clock: clk, m: m, log: slog.New(slog.DiscardHandler),
		hellos: make(chan queuedHello, 16), latest: map[string]uint64{}}
	// Without a reply subject a handled Hello is counted "invalid": what is not counted so
	// was never handled.
	hello := func(dsn string) *nats.Msg { return &nats.Msg{Subject: wire.HelloSubject(dsn)} }
	d.enqueueHello(hello("a")) // superseded by the next
	d.enqueueHello(hello("a"))
	d.enqueueHello(hello("b"))
	clk.now = clk.now.Add(5 * time.Second)
	d.enqueueHello(hello("c")) // fresh; a and b have waited 5 s

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.helloWorker(ctx) }()
	count := func(outcome string) float64 { return testutil.ToFloat64(m.hellos.WithLabelValues(outcome)) }
	require.Eventually(t, func() bool { return len(d.hellos) == 0 && count("invalid") == 1 }, 10*time.Second, time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	assert.Equal(t, 1.0, count("superseded"), "a's first Hello")
	assert.Equal(t, 2.0, count("expired"), "a's second and b's, after 5 s")
	assert.Equal(t, 1.0, count("invalid"), "only c's was handled")
	assert.Empty(t, d.latest, "nothing is left queued")
}
