package main

import (
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestProfilesOnLoopbackOnly(t *testing.T) {
	p, err := startProfiles("127.0.0.1:0")
	require.NoError(t, err)
	defer p.Close()
	for _, name := range []string{"mutex", "block", "goroutine"} {
		resp, err := http.Get(p.URL() + name + "?debug=1")
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", name, b)
	}
	for _, addr := range []string{"0.0.0.0:0", ":0", "10.0.0.1:0", "example.com:0", "127.0.0.1"} {
		_, err := startProfiles(addr)
		require.Error(t, err, addr)
	}
}
