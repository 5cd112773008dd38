package cpbench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/client"
	"github.com/dsnscale/dsnscale/controlplane/model"
)

// Propagation: each of propagationCommits policy changes is made through the API and timed from
// just before the call to each DSN's ack of its revision; a DSN that has not acked it within
// propagationTimeout counts at the timeout.
const (
	propagationCommits = 3
	propagationTimeout = 30 * time.Second
)

// ackTracker records when each session first acked the revision it waits for.
type ackTracker struct {
	mu     sync.Mutex
	target uint64
	start  time.Time
	acked  []bool
	rev    []uint64 // the revision each session's counted ack was of
	at     []time.Time
	left   int
	all    chan struct{} // closed when left reaches 0
	closed bool
}

func newAckTracker(n int) *ackTracker {
	return &ackTracker{acked: make([]bool, n), rev: make([]uint64, n), at: make([]time.Time, n)}
}

// arm starts waiting for acks past revision prev, the one every session holds before a change
// asked for at start. The change's own revision is known only when the API call returns;
// retarget then sets it.
func (t *ackTracker) arm(prev uint64, start time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.target, t.start = prev+1, start
	clear(t.acked)
	t.left = len(t.acked)
	t.all, t.closed = make(chan struct{}), false
}

// retarget waits for acks of rev or later, and forgets the acks counted so far of revisions
// before it (another change's, had there been one).
func (t *ackTracker) retarget(rev uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.target = rev
	for i := range t.acked {
		if t.acked[i] && t.rev[i] < rev {
			t.acked[i] = false
			t.left++
		}
	}
	if t.left > 0 && t.closed {
		t.all, t.closed = make(chan struct{}), false
	}
}

// onAck records session i's ack of rev at at.
func (t *ackTracker) onAck(i int, rev uint64, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.all == nil || t.acked[i] || rev < t.target {
		return
	}
	t.acked[i], t.rev[i], t.at[i] = true, rev, at
	t.left--
	if t.left == 0 {
		close(t.all)
		t.closed = true
	}
}

// wait waits until every session acked or timeout passed since the change was asked for, and
// returns each session's latency in milliseconds, a session that never acked at the timeout,
// and how many never acked.
func (t *ackTracker) wait(ctx context.Context, timeout time.Duration) ([]float64, int, error) {
	t.mu.Lock()
	all, start := t.all, t.start
	t.mu.Unlock()
	timer := time.NewTimer(time.Until(start.Add(timeout)))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	case <-all:
	case <-timer.C:
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return latencies(t.acked, t.at, start, timeout), t.left, nil
}

// latencies is each session's time from start to its ack, or timeout for one that did not ack:
// a session that never acked is the slowest, not absent.
func latencies(acked []bool, at []time.Time, start time.Time, timeout time.Duration) []float64 {
	out := make([]float64, len(acked))
	for i := range acked {
		d := timeout
		if acked[i] && at[i].Sub(start) < timeout {
			d = at[i].Sub(start)
		}
		out[i] = float64(d.Microseconds()) / 1000
	}
	return out
}

// propagate makes propagationCommits changes to policy through api, each timed to every
// session's ack, and returns the figures with suffix appended to their names.
func propagate(ctx context.Context, api *client.Client, policy *model.Object, t *ackTracker, suffix string, logf func(string, ...any)) (map[string]float64, error) {
	var all []float64
	unacked := 0
	for c := range propagationCommits {
		policy.Spec = mustJSON(model.PolicySpec{
			Selector: model.Selector{MatchLabels: map[string]string{"role": "edge"}},
			Rules: []model.Rule{{Action: model.ActionAllow, From: model.Peer{Network: "web"}, To: model.Peer{Labels: map[string]string{"tier": "db"}},
				Protocol: "tcp", Ports: []string{fmt.Sprint(5432 + c)}}},
		})
		prev, err := api.Revision(ctx)
		if err != nil {
			return nil, err
		}
		t.arm(prev, time.Now())
		updated, err := api.Update(ctx, policy)
		if err != nil {
			return nil, fmt.Errorf("policy change %d: %w", c+1, err)
		}
		rev := parseRV(updated)
		t.retarget(rev)
		policy = updated
		lat, left, err := t.wait(ctx, propagationTimeout)
		if err != nil {
			return nil, err
		}
		logf("cp propagation%s: change %d (revision %d): p50 %.1f ms, p99 %.1f ms, max %.1f ms, %d of %d DSNs never acked within %s",
			suffix, c+1, rev, quantile(lat, 0.5), quantile(lat, 0.99), quantile(lat, 1), left, len(lat), propagationTimeout)
		all = append(all, lat...)
		unacked += left
	}
	return map[string]float64{
		"cp_propagation_p50_ms" + suffix:       quantile(all, 0.50),
		"cp_propagation_p99_ms" + suffix:       quantile(all, 0.99),
		"cp_propagation_max_ms" + suffix:       quantile(all, 1),
		"cp_propagation_unacked_dsns" + suffix: float64(unacked),
	}, nil
}
