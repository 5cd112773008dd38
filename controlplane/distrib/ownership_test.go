package distrib_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/agent"
	"github.com/dsnscale/dsnscale/controlplane/api"
	"github.com/dsnscale/dsnscale/controlplane/distrib"
	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/wire"
)

// Ownership timings for tests: short, so that takeovers happen within a second or two. The
// race detector slows lease writes down several times over, so leases are longer under it.
var testLease = map[bool]time.Duration{false: 1500 * time.Millisecond, true: 4 * time.Second}[raceEnabled]

const testPartitions = 64

// replica is one control-plane replica of a test fleet: its own connection, intent store and
// distributor, on the bus of a shared cp.
type replica struct {
	name   string
	nc     *nats.Conn
	d      *distrib.Distributor
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

type tlog struct {
	t    *testing.T
	name string
}

func (w tlog) Write(b []byte) (int, error) { w.t.Log(w.name + ": " + string(b)); return len(b), nil }

// busOnly starts an embedded NATS and the intent store, with no distributor.
func busOnly(t *testing.T) *cp {
	c := &cp{t: t, dir: t.TempDir()}
	c.startBus()
	t.Cleanup(c.stop)
	return c
}

func (c *cp) startReplica(name string) *replica {
	t := c.t
	t.Helper()
	nc, err := nats.Connect(c.url(), nats.MaxReconnects(0))
	require.NoError(t, err)
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(30*time.Second))
	require.NoError(t, err)
	// The intent store has one writer; the replicas share it here, as they share its bucket.
	r := &replica{name: name, nc: nc, reg: prometheus.NewRegistry(), done: make(chan error, 1)}
	cfg := distrib.Config{
		Conn: nc, JS: js, Store: c.st, Registerer: r.reg,
		HeartbeatInterval: 100 * time.Millisecond,
		RetryAfter:        50 * time.Millisecond,
		Replica:           name,
		Partitions:        testPartitions,
		Lease:             testLease,
		Logger:            slog.New(slog.NewTextHandler(tlog{t, name}, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
	if c.mod != nil {
		c.mod(&cfg)
	}
	r.d, err = distrib.New(cfg)
	require.NoError(t, err)
	rctx, rcancel := context.WithCancel(context.Background())
	r.cancel = rcancel
	go func() { r.done <- r.d.Run(rctx) }()
	wctx, wcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer wcancel()
	require.NoError(t, r.d.WaitReady(wctx))
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels the replica's Run and waits for it: a graceful stop that releases its leases.
func (r *replica) stop(t *testing.T) {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("replica %s did not stop", r.name)
	}
	r.nc.Close()
}

// crash cuts the replica off the bus: it can neither renew nor release its leases.
func (r *replica) crash(t *testing.T) {
	r.nc.Close()
	r.stop(t)
}

// settled waits until the replicas named hold every partition between them, evenly, and all
// agree on who holds which.
func settled(t *testing.T, rs ...*replica) distrib.OwnershipReport {
	t.Helper()
	var last distrib.OwnershipReport
	target := (testPartitions + len(rs) - 1) / len(rs)
	require.Eventuallyf(t, func() bool {
		var first *distrib.OwnershipReport
		for _, r := range rs {
			rep, ok := r.d.Ownership()
			if !ok || len(rep.Live) != len(rs) || rep.Serving != rep.Held[r.name] {
				return false
			}
			total := 0
			for _, x := range rs {
				n := rep.Held[x.name]
				if n > target || n < testPartitions/len(rs)-1 {
					return false
				}
				total += n
			}
			if total != testPartitions {
				return false
			}
			if first == nil {
				first = &rep
			} else if !equalStrings(first.Partitions, rep.Partitions) {
				return false
			}
		}
		last = *first
		return true
	}, max(10*time.Second, 6*testLease), 20*time.Millisecond, "partitions spread over %d replicas", len(rs))
	return last
}

// hellosHandled adds up the Hellos the replicas decided.
func hellosHandled(t *testing.T, rs ...*replica) float64 {
	var n float64
	for _, r := range rs {
		mfs, err := r.reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() == "dsnscale_distrib_hellos_total" {
				for _, m := range mf.GetMetric() {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

func agentHellos(as []*agent.Agent) float64 {
	var n int64
	for _, a := range as {
		n += a.Stats().Hellos
	}
	return float64(n)
}

// dumpOnFailure logs, if the test fails, what the agents and the replicas say.
func dumpOnFailure(t *testing.T, rs []*replica, as *[]*agent.Agent) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, r := range rs {
			if rep, ok := r.d.Ownership(); ok {
				t.Logf("replica %s: live %v held %v", r.name, rep.Live, rep.Held)
			}
		}
		for _, a := range *as {
			t.Logf("agent %s: state %s applied %d stats %+v", a.ID(), a.State(), a.Applied(), a.Stats())
			for _, r := range rs {
				if o, err := r.d.DSN(context.Background(), a.ID()); err == nil {
					t.Logf("  as replica %s reports it: %s", r.name, o.Status)
				}
			}
		}
	})
}

// noDuplicates checks that no agent got a push of a revision it already had.
func noDuplicates(t *testing.T, as []*agent.Agent) {
	t.Helper()
	for _, a := range as {
		st := a.Stats()
		require.Zerof(t, st.Duplicates, "agent %s got pushes twice", a.ID())
		require.Zerof(t, st.Gaps, "agent %s missed pushes", a.ID())
	}
}

func fleetAgents(prefix string, n int) []agent.Config {
	cfgs := agents(prefix, n, web)
	for i := range cfgs {
		cfgs[i].HelloTimeout = 300 * time.Millisecond
	}
	return cfgs
}

// TestOwnershipSpreadsDSNs runs three replicas: they share the partitions evenly, every Hello
// is decided by exactly one of them, every DSN converges with each revision pushed once, and
// any replica answers fleet-wide reads for all of them.
func TestOwnershipSpreadsDSNs(t *testing.T) {
	c := busOnly(t)
	rs := []*replica{c.startReplica("a"), c.startReplica("b"), c.startReplica("c")}
	rep := settled(t, rs...)
	held := map[string]int{}
	for _, owner := range rep.Partitions {
		held[owner]++
	}
	for _, r := range rs {
		require.InDelta(t, testPartitions/3, held[r.name], 2, "replica %s holds %d partitions", r.name, held[r.name])
	}

	pol := policyObj("", "p", map[string]string{"role": "web"}, "a", "b")
	rev := c.commit(create(networkObj("", "a", "10.0.0.0/24")), create(networkObj("", "b", "10.0.1.0/24")), create(pol))
	var as []*agent.Agent
	dumpOnFailure(t, rs, &as)
	as = c.pool(2, fleetAgents("own", 30)...)
	keys := []model.Key{pol.Key(), {Kind: model.KindNetwork, Name: "a"}, {Kind: model.KindNetwork, Name: "b"}}
	converged(t, as, rev, c.want(keys...))

	// Every Hello an agent sent was decided once, by one replica: the replicas decided no more
	// Hellos than the agents sent, and at least every one that was answered in time. (Under
	// load one may time out and be decided all the same.)
	require.Eventually(t, func() bool {
		var answered int64
		for _, a := range as {
			answered += a.Stats().Hellos - a.Stats().Failures
		}
		return hellosHandled(t, rs...) >= float64(answered)
	}, 10*time.Second, 10*time.Millisecond)
	require.Never(t, func() bool { return hellosHandled(t, rs...) > agentHellos(as) }, 3*testLease/2, 20*time.Millisecond,
		"a Hello was decided by more than one replica")

	pol2 := policyObj("", "p", map[string]string{"role": "web"}, "b", "a")
	pol2.Metadata.ResourceVersion = c.get(pol.Key()).Metadata.ResourceVersion
	rev = c.commit(update(pol2))
	converged(t, as, rev, c.want(keys...))
	noDuplicates(t, as)

	// Any replica reports on the whole fleet.
	for _, r := range rs {
		conv := acked(t, r, rev, len(as))
		require.Equal(t, len(as), conv.Total, "replica %s", r.name)
		items, next, err := r.d.DSNs(context.Background(), nil, 0, "")
		require.NoError(t, err)
		require.Empty(t, next)
		require.Len(t, items, len(as), "replica %s", r.name)
		for _, o := range items {
			var st model.DSNStatus
			require.NoError(t, json.Unmarshal(o.Status, &st))
			require.Equal(t, model.DSNStateInSync, st.State, "DSN %s as replica %s reports it", o.Metadata.Name, r.name)
		}
		// Paging through the whole fleet from one replica.
		var paged []string
		after := ""
		for {
			page, next, err := r.d.DSNs(context.Background(), nil, 7, after)
			require.NoError(t, err)
			for _, o := range page {
				paged = append(paged, o.Metadata.Name)
			}
			if next == "" {
				break
			}
			after = next
		}
		require.Len(t, paged, len(as))
		for _, a := range as {
			o, err := r.d.DSN(context.Background(), a.ID())
			require.NoError(t, err)
			var st model.DSNStatus
			require.NoError(t, json.Unmarshal(o.Status, &st))
			require.Equal(t, model.DSNStateInSync, st.State)
			require.NotEmpty(t, st.SessionID, "DSN %s has a live session as replica %s reports it", a.ID(), r.name)
		}
	}
}

// acked waits until the replica reports n DSNs at or past rev.
func acked(t *testing.T, r *replica, rev uint64, n int) model.Convergence {
	t.Helper()
	var conv model.Convergence
	require.Eventuallyf(t, func() bool {
		var err error
		conv, err = r.d.Convergence(context.Background(), rev)
		require.NoError(t, err)
		return conv.AtOrPast >= n
	}, 15*time.Second, 10*time.Millisecond, "replica %s: acks for revision %d", r.name, rev)
	return conv
}

// TestOwnershipTakeover moves partitions between replicas: one of three stops gracefully,
// one crashes (cut off the bus, it neither renews nor releases its leases), a third joins two.
// The partitions moved are taken over (at once, within the lease, or as the others release
// their surplus), their DSNs are admitted by the new holder with a version check rather than a
// snapshot, and every DSN converges on later revisions with no revision pushed twice: the old
// holder stops pushing when it loses a partition.
func TestOwnershipTakeover(t *testing.T) {
	for _, mode := range []string{"stop", "crash", "join"} {
		t.Run(mode, func(t *testing.T) {
			c := busOnly(t)
			rs := []*replica{c.startReplica("a"), c.startReplica("b")}
			if mode != "join" {
				rs = append(rs, c.startReplica("c"))
			}
			rep := settled(t, rs...)

			pol := policyObj("", "p", map[string]string{"role": "web"}, "a", "a")
			rev := c.commit(create(networkObj("", "a", "10.0.0.0/24")), create(pol))
			var as []*agent.Agent
			dumpOnFailure(t, rs, &as)
			as = c.pool(2, fleetAgents("tk", 30)...)
			keys := []model.Key{pol.Key(), {Kind: model.KindNetwork, Name: "a"}}
			converged(t, as, rev, c.want(keys...))
			acked(t, rs[1], rev, len(as))
			before := map[string]agent.Stats{}
			for _, a := range as {
				before[a.ID()] = a.Stats()
			}

			start := time.Now()
			switch mode {
			case "stop":
				rs[0].stop(t)
				rs = rs[1:]
			case "crash":
				rs[0].crash(t)
				rs = rs[1:]
				// A change while nobody serves the crashed replica's DSNs: they are behind
				// when they are taken over.
				net := networkObj("", "a", "10.0.9.0/24")
				net.Metadata.ResourceVersion = c.get(net.Key()).Metadata.ResourceVersion
				rev = c.commit(update(net))
			case "join":
				rs = append(rs, c.startReplica("c"))
			}
			after := settled(t, rs...)
			took := time.Since(start)
			t.Logf("%s: partitions settled on the replicas after %v", mode, took)
			if mode == "crash" {
				// A lease period after the survivors last saw the leases move (at most a third
				// of a lease before the crash), plus the ticks that notice it.
				require.Less(t, took, 2*testLease, "takeover after a crash took %v", took)
			}
			var moved []*agent.Agent
			for _, a := range as {
				p := distrib.Partition(a.ID(), testPartitions)
				if rep.Partitions[p] != after.Partitions[p] {
					moved = append(moved, a)
				}
			}
			require.NotEmpty(t, moved, "some DSNs changed replicas")

			// The moved DSNs are admitted again by their new replica: with a version check, or
			// after the crash with the delta they missed, never with a snapshot.
			for _, a := range moved {
				require.Eventuallyf(t, func() bool { return a.Stats().Admissions > before[a.ID()].Admissions }, 10*time.Second,
					10*time.Millisecond, "agent %s admitted by its new replica", a.ID())
				st := a.Stats()
				require.Equal(t, before[a.ID()].Snapshots, st.Snapshots, "agent %s: taken over with a snapshot", a.ID())
				if mode == "crash" {
					require.Greater(t, st.Deltas, before[a.ID()].Deltas, "agent %s: taken over without the delta it missed", a.ID())
				} else {
					require.Greater(t, st.UpToDate, before[a.ID()].UpToDate, "agent %s: taken over without a version check", a.ID())
				}
			}
			converged(t, as, rev, c.want(keys...))

			pol2 := policyObj("", "p", map[string]string{"role": "web"}, "a", "a")
			_ = pol2.EncodeSpec(model.PolicySpec{Selector: model.Selector{MatchLabels: map[string]string{"role": "web"}},
				Rules: []model.Rule{{Action: model.ActionDeny, From: model.Peer{Network: "a"}, To: model.Peer{Network: "a"}, Protocol: "udp", Ports: []string{"53"}}}})
			pol2.Metadata.ResourceVersion = c.get(pol.Key()).Metadata.ResourceVersion
			rev = c.commit(update(pol2))
			converged(t, as, rev, c.want(keys...))
			for _, r := range rs {
				conv := acked(t, r, rev, len(as))
				require.Equal(t, len(as), conv.Total, "replica %s", r.name)
				require.Zero(t, conv.Behind, "replica %s", r.name)
			}
			noDuplicates(t, as)
		})
	}
}

// TestOwnershipFleetReads registers more DSNs than one answer message holds on three replicas
// and checks that every replica lists, pages, counts, reads, relabels and decommissions them
// as one fleet.
func TestOwnershipFleetReads(t *testing.T) {
	c := busOnly(t)
	rs := []*replica{c.startReplica("a"), c.startReplica("b"), c.startReplica("c")}
	settled(t, rs...)
	nc, err := nats.Connect(c.url())
	require.NoError(t, err)
	defer nc.Close()
	const n = 1000 // over 256 (chunkItems) per replica
	admitAll(t, nc, "fr-%04d", n)
	ctx := context.Background()
	for _, r := range rs {
		items, next, err := r.d.DSNs(ctx, nil, 0, "")
		require.NoError(t, err)
		require.Empty(t, next)
		require.Equal(t, n, len(items), "replica %s lists the fleet", r.name)
		for i, o := range items {
			require.Equal(t, fmt.Sprintf("fr-%04d", i), o.Metadata.Name)
		}
		var paged int
		after := ""
		for {
			page, next, err := r.d.DSNs(ctx, map[string]string{"role": "web"}, 300, after)
			require.NoError(t, err)
			paged += len(page)
			if next == "" {
				break
			}
			require.Equal(t, page[len(page)-1].Metadata.Name, next)
			after = next
		}
		require.Equal(t, n, paged, "replica %s pages through the fleet", r.name)
		none, _, err := r.d.DSNs(ctx, map[string]string{"role": "db"}, 0, "")
		require.NoError(t, err)
		require.Empty(t, none)
		conv, err := r.d.Convergence(ctx, 0)
		require.NoError(t, err)
		require.Equal(t, n, conv.Total, "replica %s counts the fleet", r.name)
	}

	// Writes through a replica that does not serve the DSN reach the one that does.
	rep, _ := rs[0].d.Ownership()
	var id string
	var via *replica
	for i := range n {
		cand := fmt.Sprintf("fr-%04d", i)
		if owner := rep.Partitions[distrib.Partition(cand, testPartitions)]; owner != "a" {
			id, via = cand, rs[0]
			break
		}
	}
	require.NotNil(t, via)
	o, err := via.d.SetLabels(ctx, id, map[string]string{"role": "db"})
	require.NoError(t, err)
	require.Equal(t, "db", o.Metadata.Labels["role"])
	for _, r := range rs {
		items, _, err := r.d.DSNs(ctx, map[string]string{"role": "db"}, 0, "")
		require.NoError(t, err)
		require.Len(t, items, 1, "replica %s sees the relabelling", r.name)
		require.Equal(t, id, items[0].Metadata.Name)
	}
	require.NoError(t, via.d.Decommission(ctx, id))
	for _, r := range rs {
		_, err := r.d.DSN(ctx, id)
		require.ErrorIs(t, err, api.ErrUnknownDSN, "replica %s", r.name)
		items, _, err := r.d.DSNs(ctx, nil, 0, "")
		require.NoError(t, err)
		require.Equal(t, n-1, len(items), "replica %s", r.name)
	}
	require.ErrorIs(t, via.d.Decommission(ctx, id), api.ErrUnknownDSN)
}

// TestFleetReadDoesNotWaitForAGoneReplica checks that a fleet-wide read through a survivor does
// not wait out FleetTimeout for a replica that is gone but whose leases have not lapsed yet:
// the bus says nobody answers there. FleetTimeout and the lease are long here, so that a read
// that waited for the gone replica would outlast the read's own deadline.
func TestFleetReadDoesNotWaitForAGoneReplica(t *testing.T) {
	c := busOnly(t)
	c.mod = func(cfg *distrib.Config) {
		cfg.FleetTimeout = time.Minute
		cfg.Lease = 5 * time.Second
	}
	rs := []*replica{c.startReplica("a"), c.startReplica("b"), c.startReplica("c")}
	settled(t, rs...)
	nc, err := nats.Connect(c.url())
	require.NoError(t, err)
	defer nc.Close()
	const n = 60
	admitAll(t, nc, "gone-%03d", n)
	before, _ := rs[0].d.Ownership()
	survivors := 0 // DSNs of the partitions a and b serve
	for i := range n {
		if before.Partitions[distrib.Partition(fmt.Sprintf("gone-%03d", i), testPartitions)] != "c" {
			survivors++
		}
	}
	rs[2].crash(t)
	// Once the bus has dropped the gone replica's subscriptions, it says so to a request.
	require.Eventually(t, func() bool {
		_, err := nc.Request(distrib.FleetSubject("c"), []byte("{}"), time.Second)
		return errors.Is(err, nats.ErrNoResponders)
	}, 10*time.Second, 10*time.Millisecond)
	rep, _ := rs[0].d.Ownership()
	require.Contains(t, rep.Live, "c", "the gone replica is still live by its leases")

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	items, _, err := rs[0].d.DSNs(ctx, nil, 0, "")
	require.NoError(t, err, "the list must not wait for the gone replica")
	// The gone replica's DSNs come from the registry as last read (FleetSubject), so only the
	// survivors' are sure to be there.
	assert.GreaterOrEqual(t, len(items), survivors)
	conv, err := rs[1].d.Convergence(ctx, 0)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, conv.Total, survivors)
}

// admitAll says Hello for n DSNs named by format (with their index) and checks each is admitted.
func admitAll(t *testing.T, nc *nats.Conn, format string, n int) {
	t.Helper()
	for i := range n {
		id := fmt.Sprintf(format, i)
		b, _ := json.Marshal(&wire.Hello{Protocol: wire.Version, DSN: id, Labels: web})
		msg, err := nc.Request(wire.HelloSubject(id), b, 10*time.Second)
		require.NoError(t, err)
		var adm wire.Admission
		require.NoError(t, json.Unmarshal(msg.Data, &adm))
		require.Equal(t, wire.Admitted, adm.Status, "DSN %s: %s", id, adm.Reason)
	}
}
