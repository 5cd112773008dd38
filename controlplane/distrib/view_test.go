package distrib

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/store"
	"github.com/dsnscale/dsnscale/controlplane/wire"
)

func network(tenant, name string, rev uint64) *model.Object {
	o := &model.Object{APIVersion: model.APIVersion, Kind: model.KindNetwork,
		Metadata: model.Metadata{Name: name, Tenant: tenant, ResourceVersion: strconv.FormatUint(rev, 10)}}
	_ = o.EncodeSpec(model.NetworkSpec{CIDR: "10.0.0.0/24", VLAN: int(rev % 4000)})
	return o
}

func policy(tenant, name string, rev uint64, sel map[string]string, nets ...string) *model.Object {
	o := &model.Object{APIVersion: model.APIVersion, Kind: model.KindPolicy,
		Metadata: model.Metadata{Name: name, Tenant: tenant, ResourceVersion: strconv.FormatUint(rev, 10)}}
	spec := model.PolicySpec{Selector: model.Selector{MatchLabels: sel}}
	for i := 0; i+1 < len(nets); i += 2 {
		spec.Rules = append(spec.Rules, model.Rule{Action: model.ActionAllow, From: model.Peer{Network: nets[i]}, To: model.Peer{Network: nets[i+1]}})
	}
	if len(nets)%2 == 1 {
		spec.Rules = append(spec.Rules, model.Rule{Action: model.ActionDeny, To: model.Peer{Network: nets[len(nets)-1]}})
	}
	_ = o.EncodeSpec(spec)
	return o
}

func put(rev uint64, o *model.Object) store.Event {
	return store.Event{Revision: rev, Type: store.OpUpdate, Key: o.Key(), Object: o}
}

func del(rev uint64, o *model.Object) store.Event {
	return store.Event{Revision: rev, Type: store.OpDelete, Key: o.Key(), Object: o}
}

// applyChanges is what a DSN does with a delta: key -> revision of the object it holds.
func applyChanges(state map[model.Key]uint64, cs []wire.Change) {
	for _, c := range cs {
		if c.Op == wire.OpPut {
			state[c.Key()] = c.Revision
		} else {
			delete(state, c.Key())
		}
	}
}

