package distrib_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/dsnscale/dsnscale/controlplane/distrib"
	"github.com/dsnscale/dsnscale/controlplane/wire"
)

// rawDSN speaks the southbound protocol by hand, so that a test decides exactly when it says
// Hello, acks and heartbeats.
type rawDSN struct {
	t       require.TestingT
	nc      *nats.Conn
	id      string
	labels  map[string]string
	session string
	pushes  chan *nats.Msg
	probes  int
}

func (c *cp) rawDSN(t require.TestingT, id string) *rawDSN {
	nc, err := nats.Connect(c.url())
	require.NoError(t, err)
	r := &rawDSN{t: t, nc: nc, id: id, labels: web, pushes: make(chan *nats.Msg, 64)}
	_, err = nc.ChanSubscribe(wire.PushSubject(id), r.pushes)
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	return r
}

func (r *rawDSN) close() { r.nc.Close() }

// hello says Hello with the given applied revision and returns the answer.
func (r *rawDSN) hello(applied uint64) wire.Admission {
	b, _ := json.Marshal(&wire.Hello{Protocol: wire.Version, DSN: r.id, Labels: r.labels, AppliedRevision: applied})
	msg, err := r.nc.Request(wire.HelloSubject(r.id), b, 10*time.Second)
	require.NoError(r.t, err)
	var adm wire.Admission
	require.NoError(r.t, json.Unmarshal(msg.Data, &adm))
	if adm.Status == wire.Admitted {
		r.session = adm.SessionID
	}
	return adm
}

func (r *rawDSN) send(subject string, v any) {
	b, _ := json.Marshal(v)
	require.NoError(r.t, r.nc.Publish(subject, b))
	require.NoError(r.t, r.nc.Flush())
}

func (r *rawDSN) ack(rev uint64) {
	r.send(wire.AckSubject(r.id), &wire.Ack{DSN: r.id, SessionID: r.session, Revision: rev})
}

func (r *rawDSN) heartbeat(applied uint64) {
	r.send(wire.HeartbeatSubject(r.id), &wire.Heartbeat{DSN: r.id, SessionID: r.session, AppliedRevision: applied,
		State: wire.StateServing, SentUnixNano: 1})
}

// received returns the pushes that reached the DSN before everything the control plane decided
// until now: a heartbeat from an unknown DSN on the same connection is answered with a rehello
// push queued behind them, and the connection delivers in order.
func (r *rawDSN) received() []*wire.Push {
	r.probes++
	probe := fmt.Sprintf("%s-probe-%d", r.id, r.probes)
	got := make(chan *nats.Msg, 1)
	sub, err := r.nc.ChanSubscribe(wire.PushSubject(probe), got)
	require.NoError(r.t, err)
	defer func() { _ = sub.Unsubscribe() }()
	require.NoError(r.t, r.nc.Flush())
	r.send(wire.HeartbeatSubject(probe), &wire.Heartbeat{DSN: probe, SessionID: "none", State: wire.StateServing, SentUnixNano: 1})
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		require.FailNow(r.t, "no rehello for the probe")
	}
	var out []*wire.Push
	for {
		select {
		case m := <-r.pushes:
			var p wire.Push
			require.NoError(r.t, json.Unmarshal(m.Data, &p))
			out = append(out, &p)
		default:
			return out
		}
	}
}

