package engine

import (
	"fmt"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/wire"
	"github.com/dsnscale/dsnscale/simdsn/record"
	"github.com/dsnscale/dsnscale/simdsn/stage"
	"github.com/dsnscale/dsnscale/simdsn/trafficmap"
)

// TestPushRulesProperty checks the engine's handling of queued pushes against the rules of
// docs/PROTOCOL.md (rule 7 and the change rules), written out plainly as a model.
func TestPushRulesProperty(t *testing.T) {
	reg := stage.Default()
	m, err := trafficmap.Parse("test.yaml", []byte(testMap), reg)
	if err != nil {
		t.Fatal(err)
	}
	rapid.Check(t, func(rt *rapid.T) {
		col := record.NewCollector(nil)
		e, err := New(Config{Bus: newFakeBus(), Stages: reg, Map: m, Records: col.Writer(), Seed: 1},
			[]DSNSpec{{ID: "d0", Group: "g", Labels: map[string]string{"role": "web"}}})
		if err != nil {
			rt.Fatal(err)
		}
		defer e.cache.Close()
		d := e.dsns[0]
		names := []string{"a", "b", "c"}

		start := rapid.Uint64Range(0, 20).Draw(rt, "start")
		d.admitRev = rapid.Uint64Range(0, 30).Draw(rt, "admitRev")
		type obj struct{ rev uint64 }
		modelObjs := map[string]obj{}
		base := applied{rev: start, objs: emptySet}
		n := rapid.IntRange(1, 12).Draw(rt, "pushes")
		for i := range n {
			from := rapid.Uint64Range(0, 40).Draw(rt, fmt.Sprintf("from%d", i))
			to := from + rapid.Uint64Range(0, 5).Draw(rt, fmt.Sprintf("len%d", i))
			p := &wire.Push{Type: wire.PushDelta, From: from, To: to}
			for j := range rapid.IntRange(0, 3).Draw(rt, fmt.Sprintf("changes%d", i)) {
				name := rapid.SampledFrom(names).Draw(rt, fmt.Sprintf("name%d.%d", i, j))
				rev := rapid.Uint64Range(0, to+1).Draw(rt, fmt.Sprintf("rev%d.%d", i, j))
				ch := wire.Change{Op: wire.OpDelete, Kind: model.KindPolicy, Tenant: "t", Name: name, Revision: rev}
				if rapid.Bool().Draw(rt, fmt.Sprintf("put%d.%d", i, j)) {
					ch.Op = wire.OpPut
					ch.Object = &model.Object{Kind: model.KindPolicy, Metadata: model.Metadata{Name: name, Tenant: "t"}}
				}
				p.Changes = append(p.Changes, ch)
			}
			d.queue = append(d.queue, queuedPush{p: p, key: pushKey(p)})
		}
		queue := append([]queuedPush(nil), d.queue...)

		got, ok := e.chain(d, base, time.Unix(1, 0))

		// The model.
		a, wantOK := start, true
		dups, overtaken, gaps := 0, 0, 0
		for _, q := range queue {
			p := q.p
			if p.To <= a && p.To > d.admitRev {
				dups++
				continue
			}
			if p.To <= a || (p.From > a && p.To <= d.admitRev) {
				overtaken++
				continue
			}
			if p.From > a {
				gaps++
				wantOK = false
				break
			}
			for _, ch := range p.Changes {
				cur, have := modelObjs[ch.Name]
				switch {
				case ch.Op == wire.OpPut && (!have || ch.Revision > cur.rev):
					modelObjs[ch.Name] = obj{rev: ch.Revision}
				case ch.Op == wire.OpDelete && have && ch.Revision > cur.rev:
					delete(modelObjs, ch.Name)
				}
			}
			a = p.To
		}
		if ok != wantOK || got.rev != a {
			rt.Fatalf("chain: got (rev %d, ok %v), want (rev %d, ok %v)", got.rev, ok, a, wantOK)
		}
		if len(got.objs.objects) != len(modelObjs) {
			rt.Fatalf("objects: got %d, want %d", len(got.objs.objects), len(modelObjs))
		}
		for name, o := range modelObjs {
			h, have := got.objs.objects[model.Key{Kind: model.KindPolicy, Tenant: "t", Name: name}]
			if !have || h.rev != o.rev {
				rt.Fatalf("object %s: got %v (held %v), want rev %d", name, h.rev, have, o.rev)
			}
		}
		if len(d.queue) != 0 {
			rt.Fatalf("queue not drained: %d left", len(d.queue))
		}
		r, _ := col.DSN("d0")
		if r.Watch.Duplicates != dups || r.Watch.Overtaken != overtaken || r.Watch.Gaps != gaps {
			rt.Fatalf("watch records: got %d duplicates, %d overtaken, %d gaps, want %d, %d and %d",
				r.Watch.Duplicates, r.Watch.Overtaken, r.Watch.Gaps, dups, overtaken, gaps)
		}
	})
}

// TestChainTellsDuplicatesFromLeftovers checks the watch records of the cases rule 7 tells
// apart: the catch-up after an admission's snapshot is applied, a push of this session the DSN
// has is a duplicate, and one the admission overtook is a leftover.
func TestChainTellsDuplicatesFromLeftovers(t *testing.T) {
	reg := stage.Default()
	m, err := trafficmap.Parse("test.yaml", []byte(testMap), reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name                  string
		base, admit, from, to uint64
		want                  uint64 // applied revision after
		kind                  string // watch record, if any
	}{
		{"catch-up from the snapshot", 5, 9, 5, 9, 9, ""},
		{"next push", 9, 9, 9, 10, 10, ""},
		{"overtaken, at or below what it has", 9, 9, 7, 8, 9, record.WatchOvertaken},
		{"overtaken, past what it has", 5, 9, 7, 8, 5, record.WatchOvertaken},
		{"duplicate of this session", 12, 9, 10, 11, 12, record.WatchDuplicate},
		{"gap", 10, 9, 11, 12, 10, record.WatchGap},
	} {
		t.Run(tc.name, func(t *testing.T) {
			col := record.NewCollector(nil)
			e, err := New(Config{Bus: newFakeBus(), Stages: reg, Map: m, Records: col.Writer(), Seed: 1},
				[]DSNSpec{{ID: "d0", Group: "g", Labels: map[string]string{"role": "web"}}})
			if err != nil {
				t.Fatal(err)
			}
			defer e.cache.Close()
			d := e.dsns[0]
			d.admitRev = tc.admit
			p := &wire.Push{Type: wire.PushCurrent, From: tc.from, To: tc.to}
			d.queue = []queuedPush{{p: p, key: pushKey(p)}}
			got, _ := e.chain(d, applied{rev: tc.base, objs: emptySet}, time.Unix(1, 0))
			if got.rev != tc.want {
				t.Errorf("applied %d, want %d", got.rev, tc.want)
			}
			r, _ := col.DSN("d0")
			var kinds []string
			for _, ev := range r.Watch.Events {
				kinds = append(kinds, ev.Kind)
			}
			if want := []string{tc.kind}; tc.kind == "" && len(kinds) != 0 || tc.kind != "" && fmt.Sprint(kinds) != fmt.Sprint(want) {
				t.Errorf("watch records %v, want %q", kinds, tc.kind)
			}
		})
	}
}
