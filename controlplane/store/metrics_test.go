package store

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/model"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	e := newEnv(t, Config{Registerer: reg})
	s := e.st
	x, _ := mustCommit(t, s, create(network("a", "x", 1)))
	_, _, err := s.Commit(ctxT(t), []Op{create(network("a", "y", 1))}, nil, true)
	require.NoError(t, err)
	stale := cloneObject(x[0])
	stale.Metadata.ResourceVersion = "7"
	_, _, err = s.Commit(ctxT(t), []Op{update(stale)}, nil, false)
	require.ErrorIs(t, err, ErrConflict)
	_, _, err = s.Commit(ctxT(t), []Op{create(network("a", "x", 1))}, nil, false)
	require.ErrorIs(t, err, ErrAlreadyExists)
	_, _, err = s.Commit(ctxT(t), []Op{create(network("a", "z", 1))}, func(View) error { return errors.New("no") }, false)
	require.Error(t, err)
	w, err := s.Watch(ctxT(t), 0)
	require.NoError(t, err)
	collect(t, w, 1)

	assert.Equal(t, 1.0, testutil.ToFloat64(s.metrics.commits.WithLabelValues("committed")))
	assert.Equal(t, 1.0, testutil.ToFloat64(s.metrics.commits.WithLabelValues("dry_run")))
	assert.Equal(t, 1.0, testutil.ToFloat64(s.metrics.commits.WithLabelValues("conflict")))
	assert.Equal(t, 2.0, testutil.ToFloat64(s.metrics.commits.WithLabelValues("rejected")))
	assert.Equal(t, 1.0, testutil.ToFloat64(s.metrics.conflicts))
	assert.Equal(t, 1.0, testutil.ToFloat64(s.metrics.watchers))
	assert.Equal(t, 1.0, testutil.ToFloat64(s.metrics.eventLog))
	n, err := testutil.GatherAndCount(reg, "dsnscale_store_commit_duration_seconds")
	require.NoError(t, err)
	assert.Equal(t, 1, n)

	// A second store on the same registry is refused while the first one is open, and
	// accepted once it closed.
	_, err = Open(ctxT(t), e.js, Config{Registerer: reg})
	require.ErrorContains(t, err, "register metrics")
	require.NoError(t, s.Close())
	s2, err := Open(ctxT(t), e.js, Config{Registerer: reg})
	require.NoError(t, err)
	require.NoError(t, s2.Close())
}

// TestConcurrentWriters runs optimistic read-modify-write loops from several goroutines on one
// object: every increment lands exactly once and a watcher sees every revision in order.
func TestConcurrentWriters(t *testing.T) {
	e := newEnv(t, Config{})
	s := e.st
	counter := obj(model.KindTenant, "", "counter", map[string]string{"n": "0"}, nil)
	_, start := mustCommit(t, s, create(counter))
	w, err := s.Watch(ctxT(t), start)
	require.NoError(t, err)

	const writers, each = 4, 15
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for done := 0; done < each; {
				cur, err := s.Get(context.Background(), counter.Key())
				if !assert.NoError(t, err) {
					return
				}
				n := 0
				for _, c := range cur.Metadata.Labels["n"] {
					n = n*10 + int(c-'0')
				}
				cur.Metadata.Labels["n"] = itoa(n + 1)
				_, _, err = s.Commit(context.Background(), []Op{update(cur)}, nil, false)
				if errors.Is(err, ErrConflict) {
					continue // another writer got there first: read again
				}
				if !assert.NoError(t, err) {
					return
				}
				done++
			}
		}()
	}
	wg.Wait()
	got, err := s.Get(ctxT(t), counter.Key())
	require.NoError(t, err)
	assert.Equal(t, itoa(writers*each), got.Metadata.Labels["n"])
	assert.Equal(t, start+writers*each, s.Revision())
	evs := collect(t, w, writers*each)
	for i, ev := range evs {
		assert.Equal(t, start+Revision(i)+1, ev.Revision)
		assert.Equal(t, itoa(i+1), ev.Object.Metadata.Labels["n"])
	}
}

func itoa(n int) string { return rv(Revision(n)) }
