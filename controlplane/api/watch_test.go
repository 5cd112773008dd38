package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stream is an open watch: its events arrive on ch until the stream ends.
type stream struct {
	ch     chan sseEvent
	cancel context.CancelFunc
}

func (e *testEnv) openWatch(query string, header http.Header) *stream {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", e.url+"/api/v1/watch"+query, nil)
	require.NoError(e.t, err)
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	require.Equal(e.t, http.StatusOK, resp.StatusCode)
	require.Equal(e.t, "text/event-stream", resp.Header.Get("Content-Type"))
	s := &stream{ch: make(chan sseEvent, 256), cancel: cancel}
	go func() {
		defer close(s.ch)
		defer resp.Body.Close()
		rd := &sseReader{r: bufio.NewReader(resp.Body)}
		for {
			ev, err := rd.next()
			if err != nil {
				return
			}
			s.ch <- ev
		}
	}()
	e.t.Cleanup(cancel)
	return s
}

// nextEvent returns the next event that is not a comment.
func (s *stream) nextEvent(t *testing.T) sseEvent {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-s.ch:
			require.True(t, ok, "stream ended")
			if ev.event != "" || ev.data != "" {
				return ev
			}
		case <-timeout:
			t.Fatal("no event within 10s")
		}
	}
}

func (s *stream) decode(t *testing.T) watchEvent {
	t.Helper()
	ev := s.nextEvent(t)
	var we watchEvent
	require.NoError(t, json.Unmarshal([]byte(ev.data), &we), "data %q", ev.data)
	assert.Equal(t, fmt.Sprint(we.Revision), ev.id)
	assert.Equal(t, we.Type, ev.event)
	return we
}

func TestWatchDeliversInOrder(t *testing.T) {
	e := newTestEnv(t)
	e.must(http.StatusCreated, "POST", "/api/v1/tenants", tenant("acme"))
	from := e.store.Revision()
	e.must(http.StatusCreated, "POST", "/api/v1/tenants/acme/networks", network("acme", "web", "10.0.0.0/24", 1, nil))
	e.must(http.StatusOK, "PUT", "/api/v1/tenants/acme/networks/web", network("acme", "web", "10.0.0.0/24", 2, nil))
	e.must(http.StatusOK, "DELETE", "/api/v1/tenants/acme/networks/web", nil)

	w := e.openWatch(fmt.Sprintf("?fromRevision=%d", from), nil)
	want := []struct {
		typ  string
		vlan string
	}{{"ADDED", `"vlan":1`}, {"MODIFIED", `"vlan":2`}, {"DELETED", `"vlan":2`}}
	for i, wnt := range want {
		ev := w.decode(t)
		assert.Equal(t, from+uint64(i)+1, ev.Revision)
		assert.Equal(t, wnt.typ, ev.Type)
		assert.Equal(t, "web", ev.Object.Metadata.Name)
		assert.Contains(t, string(ev.Object.Spec), wnt.vlan)
	}
	// Then live changes.
	e.must(http.StatusCreated, "POST", "/api/v1/tenants", tenant("beta"))
	ev := w.decode(t)
	assert.Equal(t, "ADDED", ev.Type)
	assert.Equal(t, "beta", ev.Object.Metadata.Name)
	assert.Equal(t, e.store.Revision(), ev.Revision)

	// Last-Event-ID resumes after the event it names, whatever fromRevision says.
	r := e.openWatch("?fromRevision=0", http.Header{"Last-Event-Id": {fmt.Sprint(from + 2)}})
	ev = r.decode(t)
	assert.Equal(t, from+3, ev.Revision)
	assert.Equal(t, "DELETED", ev.Type)

	// Without fromRevision, a watch starts now.
	now := e.openWatch("", nil)
	e.must(http.StatusCreated, "POST", "/api/v1/tenants", tenant("gamma"))
	assert.Equal(t, "gamma", now.decode(t).Object.Metadata.Name)
}

