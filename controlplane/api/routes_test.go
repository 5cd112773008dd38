package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/model"
)

func TestDSNRoutes(t *testing.T) {
	e := newTestEnv(t)
	for i := range 5 {
		site := "ams"
		if i%2 == 1 {
			site = "fra"
		}
		e.fleet.add(fmt.Sprintf("DSN-%d", i), map[string]string{"site": site}, uint64(i))
	}
	got := e.must(http.StatusOK, "GET", "/api/v1/dsns/DSN-1", nil).object(t)
	assert.Equal(t, model.KindDSN, got.Kind)
	require.NoError(t, model.Validate(got))

	er := e.must(http.StatusNotFound, "GET", "/api/v1/dsns/DSN-9", nil).err(t)
	assert.Equal(t, "DSN DSN-9 not found", er.Message)
	assert.Equal(t, "id", e.must(http.StatusBadRequest, "GET", "/api/v1/dsns/bad.id", nil).err(t).Field)

	var page listBody
	e.must(http.StatusOK, "GET", "/api/v1/dsns?labelSelector=site=ams&limit=2", nil).json(t, &page)
	assert.Equal(t, "DSNList", page.Kind)
	require.Len(t, page.Items, 2)
	assert.Equal(t, "DSN-2", page.Metadata.Continue)
	var page2 listBody
	e.must(http.StatusOK, "GET", "/api/v1/dsns?labelSelector=site=ams&limit=2&continue="+page.Metadata.Continue, nil).json(t, &page2)
	require.Len(t, page2.Items, 1)
	assert.Equal(t, "DSN-4", page2.Items[0].Metadata.Name)
	assert.Empty(t, page2.Metadata.Continue)
	e.must(http.StatusBadRequest, "GET", "/api/v1/dsns?continue=a.b", nil)

	e.must(http.StatusOK, "DELETE", "/api/v1/dsns/DSN-3?dryRun=true", nil)
	assert.Empty(t, e.fleet.gone)
	assert.Equal(t, "DSN-3", e.must(http.StatusOK, "DELETE", "/api/v1/dsns/DSN-3", nil).object(t).Metadata.Name)
	assert.Equal(t, []string{"DSN-3"}, e.fleet.gone)
	e.must(http.StatusNotFound, "DELETE", "/api/v1/dsns/DSN-3", nil)

	var c model.Convergence
	e.must(http.StatusCreated, "POST", "/api/v1/tenants", tenant("one")) // revisions 1 and 2 exist
	e.must(http.StatusCreated, "POST", "/api/v1/tenants", tenant("two"))
	e.must(http.StatusOK, "GET", "/api/v1/convergence?revision=2", nil).json(t, &c)
	assert.Equal(t, model.Convergence{Revision: 2, Total: 4, AtOrPast: 2, Behind: 2, BehindDSNs: []string{"DSN-0", "DSN-1"}}, c)
	e.must(http.StatusCreated, "POST", "/api/v1/tenants", tenant("acme"))
	e.must(http.StatusOK, "GET", "/api/v1/convergence", nil).json(t, &c)
	assert.Equal(t, e.store.Revision(), c.Revision, "default: the current revision")
	assert.Equal(t, "revision", e.must(http.StatusBadRequest, "GET", "/api/v1/convergence?revision=-1", nil).err(t).Field)
	future := e.must(http.StatusBadRequest, "GET", "/api/v1/convergence?revision=999999", nil).err(t)
	assert.Equal(t, "revision", future.Field)
	assert.Contains(t, future.Message, "does not exist yet")
}

func TestNoFleet(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.Fleet = nil })
	for _, path := range []string{"/api/v1/dsns", "/api/v1/dsns/d1", "/api/v1/convergence"} {
		assert.Equal(t, "NotImplemented", e.must(http.StatusNotImplemented, "GET", path, nil).err(t).Reason)
	}
}

func TestRevisionHealthReady(t *testing.T) {
	var ready error
	var mu sync.Mutex
	e := newTestEnv(t, func(c *Config) {
		c.Ready = func() error { mu.Lock(); defer mu.Unlock(); return ready }
	})
	var rb revisionBody
	e.must(http.StatusOK, "GET", "/api/v1/revision", nil).json(t, &rb)
	assert.Equal(t, uint64(0), rb.Revision)
	e.must(http.StatusCreated, "POST", "/api/v1/tenants", tenant("acme"))
	e.must(http.StatusOK, "GET", "/api/v1/revision", nil).json(t, &rb)
	assert.Equal(t, e.store.Revision(), rb.Revision)
	assert.NotZero(t, rb.Revision)

	e.must(http.StatusOK, "GET", "/healthz", nil)
	e.must(http.StatusOK, "GET", "/readyz", nil)
	mu.Lock()
	ready = errors.New("bus down")
	mu.Unlock()
	r := e.must(http.StatusServiceUnavailable, "GET", "/readyz", nil)
	assert.Equal(t, "1", r.header.Get("Retry-After"))
	assert.Contains(t, r.err(t).Message, "bus down")
	e.must(http.StatusOK, "GET", "/healthz", nil)
}

