package controlplane

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStopFinishesRequestsAndEndsWatches checks the order of Stop: a watch ends (Stop does not
// wait for it), while a request under way when Stop comes is answered, not cut short with 499
// because the control plane's background work stopped first. The request's body is held back
// until the API has stopped listening, so that Stop is under way while the request runs.
func TestStopFinishesRequestsAndEndsWatches(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv, err := Start(ctx, Config{DataDir: t.TempDir(), Insecure: true, Listen: "127.0.0.1:0"})
	require.NoError(t, err)
	stopped := false
	defer func() {
		if !stopped {
			srv.Stop()
		}
	}()
	require.NoError(t, srv.WaitReady(ctx))
	api := srv.APIURL()

	watch, err := http.Get(api + "/api/v1/watch")
	require.NoError(t, err)
	defer watch.Body.Close()
	require.Equal(t, http.StatusOK, watch.StatusCode)
	watchEnded := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, bufio.NewReader(watch.Body))
		watchEnded <- err
	}()

	body, send := io.Pipe()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, api+"/api/v1/tenants", body)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	answer := make(chan *http.Response, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("create under way at Stop: %v", err)
			answer <- nil
			return
		}
		answer <- resp
	}()
	// The server has the request once the API counts it in flight.
	require.Eventually(t, func() bool { return inFlight(t, api) >= 1 }, 10*time.Second, 10*time.Millisecond)

	done := make(chan struct{})
	go func() {
		srv.Stop()
		close(done)
	}()
	u, err := url.Parse(api)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", u.Host, 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err != nil
	}, 10*time.Second, 10*time.Millisecond, "the API stops listening")
	select {
	case err := <-watchEnded:
		assert.NoError(t, err, "the watch ends cleanly")
	case <-time.After(10 * time.Second):
		t.Fatal("the watch did not end at Stop")
	}

	_, err = send.Write([]byte(`{"apiVersion":"dsnscale/v1","kind":"Tenant","metadata":{"name":"late"},"spec":{}}`))
	require.NoError(t, err)
	require.NoError(t, send.Close())
	resp := <-answer
	require.NotNil(t, resp)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusCreated, resp.StatusCode, "%s", b)
	<-done
	stopped = true
}

// inFlight reads dsnscale_api_in_flight_requests from the API's /metrics.
func inFlight(t *testing.T, api string) float64 {
	resp, err := http.Get(api + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var v float64
		if n, _ := fmt.Sscanf(sc.Text(), "dsnscale_api_in_flight_requests %g", &v); n == 1 {
			return v
		}
	}
	return 0
}

// TestDrainingAnswersCloseTheConnection checks that a draining replica's answers ask the
// client to close the connection, and that a serving one's do not.
func TestDrainingAnswersCloseTheConnection(t *testing.T) {
	s := &Server{}
	h := s.closeWhileDraining(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	answer := func() string {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/tenants", nil))
		return rec.Header().Get("Connection")
	}
	assert.Empty(t, answer())
	s.draining.Store(true)
	assert.Equal(t, "close", answer())
}
