package faults

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/simdsn/netproxy"
	"github.com/dsnscale/dsnscale/simdsn/netproxy/netproxytest"
)

// proxiedLinks is a network of real proxies in front of an echo server: four fleet units in two
// sites, and the API link.
type proxiedLinks struct {
	links   []Link
	proxies map[string]*netproxy.Proxy
}

func newProxiedLinks(t *testing.T) *proxiedLinks {
	echo := netproxytest.Echo(t)
	n := &proxiedLinks{proxies: map[string]*netproxy.Proxy{}}
	for i := range 4 {
		name := fmt.Sprintf("unit-%d", i)
		px, err := netproxy.Start(echo, nil)
		require.NoError(t, err)
		t.Cleanup(px.Close)
		n.proxies[name] = px
		n.links = append(n.links, Link{Name: name, Labels: map[string]string{"site": fmt.Sprint("s", i%2), "unit": name},
			DSNs: []string{name + "-dsn-0", name + "-dsn-1"}})
	}
	return n
}

func (n *proxiedLinks) Links(path string) []Link {
	if path != PathFleet {
		return nil
	}
	return n.links
}

func (n *proxiedLinks) Proxy(_, link string) (*netproxy.Proxy, error) {
	px, ok := n.proxies[link]
	if !ok {
		return nil, fmt.Errorf("no link %s", link)
	}
	return px, nil
}

// rtt is the shortest of a few round trips through the link (or an error when there is none).
func (n *proxiedLinks) rtt(link string) (time.Duration, error) {
	c, err := net.DialTimeout("tcp", n.proxies[link].Addr(), time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	r := bufio.NewReader(c)
	best := time.Hour
	for range 5 {
		start := time.Now()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("x\n")); err != nil {
			return 0, err
		}
		if _, err := r.ReadString('\n'); err != nil {
			return 0, err
		}
		best = min(best, time.Since(start))
	}
	return best, nil
}

func TestNetLatencyOnSelectedLinks(t *testing.T) {
	n := newProxiedLinks(t)
	spec := Spec{Kind: "net-latency", Target: Target{Labels: map[string]string{"site": "s1"}},
		Params: map[string]string{"latency": "150ms", "direction": "downstream"}}
	f, err := Default.New(spec, Env{Network: n, Seed: 1})
	require.NoError(t, err)
	require.NoError(t, f.Inject(context.Background()))
	assert.Equal(t, []string{"unit-1-dsn-0", "unit-1-dsn-1", "unit-3-dsn-0", "unit-3-dsn-1"}, f.(Targeted).Affected())
	for _, l := range []string{"unit-1", "unit-3"} {
		d, err := n.rtt(l)
		require.NoError(t, err)
		assert.InDelta(t, float64(150*time.Millisecond), float64(d), float64(15*time.Millisecond), "%s: %s", l, d)
	}
	d, err := n.rtt("unit-0")
	require.NoError(t, err)
	assert.Less(t, d, 50*time.Millisecond, "a link outside the selection is untouched")

	require.NoError(t, f.Recover(context.Background()))
	for name, px := range n.proxies {
		assert.Empty(t, px.Toxics(), "%s: nothing left behind", name)
	}
	d, err = n.rtt("unit-1")
	require.NoError(t, err)
	assert.Less(t, d, 50*time.Millisecond)
}

func TestNetPartitionAndRecovery(t *testing.T) {
	n := newProxiedLinks(t)
	f, err := Default.New(Spec{Kind: "net-partition", Target: Target{Count: 2}}, Env{Network: n, Seed: 5})
	require.NoError(t, err)
	require.NoError(t, f.Inject(context.Background()))
	down := 0
	for name, px := range n.proxies {
		if px.Down() {
			down++
			_, err := n.rtt(name)
			assert.Error(t, err, "%s is partitioned", name)
		}
	}
	assert.Equal(t, 2, down)
	require.NoError(t, f.Recover(context.Background()))
	require.NoError(t, f.Recover(context.Background()), "a second recovery does nothing")
	for name, px := range n.proxies {
		assert.False(t, px.Down(), name)
		_, err := n.rtt(name)
		assert.NoError(t, err, "%s is reachable again", name)
	}
}

func TestNetFaultCancelledLeavesNothingAfterRecover(t *testing.T) {
	n := newProxiedLinks(t)
	f, err := Default.New(Spec{Kind: "net-bandwidth", Params: map[string]string{"rate": "10"}}, Env{Network: n})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, f.Inject(ctx), context.Canceled)
	require.NoError(t, f.Recover(context.Background()))
	for name, px := range n.proxies {
		assert.Empty(t, px.Toxics(), name)
	}
}

func TestNetFaultBadSpecs(t *testing.T) {
	for _, c := range []struct {
		spec  Spec
		field string
	}{
		{Spec{Kind: "net-latency", Params: map[string]string{"toxicity": "1.5"}}, "params.toxicity"},
		{Spec{Kind: "net-latency", Params: map[string]string{"toxicity": "-0.1"}}, "params.toxicity"},
		{Spec{Kind: "net-bandwidth", Params: map[string]string{"rate": "0"}}, "params.rate"},
		{Spec{Kind: "net-latency", Params: map[string]string{"latency": "10ms", "jitter": "20ms"}}, "params.jitter"},
		{Spec{Kind: "net-latency", Params: map[string]string{"direction": "sideways"}}, "params.direction"},
		{Spec{Kind: "net-reset", Params: map[string]string{"path": "dns"}}, "params.path"},
		{Spec{Kind: "net-partition", Params: map[string]string{"path": "api"}, Target: Target{Count: 1}}, "target"},
		{Spec{Kind: "net-partition", Target: Target{DSNs: []string{"d1"}}}, "target.dsns"},
		{Spec{Kind: "net-partition", Params: map[string]string{"toxicity": "0.5"}}, "params.toxicity"},
		{Spec{Kind: "net-slicer", Params: map[string]string{"size": "8", "variation": "8"}}, "params.variation"},
		{Spec{Kind: "dsn-hang", Target: Target{Units: []string{"u"}}}, "target.units"},
	} {
		err := Default.Validate(c.spec)
		var se *SpecError
		require.ErrorAs(t, err, &se, "%+v", c.spec)
		assert.Equal(t, c.field, se.Field, "%+v: %v", c.spec, err)
	}
	assert.NoError(t, Default.Validate(Spec{Kind: "net-latency", Params: map[string]string{"toxicity": "30%", "latency": "200ms", "jitter": "50ms"}}))
	_, err := Default.New(Spec{Kind: "net-latency"}, Env{})
	assert.ErrorIs(t, err, ErrUnsupported)
}