func TestMetricsUseRoutePatterns(t *testing.T) {
	e := newTestEnv(t)
	e.must(http.StatusCreated, "POST", "/api/v1/tenants", tenant("acme"))
	e.must(http.StatusOK, "GET", "/api/v1/tenants/acme", nil)
	e.must(http.StatusNotFound, "GET", "/api/v1/tenants/other", nil)
	e.must(http.StatusNotFound, "GET", "/nowhere/at/all", nil)
	body := string(e.must(http.StatusOK, "GET", "/metrics", nil).body)
	assert.Contains(t, body, `dsnscale_api_requests_total{code="2xx",route="GET /api/v1/tenants/{name}"} 1`)
	assert.Contains(t, body, `dsnscale_api_requests_total{code="4xx",route="GET /api/v1/tenants/{name}"} 1`)
	assert.Contains(t, body, `dsnscale_api_requests_total{code="2xx",route="POST /api/v1/tenants"} 1`)
	assert.Contains(t, body, `dsnscale_api_requests_total{code="4xx",route="unmatched"} 1`)
	assert.Contains(t, body, `dsnscale_api_request_duration_seconds_bucket{code="2xx",route="GET /api/v1/tenants/{name}"`)
	assert.NotContains(t, body, "acme")
	assert.NotContains(t, body, "nowhere")

	// The registry given in Config holds them, and a second API on it is refused.
	mfs, err := e.reg.Gather()
	require.NoError(t, err)
	assert.NotEmpty(t, mfs)
	_, err = New(Config{Store: e.store, Registry: e.reg})
	assert.Error(t, err)
}

func TestInFlightLimit(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.MaxInFlight = 1 })
	e.fleet.add("d1", nil, 1)
	e.fleet.block = make(chan struct{})
	e.fleet.inside = make(chan struct{})
	done := make(chan response)
	go func() {
		resp, err := http.Get(e.url + "/api/v1/dsns/d1")
		if err != nil {
			done <- response{}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- response{status: resp.StatusCode, body: b}
	}()
	<-e.fleet.inside // the one allowed request is in flight

	r := e.must(http.StatusTooManyRequests, "GET", "/api/v1/tenants", nil)
	assert.Equal(t, "1", r.header.Get("Retry-After"))
	assert.Equal(t, "TooManyRequests", r.err(t).Reason)
	// Health, metrics and watches are never refused for load.
	e.must(http.StatusOK, "GET", "/healthz", nil)
	e.must(http.StatusOK, "GET", "/metrics", nil)
	w := e.openWatch("?fromRevision=0", nil)
	w.cancel()

	close(e.fleet.block)
	first := <-done
	assert.Equal(t, http.StatusOK, first.status, "%s", first.body)
	e.fleet.block = nil
	e.must(http.StatusOK, "GET", "/api/v1/tenants", nil)
}

func TestConfigValidate(t *testing.T) {
	e := newTestEnv(t)
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "Store is required"},
		{Config{Store: e.store, MaxBodyBytes: -1}, "MaxBodyBytes"},
		{Config{Store: e.store, MaxInFlight: -1}, "MaxInFlight"},
		{Config{Store: e.store, HeartbeatInterval: -time.Second}, "HeartbeatInterval"},
	} {
		err := tc.cfg.Validate()
		require.ErrorIs(t, err, ErrConfig)
		assert.Contains(t, err.Error(), tc.want)
		_, err = New(tc.cfg)
		assert.ErrorIs(t, err, ErrConfig)
	}
	h, err := New(Config{Store: e.store, Registry: prometheus.NewRegistry()})
	require.NoError(t, err)
	assert.NotNil(t, h)
}

func TestPanicsAreAnswered(t *testing.T) {
	// A Fleet that panics stands for any handler bug: the client gets a JSON 500, not a reset.
	e := newTestEnv(t, func(c *Config) { c.Fleet = panicFleet{newFakeFleet()} })
	r := e.must(http.StatusInternalServerError, "GET", "/api/v1/dsns/d1", nil)
	assert.Equal(t, "InternalError", r.err(t).Reason)
	assert.NotContains(t, string(r.body), "boom")
	e.must(http.StatusOK, "GET", "/healthz", nil)
}

type panicFleet struct{ *fakeFleet }

func (panicFleet) DSN(context.Context, string) (*model.Object, error) { panic("boom") }
