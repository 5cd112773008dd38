package sched

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTimersAndOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		got := map[int32][]uint32{}
		times := map[uint32]time.Duration{}
		start := time.Now()
		s := New(Config{Workers: 3}, func(_ int, ev Event) {
			mu.Lock()
			defer mu.Unlock()
			got[ev.Key] = append(got[ev.Key], ev.Seq)
			if ev.Kind == 1 {
				times[ev.Seq] = time.Since(start)
			}
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { s.Run(ctx); close(done) }()
		s.After(3*time.Second, Event{Key: 1, Kind: 1, Seq: 30})
		s.After(1*time.Second, Event{Key: 1, Kind: 1, Seq: 10})
		s.After(2*time.Second, Event{Key: 2, Kind: 1, Seq: 20})
		for i := range uint32(100) {
			s.Post(Event{Key: 5, Seq: i})
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		assert.Equal(t, []uint32{10, 30}, got[1])
		assert.Equal(t, []uint32{20}, got[2])
		require.Len(t, got[5], 100)
		for i, v := range got[5] {
			assert.Equal(t, uint32(i), v, "events of one key run in order")
		}
		assert.Equal(t, time.Second, times[10])
		assert.Equal(t, 2*time.Second, times[20])
		assert.Equal(t, 3*time.Second, times[30])
	})
}
