package audit

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/search"
)

// memSink is a sink for testing the Recorder itself.
type memSink struct {
	mu      sync.Mutex
	batches [][]Record
	block   chan struct{} // when set, Write waits on it
	fail    bool
}

func (s *memSink) Write(ctx context.Context, records []Record) error {
	if s.block != nil {
		select {
		case <-s.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return errors.New("backend down")
	}
	s.batches = append(s.batches, append([]Record(nil), records...))
	return nil
}

func (s *memSink) all() []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Record
	for _, b := range s.batches {
		out = append(out, b...)
	}
	return out
}

func TestRecorderBatchesAndFlushesOnClose(t *testing.T) {
	sink := &memSink{}
	r, err := NewRecorder(RecorderConfig{Sink: sink, BatchSize: 10, FlushEvery: time.Hour})
	require.NoError(t, err)
	for i := range 25 {
		r.Record(Record{Path: "/p", Status: 200 + i})
	}
	require.Eventually(t, func() bool { return len(sink.all()) == 20 }, 5*time.Second, time.Millisecond, "full batches are written at once")
	require.NoError(t, r.Close(context.Background()))
	got := sink.all()
	require.Len(t, got, 25, "the rest is written on close")
	ids := map[string]bool{}
	for i, rec := range got {
		require.Equal(t, 200+i, rec.Status, "in order")
		require.NotEmpty(t, rec.ID)
		ids[rec.ID] = true
	}
	require.Len(t, ids, 25, "ids are unique")
	r.Record(Record{})
	require.Equal(t, Stats{Recorded: 25, Written: 25, Dropped: 1}, r.Stats())
}

func TestRecorderNeverBlocksAndCountsDrops(t *testing.T) {
	sink := &memSink{block: make(chan struct{})}
	r, err := NewRecorder(RecorderConfig{Sink: sink, Buffer: 10, BatchSize: 5, FlushEvery: time.Millisecond})
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 1000 {
			r.Record(Record{Path: "/p"})
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Record blocked on a stuck sink")
	}
	st := r.Stats()
	require.Greater(t, st.Dropped, uint64(900))
	require.EqualValues(t, 1000, st.Recorded+st.Dropped)
	close(sink.block)
	require.NoError(t, r.Close(context.Background()))
	require.EqualValues(t, st.Recorded, r.Stats().Written)
}

func TestRecorderCountsFailedWrites(t *testing.T) {
	sink := &memSink{fail: true}
	r, err := NewRecorder(RecorderConfig{Sink: sink})
	require.NoError(t, err)
	r.Record(Record{})
	r.Record(Record{})
	require.NoError(t, r.Close(context.Background()))
	require.Equal(t, Stats{Recorded: 2, Failed: 2}, r.Stats())

	_, err = NewRecorder(RecorderConfig{})
	require.ErrorIs(t, err, ErrConfig)
}

// The queue holds records cut to size: a request's long path costs it no more than any other.
func TestRecorderQueuesBoundedRecords(t *testing.T) {
	sink := &memSink{}
	r, err := NewRecorder(RecorderConfig{Sink: sink, FlushEvery: time.Hour})
	require.NoError(t, err)
	r.Record(Record{Path: "/" + strings.Repeat("p", 64<<10), Reason: "bad \xff byte", Status: 404})
	require.NoError(t, r.Close(context.Background()))
	got := sink.all()
	require.Len(t, got, 1)
	require.LessOrEqual(t, len(got[0].Path), search.MaxFieldValue)
	require.True(t, utf8.ValidString(got[0].Reason))
}

// A queue smaller than a batch is written when it fills, not only when its time comes.
func TestRecorderWritesAFullQueueAtOnce(t *testing.T) {
	sink := &memSink{}
	r, err := NewRecorder(RecorderConfig{Sink: sink, Buffer: 10, FlushEvery: time.Hour})
	require.NoError(t, err)
	for range 10 {
		r.Record(Record{Path: "/p"})
	}
	require.Eventually(t, func() bool { return len(sink.all()) == 10 }, 5*time.Second, time.Millisecond)
	require.NoError(t, r.Close(context.Background()))
}