func TestGroupViewSelectsPoliciesAndTheirNetworks(t *testing.T) {
	ix := newIndex()
	objs := []*model.Object{
		network("t1", "web", 1), network("t1", "db", 2), network("t1", "unused", 3), network("t2", "web", 4),
		policy("t1", "p-web", 5, map[string]string{"role": "web"}, "web", "db"),
		policy("t1", "p-all", 6, nil, "missing"),
		policy("t2", "p-db", 7, map[string]string{"role": "db"}, "web"),
	}
	for _, o := range objs {
		ix.set(o.Key(), newEntry(o, 0))
	}
	bad := &model.Object{Kind: model.KindPolicy, Metadata: model.Metadata{Name: "bad", Tenant: "t1"}, Spec: []byte(`{"nope":1}`)}
	ix.set(bad.Key(), newEntry(bad, 8))

	tests := []struct {
		labels map[string]string
		want   []string
	}{
		{map[string]string{"role": "web"}, []string{"Network/t1/db", "Network/t1/web", "Policy/t1/p-all", "Policy/t1/p-web"}},
		{map[string]string{"role": "db"}, []string{"Network/t2/web", "Policy/t1/p-all", "Policy/t2/p-db"}},
		{nil, []string{"Policy/t1/p-all"}},
	}
	for _, tt := range tests {
		t.Run(model.SortedLabels(tt.labels), func(t *testing.T) {
			g := newGroupView("", tt.labels, ix)
			var got []string
			for _, e := range g.objects(ix) {
				got = append(got, e.obj.Key().String())
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestBatchChanges(t *testing.T) {
	ix := newIndex()
	web := map[string]string{"role": "web"}
	for _, o := range []*model.Object{network("t1", "a", 1), network("t1", "b", 2), policy("t1", "p", 3, web, "a")} {
		ix.set(o.Key(), newEntry(o, 0))
	}
	g := newGroupView("", web, ix)
	other := newGroupView("", map[string]string{"role": "db"}, ix)

	// The policy switches from network a to b, and a is updated: b enters the view, a leaves it
	// (its update is not the group's business), and the policy is put.
	b := newBatch(ix, []*groupView{g, other})
	b.apply(put(4, network("t1", "a", 4)))
	b.apply(put(5, policy("t1", "p", 5, web, "b")))
	got := b.changes(g, 5)
	require.Len(t, got, 3)
	assert.Equal(t, wire.Change{Op: wire.OpDelete, Kind: model.KindNetwork, Tenant: "t1", Name: "a", Revision: 5}, got[0])
	assert.Equal(t, "b", got[1].Name)
	assert.Equal(t, uint64(2), got[1].Revision, "an object entering the view keeps its revision")
	assert.Equal(t, wire.OpPut, got[2].Op)
	assert.Equal(t, model.KindPolicy, got[2].Kind)
	assert.Empty(t, b.changes(other, 5))

	// Deleting the policy empties the view.
	b = newBatch(ix, []*groupView{g})
	b.apply(del(6, policy("t1", "p", 5, web, "b")))
	got = b.changes(g, 6)
	require.Len(t, got, 2)
	for _, c := range got {
		assert.Equal(t, wire.OpDelete, c.Op)
	}
	assert.Empty(t, g.objects(ix))
}

// TestViewsProperty checks incremental views against recomputation: after every batch, each
// group's DSN state built from batch deltas equals the view computed from scratch; deltas from
// history bring any earlier boundary state to the current view; and filtered store changes do
// so whenever they claim exactness.
func TestViewsProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		labelSets := []map[string]string{
			{"role": "web", "site": "x"}, {"role": "db", "site": "x"}, {"role": "web", "site": "y"}, {},
		}
		selectors := []map[string]string{nil, {"role": "web"}, {"role": "db"}, {"site": "x"}, {"role": "web", "site": "y"}}
		tenants := []string{"t1", "t2"}
		names := []string{"a", "b", "c"}

		ix := newIndex()
		var groups []*groupView
		for _, ls := range labelSets {
			groups = append(groups, newGroupView("", ls, ix))
		}
		state := make([]map[model.Key]uint64, len(groups)) // what a DSN of each group holds
		for i := range state {
			state[i] = map[model.Key]uint64{}
		}
		type snap struct {
			rev    uint64
			states []map[model.Key]uint64
		}
		var (
			rev     uint64
			bnds    = bounds{limit: 1000}
			logs    = make([]deltaLog, len(groups))
			past    []snap
			history []store.Event
			live    = map[model.Key]*model.Object{}
		)
		bnds.reset(0)
		past = append(past, snap{0, copyStates(state)})

		nBatches := rapid.IntRange(1, 12).Draw(t, "batches")
		for bi := 0; bi < nBatches; bi++ {
			from := rev
			b := newBatch(ix, groups)
			nEv := rapid.IntRange(1, 6).Draw(t, "events")
			for ei := 0; ei < nEv; ei++ {
				rev++
				tenant := rapid.SampledFrom(tenants).Draw(t, "tenant")
				name := rapid.SampledFrom(names).Draw(t, "name")
				var o *model.Object
				if rapid.Bool().Draw(t, "isPolicy") {
					nets := rapid.SliceOfN(rapid.SampledFrom(append(names, "zz")), 0, 3).Draw(t, "nets")
					o = policy(tenant, name, rev, rapid.SampledFrom(selectors).Draw(t, "sel"), nets...)
				} else {
					o = network(tenant, name, rev)
				}
				ev := put(rev, o)
				if _, ok := live[o.Key()]; ok && rapid.IntRange(0, 3).Draw(t, "del") == 0 {
					ev = del(rev, live[o.Key()])
					delete(live, o.Key())
				} else {
					live[o.Key()] = o
				}
				b.apply(ev)
				history = append(history, ev)
			}
			bnds.add(rev)
			for gi, g := range groups {
				cs := b.changes(g, rev)
				for _, c := range cs {
					require.NoError(t, c.Validate())
				}
				applyChanges(state[gi], cs)
				logs[gi] = logs[gi].add(groupDelta{from: from, to: rev, changes: cs}, bnds.oldest())
				// The incremental view equals a view computed from scratch.
				fresh := newGroupView(g.tenant, g.labels, ix)
				require.Equal(t, fresh.revisions(ix), state[gi], "group %d after batch %d", gi, bi)
				require.Equal(t, fresh.revisions(ix), g.revisions(ix))
			}
			past = append(past, snap{rev, copyStates(state)})
		}

		// Catch-up from any earlier boundary.
		p := rapid.SampledFrom(past).Draw(t, "from")
		require.True(t, bnds.covers(p.rev))
		for gi, g := range groups {
			st := copyStates(p.states)[gi]
			applyChanges(st, logs[gi].since(p.rev))
			require.Equal(t, g.revisions(ix), st, "history catch-up of group %d from %d", gi, p.rev)

			// Filtered store changes, coalesced per key as the store gives them.
			var evs []store.Event
			pos := map[model.Key]int{}
			for _, ev := range history {
				if ev.Revision <= p.rev {
					continue
				}
				if i, ok := pos[ev.Key]; ok {
					evs[i] = ev
				} else {
					pos[ev.Key] = len(evs)
					evs = append(evs, ev)
				}
			}
			if cs, ok := filterChanges(evs, g, ix, rev); ok {
				st := copyStates(p.states)[gi]
				applyChanges(st, cs)
				require.Equal(t, g.revisions(ix), st, "filtered catch-up of group %d from %d", gi, p.rev)
			}
			// A full diff does it from any state.
			st = copyStates(p.states)[gi]
			applyChanges(st, diffViews(p.states[gi], g.objects(ix), rev))
			require.Equal(t, g.revisions(ix), st)
		}
	})
}

func copyStates(in []map[model.Key]uint64) []map[model.Key]uint64 {
	out := make([]map[model.Key]uint64, len(in))
	for i, m := range in {
		out[i] = make(map[model.Key]uint64, len(m))
		for k, v := range m {
			out[i][k] = v
		}
	}
	return out
}

func TestBounds(t *testing.T) {
	b := bounds{limit: 16}
	b.reset(3)
	for r := uint64(5); r < 100; r += 2 {
		b.add(r)
	}
	b.add(50) // out of order: ignored
	assert.LessOrEqual(t, len(b.revs), 16)
	assert.True(t, b.covers(99))
	assert.False(t, b.covers(98), "not a boundary")
	assert.False(t, b.covers(3), "trimmed")
	assert.Equal(t, b.revs[0], b.oldest())
}

func TestDeltaLogSince(t *testing.T) {
	ch := func(name string, op string, rev uint64) wire.Change {
		return wire.Change{Op: op, Kind: model.KindNetwork, Tenant: "t", Name: name, Revision: rev}
	}
	var l deltaLog
	l = l.add(groupDelta{0, 2, []wire.Change{ch("a", wire.OpPut, 2)}}, 0)
	l = l.add(groupDelta{2, 3, nil}, 0)
	l = l.add(groupDelta{3, 5, []wire.Change{ch("a", wire.OpDelete, 5), ch("b", wire.OpPut, 4)}}, 0)
	assert.Len(t, l, 2)
	assert.Equal(t, []wire.Change{ch("a", wire.OpDelete, 5), ch("b", wire.OpPut, 4)}, l.since(0))
	assert.Equal(t, l.since(3), l.since(2))
	assert.Empty(t, l.since(5))
	l = l.add(groupDelta{5, 6, nil}, 3)
	assert.Len(t, l, 1)
	assert.Equal(t, fmt.Sprint(l[0].from), "3")
}