// TestCurrentDSNIsNeverPushedTo drives one DSN at a time through random changes, acks,
// heartbeats and passing time (the straggler ladder), and checks every push it receives:
// none brings a revision the control plane knows it has, none comes while the control plane
// knows it is current, and a revision is sent again only by a corrective action.
func TestCurrentDSNIsNeverPushedTo(t *testing.T) {
	clk := newFakeClock()
	const deadline = 10 * time.Second
	c := startCP(t, func(cfg *distrib.Config) {
		cfg.Clock = clk
		cfg.StragglerDeadline = deadline
		cfg.OfflineAfter = 1000 * time.Hour
	})
	c.commit(tenantOp("t1"), create(networkObj("t1", "a", "10.0.0.0/24")))
	n, changes := 0, 0
	rapid.Check(t, func(rt *rapid.T) {
		n++
		d := c.rawDSN(rt, fmt.Sprintf("p%d", n))
		defer d.close()
		cur := c.st.Revision()
		c.caughtUp(t, cur)
		if adm := d.hello(cur); !adm.UpToDate {
			// A DSN the control plane never saw gets the snapshot; once registered, the same
			// Hello finds it current. What the first session was sent is not checked.
			require.True(rt, d.hello(cur).UpToDate)
			d.received()
		}
		applied, known, received := cur, cur, cur // what the DSN has, what the control plane heard, the highest sent
		ladder, resynced := false, false          // corrective actions may have started; a snapshot replaced the config
		for range rapid.IntRange(1, 15).Draw(rt, "steps") {
			switch action := rapid.SampledFrom([]string{"change", "ack", "heartbeat", "stale-heartbeat", "wait"}).Draw(rt, "action"); action {
			case "change":
				changes++
				cur = c.commit(create(networkObj("t1", fmt.Sprintf("n%d", changes), "10.1.0.0/24")))
				c.caughtUp(t, cur)
			case "ack", "heartbeat", "stale-heartbeat":
				rev := applied
				if action == "stale-heartbeat" {
					rev = rapid.Uint64Range(0, applied).Draw(rt, "stale")
				}
				want := max(known, rev)
				if action == "ack" {
					d.ack(rev)
					if resynced {
						want, resynced = rev, false // the ack after a snapshot may go back
					}
				} else {
					d.heartbeat(rev)
				}
				require.Eventually(rt, func() bool { return c.status(d.id).AppliedRevision == want }, 5*time.Second, time.Millisecond)
				known = want
			case "wait":
				step := rapid.SampledFrom([]time.Duration{time.Second, deadline / 2, deadline + time.Second}).Draw(rt, "wait")
				clk.advance(step)
				clk.advance(0) // the maintenance of the first tick is done once the second is taken
				ladder = ladder || known < cur
			}
			for _, p := range d.received() {
				switch p.Type {
				case wire.PushQuarantine:
					require.True(rt, ladder, "a quarantine outside the straggler ladder")
					return // no more pushes to check
				case wire.PushResync:
					require.True(rt, ladder, "a resync outside the straggler ladder: %+v", p)
					applied, resynced = p.Snapshot.Revision, true
					continue
				}
				require.Greater(rt, p.To, known, "a push of what the control plane knows the DSN has: %+v", p)
				if p.To <= received {
					require.True(rt, ladder, "revision %d sent again outside the straggler ladder: %+v", p.To, p)
				}
				require.LessOrEqual(rt, p.From, applied, "a gap: %+v after %d", p, applied)
				applied, received = max(applied, p.To), max(received, p.To)
			}
			if known == cur {
				ladder = false // progress ends the ladder
			}
		}
	})
}

// register admits d for the first time (with the group's snapshot) and brings it current.
func (r *rawDSN) register(c *cp) {
	cur := c.st.Revision()
	c.caughtUp(c.t, cur)
	adm := r.hello(cur)
	require.Equal(r.t, wire.Admitted, adm.Status, "admission %+v", adm)
	r.ack(adm.Revision)
	require.Eventually(r.t, func() bool { return c.status(r.id).AppliedRevision == adm.Revision }, 5*time.Second, time.Millisecond)
	r.received()
}

func TestHelloEndsTheSessionItLeft(t *testing.T) {
	c := startCP(t, func(cfg *distrib.Config) {
		cfg.MaxConcurrentSyncs = 1
		cfg.StragglerDeadline = time.Hour
		cfg.OfflineAfter = 1000 * time.Hour
	})
	r1 := c.commit(tenantOp("t1"), create(networkObj("t1", "a", "10.0.0.0/24")), create(policyObj("t1", "p", nil, "a", "a")))
	x := c.rawDSN(t, "x")
	defer x.close()
	x.register(c)
	// y takes the only sync slot and keeps it.
	y := c.rawDSN(t, "y")
	defer y.close()
	admY := y.hello(0)
	require.Equal(t, wire.Admitted, admY.Status)

	r2 := c.commit(create(networkObj("t1", "b", "10.0.1.0/24")))
	c.caughtUp(t, r2)
	got := x.received()
	require.Len(t, got, 1)
	require.Equal(t, r2, got[0].To)
	x.ack(r2)

	// x restarts with an older cache; its Hello needs a sync slot and is turned away for now.
	require.Equal(t, wire.Retry, x.hello(r1).Status)
	r3 := c.commit(create(networkObj("t1", "c", "10.0.2.0/24")))
	c.caughtUp(t, r3)
	require.Empty(t, x.received(), "nothing goes to the session x left by saying Hello")

	y.ack(admY.Revision) // y is done syncing: its slot is free
	require.Eventually(t, func() bool { return x.hello(r1).Status == wire.Admitted }, 10*time.Second, 10*time.Millisecond)
	r4 := c.commit(create(networkObj("t1", "d", "10.0.3.0/24")))
	c.caughtUp(t, r4)
	got = x.received()
	require.Len(t, got, 1, "the new session gets the next revision once: %+v", got)
	require.Equal(t, r3, got[0].From)
	require.Equal(t, r4, got[0].To)
}
