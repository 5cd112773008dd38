package netproxy

import (
	"bufio"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/simdsn/netproxy/netproxytest"
)

// startProxy starts a proxy in front of an echo server, closed when the test ends.
func startProxy(t *testing.T) *Proxy {
	t.Helper()
	p, err := Start(netproxytest.Echo(t), nil)
	require.NoError(t, err)
	t.Cleanup(p.Close)
	return p
}

// dial connects through p, closed when the test ends.
func dial(t *testing.T, p *Proxy) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

func roundTrip(c net.Conn, r *bufio.Reader, msg string) (string, error) {
	_ = c.SetDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := c.Write([]byte(msg + "\n")); err != nil {
		return "", err
	}
	return r.ReadString('\n')
}

func TestBlackhole(t *testing.T) {
	p := startProxy(t)
	c, r := dial(t, p)
	got, err := roundTrip(c, r, "one")
	require.NoError(t, err)
	assert.Equal(t, "one\n", got)

	p.SetBlackhole(true)
	_, err = roundTrip(c, r, "two")
	assert.Error(t, err, "nothing comes back through a blackhole")

	c2, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err, "new connections are accepted")
	defer c2.Close()
	_, err = roundTrip(c2, bufio.NewReader(c2), "three")
	assert.Error(t, err)

	p.SetBlackhole(false)
	// Connections held through the blackhole are closed; new ones work.
	_ = c.SetDeadline(time.Now().Add(time.Second))
	_, err = r.ReadString('\n')
	assert.Error(t, err)
	c3, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c3.Close()
	got, err = roundTrip(c3, bufio.NewReader(c3), "four")
	require.NoError(t, err)
	assert.Equal(t, "four\n", got)
}

// minRTT is the shortest round trip of n small messages on c: the figure least disturbed by a
// busy machine's scheduling, which only ever adds time.
func minRTT(t *testing.T, c net.Conn, r *bufio.Reader, n int) time.Duration {
	t.Helper()
	rtts := make([]time.Duration, n)
	for i := range rtts {
		start := time.Now()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, err := c.Write([]byte("ping\n"))
		require.NoError(t, err)
		_, err = r.ReadString('\n')
		require.NoError(t, err)
		rtts[i] = time.Since(start)
	}
	slices.Sort(rtts)
	return rtts[0]
}

func TestLatencyThroughTheProxy(t *testing.T) {
	p := startProxy(t)
	c, r := dial(t, p)
	base := minRTT(t, c, r, 5)

	const latency = 200 * time.Millisecond
	require.NoError(t, p.Add(Toxic{Name: "lat", Type: Latency, Stream: Downstream, Toxicity: 1,
		Attributes: map[string]int64{"latency": latency.Milliseconds()}}))
	got := minRTT(t, c, r, 9) - base
	assert.InDelta(t, float64(latency), float64(got), float64(latency)/10, "added latency %s, want %s within 10%%", got, latency)

	require.NoError(t, p.Remove("lat"))
	assert.Empty(t, p.Toxics())
	assert.Less(t, minRTT(t, c, r, 5), latency/2, "latency gone once the toxic is removed")
}

func TestToxicityZeroSparesConnections(t *testing.T) {
	p := startProxy(t)
	require.NoError(t, p.Add(Toxic{Name: "lat", Type: Latency, Stream: Downstream, Toxicity: 0,
		Attributes: map[string]int64{"latency": 500}}))
	c, r := dial(t, p)
	assert.Less(t, minRTT(t, c, r, 3), 250*time.Millisecond)
}

func TestPartitionAndRecovery(t *testing.T) {
	p := startProxy(t)
	c, r := dial(t, p)
	_, err := roundTrip(c, r, "one")
	require.NoError(t, err)

	require.NoError(t, p.SetDown(true))
	assert.True(t, p.Down())
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	_, err = r.ReadString('\n')
	assert.Error(t, err, "connections are closed when the link goes down")
	_, err = net.DialTimeout("tcp", p.Addr(), time.Second)
	assert.Error(t, err, "new connections are refused while down")

	require.NoError(t, p.SetDown(false))
	c2, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err, "the link is up again on the same address")
	defer c2.Close()
	got, err := roundTrip(c2, bufio.NewReader(c2), "two")
	require.NoError(t, err)
	assert.Equal(t, "two\n", got)
}

func TestBadToxics(t *testing.T) {
	p := startProxy(t)
	for _, tx := range []Toxic{
		{Name: "a", Type: Latency, Stream: Downstream, Toxicity: 1.5},
		{Name: "b", Type: Bandwidth, Stream: Downstream, Toxicity: 1, Attributes: map[string]int64{"rate": 0}},
		{Name: "c", Type: "netem", Stream: Downstream, Toxicity: 1},
		{Name: "d", Type: Latency, Stream: "sideways", Toxicity: 1},
	} {
		assert.Error(t, p.Add(tx), tx.Name)
	}
	assert.Empty(t, p.Toxics())
	require.NoError(t, p.Add(Toxic{Name: "x", Type: Latency, Stream: Upstream, Toxicity: 1}))
	assert.Error(t, p.Add(Toxic{Name: "x", Type: Latency, Stream: Upstream, Toxicity: 1}), "names are unique")
}

func TestCloseLeavesNothing(t *testing.T) {
	p, err := Start(netproxytest.Echo(t), nil)
	require.NoError(t, err)
	require.NoError(t, p.Add(Toxic{Name: "lat", Type: Latency, Stream: Downstream, Toxicity: 1, Attributes: map[string]int64{"latency": 50}}))
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c.Close()
	p.Close()
	assert.Empty(t, p.Toxics())
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	_, err = bufio.NewReader(c).ReadString('\n')
	assert.Error(t, err, "connections closed")
	_, err = net.DialTimeout("tcp", p.Addr(), time.Second)
	assert.Error(t, err, "the listener is gone")
}
