package cpbench

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAckTrackerCountsTheSilentAtTheTimeout checks the headline's rule: each DSN's time runs to
// its ack of the change's revision (not an earlier one's), and a DSN that never acks is counted
// at the timeout rather than left out.
func TestAckTrackerCountsTheSilentAtTheTimeout(t *testing.T) {
	tr := newAckTracker(3)
	tr.onAck(0, 11, time.Now()) // before arm: ignored
	// The change was asked for long enough ago that its timeout has passed: wait returns at once.
	start := time.Now().Add(-time.Hour)
	const timeout = 30 * time.Second
	tr.arm(10, start)
	tr.onAck(0, 11, start.Add(5*time.Millisecond)) // another change's revision, before the call returned
	tr.retarget(12)
	tr.onAck(0, 12, start.Add(20*time.Millisecond))
	tr.onAck(1, 13, start.Add(30*time.Millisecond))
	tr.onAck(1, 14, start.Add(40*time.Millisecond)) // a later ack does not move the first
	lat, left, err := tr.wait(context.Background(), timeout)
	require.NoError(t, err)
	assert.Equal(t, []float64{20, 30, 30000}, lat)
	assert.Equal(t, 1, left)
	assert.Equal(t, 30000.0, quantile(lat, 1), "the silent DSN is the slowest")
}

// TestAckTrackerEndsWhenAllAcked checks that the wait ends with the last ack, not the timeout,
// including when an ack counted early had to be forgotten.
func TestAckTrackerEndsWhenAllAcked(t *testing.T) {
	tr := newAckTracker(2)
	start := time.Now()
	tr.arm(10, start)
	tr.onAck(0, 11, start)
	tr.onAck(1, 11, start)
	tr.retarget(12) // both acks were of another revision: waiting again
	done := make(chan struct{})
	var lat []float64
	var left int
	go func() {
		defer close(done)
		lat, left, _ = tr.wait(context.Background(), time.Hour)
	}()
	tr.onAck(0, 12, start.Add(time.Millisecond))
	tr.onAck(1, 12, start.Add(2*time.Millisecond))
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("the wait did not end with the last ack")
	}
	assert.Zero(t, left)
	assert.Equal(t, []float64{1, 2}, lat)
}
