package controlplane

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/client"
	"github.com/dsnscale/dsnscale/controlplane/wire"
)

// TestTelemetryAndEventsReachTheirQueries publishes what a DSN reports on the bus of a secure
// control plane and finds it again through the API's metrics query and event search.
func TestTelemetryAndEventsReachTheirQueries(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv, err := Start(ctx, Config{DataDir: t.TempDir(), BcryptCost: 4})
	require.NoError(t, err)
	defer srv.Stop()
	require.NoError(t, srv.WaitReady(ctx))

	busTLS, err := srv.BusTLS("test-publisher")
	require.NoError(t, err)
	nc, err := nats.Connect(srv.NATSURL(), nats.Secure(busTLS))
	require.NoError(t, err)
	defer nc.Close()
	now := time.Now()
	for i := 0; i < 3; i++ {
		b, _ := json.Marshal(wire.TelemetryBatch{DSN: "dsn-7", TimeUnixNano: now.Add(time.Duration(i-3) * time.Second).UnixNano(),
			Samples: []wire.Sample{{Name: "dsn_cpu_percent", Value: float64(10 + i)}}})
		require.NoError(t, nc.Publish(wire.TelemetrySubject("dsn-7"), b))
	}
	ev, _ := json.Marshal(wire.Event{DSN: "dsn-7", TimeUnixNano: now.UnixNano(), Type: "config-applied", Severity: "info", Message: "applied revision 12"})
	require.NoError(t, nc.Publish(wire.EventSubject("dsn-7"), ev))
	require.NoError(t, nc.Flush())

	user, password, err := srv.AdminCredentials()
	require.NoError(t, err)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: srv.ClientTLS()}}
	token, err := client.New(srv.APIURL(), hc, client.WithCredentials(user, password)).Token(ctx)
	require.NoError(t, err)
	get := func(path string, q url.Values, out any) int {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.APIURL()+path+"?"+q.Encode(), nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusOK && out != nil {
			require.NoError(t, json.Unmarshal(body, out), "%s", body)
		}
		return resp.StatusCode
	}
	window := url.Values{"from": {now.Add(-time.Minute).UTC().Format(time.RFC3339Nano)}, "to": {now.Add(time.Minute).UTC().Format(time.RFC3339Nano)}}

	require.Eventually(t, func() bool {
		var m struct {
			Data struct {
				Result []struct {
					Metric map[string]string `json:"metric"`
					Values [][2]any          `json:"values"`
				} `json:"result"`
			} `json:"data"`
		}
		q := url.Values{"match": {`dsn_cpu_percent{dsn="dsn-7"}`}, "from": window["from"], "to": window["to"]}
		return get("/api/v1/metrics/query", q, &m) == http.StatusOK && len(m.Data.Result) == 1 && len(m.Data.Result[0].Values) == 3
	}, 20*time.Second, 100*time.Millisecond, "the three samples are queryable")

	require.Eventually(t, func() bool {
		var e struct {
			Total int `json:"total"`
		}
		q := url.Values{"q": {"applied"}, "dsn": {"dsn-7"}, "from": window["from"], "to": window["to"]}
		return get("/api/v1/events", q, &e) == http.StatusOK && e.Total == 1
	}, 20*time.Second, 100*time.Millisecond, "the event is searchable")

	require.Equal(t, http.StatusBadRequest, get("/api/v1/metrics/query", url.Values{"match": {"{"}}, nil))
	token = "not-a-token"
	require.Equal(t, http.StatusUnauthorized, get("/api/v1/events", url.Values{}, nil), "the query routes sit behind authentication")
}
