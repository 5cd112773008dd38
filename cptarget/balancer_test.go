package cptarget

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestBalancerKeepsADrainingReplicasConnections checks that a replica whose health check
// answers "not ready" keeps the connections it has (it finishes their requests while it drains)
// and that one that stops answering has them closed.
func TestBalancerKeepsADrainingReplicasConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	var health atomic.Pointer[error]
	setHealth := func(err error) { health.Store(&err) }
	setHealth(nil)
	b, err := newBalancer([]string{ln.Addr().String()}, func(context.Context, string) error {
		return *health.Load()
	})
	require.NoError(t, err)
	defer b.Close()

	c, err := net.Dial("tcp", b.Addr())
	require.NoError(t, err)
	defer c.Close()
	r := bufio.NewReader(c)
	echo := func(line string) error {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte(line + "\n")); err != nil {
			return err
		}
		got, err := r.ReadString('\n')
		if err == nil && got != line+"\n" {
			err = errors.New("echoed " + got)
		}
		return err
	}
	require.NoError(t, echo("up"))

	setHealth(errDraining)
	require.Eventually(t, func() bool { return b.down[0].Load() }, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, echo("draining"), "a draining replica keeps its connections")

	setHealth(nil)
	require.Eventually(t, func() bool { return !b.down[0].Load() }, 5*time.Second, 10*time.Millisecond)
	setHealth(context.DeadlineExceeded)
	require.Eventually(t, func() bool { return b.down[0].Load() }, 5*time.Second, 10*time.Millisecond)
	require.Error(t, echo("frozen"), "the connections to a replica that stopped answering are closed")
}
