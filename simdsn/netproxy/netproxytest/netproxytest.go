// Package netproxytest holds what tests of proxied links share: a server to put behind the
// proxies.
package netproxytest

import (
	"bufio"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

// Echo starts a loopback server that sends every line back on the same connection, and returns
// its address; it stops when the test ends.
func Echo(t testing.TB) string {
	t.Helper()
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
