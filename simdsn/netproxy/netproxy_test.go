package netproxy

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// echo is a loopback echo server.
func echo(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					_, _ = c.Write([]byte(line))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(c net.Conn, r *bufio.Reader, msg string) (string, error) {
	_ = c.SetDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := c.Write([]byte(msg + "\n")); err != nil {
		return "", err
	}
	return r.ReadString('\n')
}

func TestBlackhole(t *testing.T) {
	p, err := Start(echo(t), nil)
	require.NoError(t, err)
	defer p.Close()

	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c.Close()
	r := bufio.NewReader(c)
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