func TestWatchFilters(t *testing.T) {
	e := newTestEnv(t)
	byKind := e.openWatch("?fromRevision=0&kind=Network", nil)
	byTenant := e.openWatch("?fromRevision=0&tenant=beta", nil)
	e.must(http.StatusOK, "POST", "/api/v1/transactions", txBody(
		[2]string{"create", tenant("acme")},
		[2]string{"create", tenant("beta")},
		[2]string{"create", network("acme", "a1", "10.0.0.0/24", 1, nil)},
		[2]string{"create", network("beta", "b1", "10.0.0.0/24", 1, nil)},
	))
	assert.Equal(t, "a1", byKind.decode(t).Object.Metadata.Name)
	assert.Equal(t, "b1", byKind.decode(t).Object.Metadata.Name)
	assert.Equal(t, "Tenant", string(byTenant.decode(t).Object.Kind))
	assert.Equal(t, "b1", byTenant.decode(t).Object.Metadata.Name)
}

func TestWatchHeartbeatAndEnd(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.HeartbeatInterval = 20 * time.Millisecond })
	w := e.openWatch("", nil)
	deadline := time.After(10 * time.Second)
	for beats := 0; beats < 2; {
		select {
		case ev := <-w.ch:
			if ev.comment == "heartbeat" {
				beats++
			}
		case <-deadline:
			t.Fatal("no heartbeats")
		}
	}
	// When the store goes away the stream ends with an ERROR event saying why.
	require.NoError(t, e.store.Close())
	ev := w.nextEvent(t)
	assert.Equal(t, "ERROR", ev.event)
	var eb errorBody
	require.NoError(t, json.Unmarshal([]byte(ev.data), &eb))
	assert.Equal(t, http.StatusServiceUnavailable, eb.Code)
	assert.Contains(t, eb.Message, "Last-Event-ID")
}

func TestWatchErrors(t *testing.T) {
	e := newTestEnv(t)
	for i := range 4 {
		e.must(http.StatusCreated, "POST", "/api/v1/tenants", tenant(fmt.Sprintf("t%d", i)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, e.store.Compact(ctx, 3))

	r := e.must(http.StatusGone, "GET", "/api/v1/watch?fromRevision=1", nil)
	er := r.err(t)
	assert.Equal(t, "Gone", er.Reason)
	assert.Equal(t, "fromRevision", er.Field)
	assert.Contains(t, er.Message, "compacted")
	r = e.doWith("GET", "/api/v1/watch", nil, "", http.Header{"Last-Event-Id": {"2"}})
	assert.Equal(t, http.StatusGone, r.status)

	w := e.openWatch("?fromRevision=3", nil)
	assert.Equal(t, uint64(4), w.decode(t).Revision)

	for _, tc := range []struct{ query, field string }{
		{"?fromRevision=x", "fromRevision"},
		{"?kind=DSN", "kind"},
		{"?tenant=A", "tenant"},
		{"?from=3", "from"},
	} {
		r := e.must(http.StatusBadRequest, "GET", "/api/v1/watch"+tc.query, nil)
		assert.Equal(t, tc.field, r.err(t).Field, tc.query)
	}
	r = e.doWith("GET", "/api/v1/watch", nil, "", http.Header{"Last-Event-Id": {"abc"}})
	assert.Equal(t, http.StatusBadRequest, r.status)
	assert.Equal(t, "Last-Event-ID", r.err(t).Field)

	// A revision the store has not reached is an error, not a stream that waits forever.
	r = e.must(http.StatusBadRequest, "GET", "/api/v1/watch?fromRevision=999999", nil)
	assert.Equal(t, "fromRevision", r.err(t).Field)
	assert.Contains(t, r.err(t).Message, "does not exist yet: the current revision is 4")
	r = e.doWith("GET", "/api/v1/watch", nil, "", http.Header{"Last-Event-Id": {"5"}})
	assert.Equal(t, http.StatusBadRequest, r.status)
	assert.Equal(t, "Last-Event-ID", r.err(t).Field)
	w = e.openWatch("?fromRevision=4", nil) // the current revision itself is fine
	_ = w
}
