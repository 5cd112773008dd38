package audit

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/internal/natsserver"
)

func newJS(t testing.TB) jetstream.JetStream {
	t.Helper()
	s, err := natsserver.Start(natsserver.Config{StoreDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(s.Shutdown)
	nc, err := nats.Connect(s.URL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	return js
}

func (s *memSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, b := range s.batches {
		n += len(b)
	}
	return n
}

func (s *memSink) setFail(fail bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = fail
}

// TestJournalStoresBeforeAnswering checks that a record is in the stream when Append returns,
// and that records whose index write failed are indexed later rather than lost.
func TestJournalStoresBeforeAnswering(t *testing.T) {
	js := newJS(t)
	sink := &memSink{fail: true}
	ctx := context.Background()
	j, err := OpenJournal(ctx, JournalConfig{JS: js, Sink: sink, IndexWait: 20 * time.Millisecond})
	require.NoError(t, err)
	defer func() { _ = j.Close(ctx) }()

	h := Middleware(j, MiddlewareOptions{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Answer", "yes")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte("made"))
	}))
	for i := 0; i < 20; i++ {
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, httptest.NewRequest("POST", "/api/v1/tenants", nil))
		require.Equal(t, http.StatusCreated, rr.Code)
		require.Equal(t, "made", rr.Body.String())
		require.Equal(t, "yes", rr.Header().Get("X-Answer"))
		st, err := js.Stream(ctx, DefaultJournalStream)
		require.NoError(t, err)
		info, err := st.Info(ctx)
		require.NoError(t, err)
		require.Equal(t, uint64(i+1), info.State.Msgs, "the record is stored when the call is answered")
	}
	// The search backend was down: the records wait in the stream and are indexed once it is
	// back.
	require.Eventually(t, func() bool { return j.IndexFailures() > 0 }, 10*time.Second, 10*time.Millisecond)
	require.Zero(t, sink.count())
	sink.setFail(false)
	require.Eventually(t, func() bool { return sink.count() >= 20 }, 90*time.Second, 50*time.Millisecond)
	require.Equal(t, Stats{Recorded: 20, Written: 20}, j.Stats())
}

// failingTrail is a durable trail that cannot store anything.
type failingTrail struct{}

func (failingTrail) Append(context.Context, Record) error { return errors.New("stream down") }
func (failingTrail) Durable() bool                        { return true }
func (failingTrail) Stats() Stats                         { return Stats{} }
func (failingTrail) Close(context.Context) error          { return nil }

// TestDurableMiddlewareWithholdsTheAnswer checks that a call whose record cannot be stored is
// answered 503, not with the handler's answer.
func TestDurableMiddlewareWithholdsTheAnswer(t *testing.T) {
	h := Middleware(failingTrail{}, MiddlewareOptions{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Secret", "s")
		_, _ = w.Write([]byte("the answer"))
	}))
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, httptest.NewRequest("GET", "/api/v1/tenants", nil))
	require.Equal(t, http.StatusServiceUnavailable, rr.Code)
	require.NotContains(t, rr.Body.String(), "the answer")
	require.Empty(t, rr.Header().Get("X-Secret"))
	require.Contains(t, rr.Body.String(), "audit trail")
}

// TestJournalGroupsConcurrentAppends checks that concurrent appends are all stored and indexed,
// sharing stream messages.
func TestJournalGroupsConcurrentAppends(t *testing.T) {
	js := newJS(t)
	sink := &memSink{}
	ctx := context.Background()
	j, err := OpenJournal(ctx, JournalConfig{JS: js, Sink: sink, IndexWait: 20 * time.Millisecond})
	require.NoError(t, err)
	defer func() { _ = j.Close(ctx) }()
	const n = 2000
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			errs <- j.Append(ctx, Record{Method: "GET", Path: "/api/v1/tenants", Status: 200, Verdict: VerdictAllowed})
		}()
	}
	for i := 0; i < n; i++ {
		require.NoError(t, <-errs)
	}
	st, err := js.Stream(ctx, DefaultJournalStream)
	require.NoError(t, err)
	info, err := st.Info(ctx)
	require.NoError(t, err)
	require.Less(t, info.State.Msgs, uint64(n), "concurrent records share messages")
	require.Eventually(t, func() bool { return sink.count() == n }, 30*time.Second, 20*time.Millisecond)
	ids := map[string]bool{}
	sink.mu.Lock()
	for _, b := range sink.batches {
		for _, r := range b {
			ids[r.ID] = true
		}
	}
	sink.mu.Unlock()
	require.Len(t, ids, n, "every record once")
	require.Equal(t, Stats{Recorded: n, Written: n}, j.Stats())
}
