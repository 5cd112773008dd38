package distrib

import (
	"cmp"
	"slices"
	"strconv"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/store"
	"github.com/dsnscale/dsnscale/controlplane/wire"
)

// A DSN's view is the config it needs: the Policies of its tenant whose selector matches its
// labels, and the Networks of the same tenant those policies name. A DSN with no tenant (no
// admission record) is matched against every tenant's Policies. DSNs of one tenant with the
// same labels share a group and so a view; the distributor keeps each group's view incrementally as the store changes.

// entry is one object of the index, with what views need from it parsed once.
type entry struct {
	obj  *model.Object
	rev  uint64
	sel  model.Selector // for a policy
	nets []model.Key    // for a policy: the networks it names, deduplicated
	bad  bool           // a policy whose spec does not decode selects nothing
}

// newEntry indexes obj, whose revision is its resourceVersion or, failing that, rev.
func newEntry(obj *model.Object, rev uint64) *entry {
	e := &entry{obj: obj, rev: objectRevision(obj, rev)}
	if obj.Kind != model.KindPolicy {
		return e
	}
	var spec model.PolicySpec
	if err := obj.DecodeSpec(&spec); err != nil {
		e.bad = true
		return e
	}
	e.sel = spec.Selector
	seen := map[string]bool{}
	for _, r := range spec.Rules {
		for _, n := range []string{r.From.Network, r.To.Network} {
			if n != "" && !seen[n] {
				seen[n] = true
				e.nets = append(e.nets, model.Key{Kind: model.KindNetwork, Tenant: obj.Metadata.Tenant, Name: n})
			}
		}
	}
	return e
}

// objectRevision is the revision an object was last written at, from its resourceVersion, or
// fallback when it carries none.
func objectRevision(obj *model.Object, fallback uint64) uint64 {
	if v, err := strconv.ParseUint(obj.Metadata.ResourceVersion, 10, 64); err == nil && v > 0 {
		return v
	}
	return fallback
}

// viewKind reports whether objects of kind k can be part of a view.
func viewKind(k model.Kind) bool { return k == model.KindNetwork || k == model.KindPolicy }

// index holds the current Networks and Policies.
type index struct {
	objs     map[model.Key]*entry
	policies map[model.Key]*entry
}

func newIndex() *index {
	return &index{objs: map[model.Key]*entry{}, policies: map[model.Key]*entry{}}
}

// indexView builds an index from a store view at rev.
func indexView(v store.View, rev uint64) *index {
	ix := newIndex()
	for _, k := range []model.Kind{model.KindNetwork, model.KindPolicy} {
		for _, o := range v.List(k, "") {
			ix.set(o.Key(), newEntry(o, rev))
		}
	}
	return ix
}

func (ix *index) set(k model.Key, e *entry) {
	if e == nil {
		delete(ix.objs, k)
		delete(ix.policies, k)
		return
	}
	ix.objs[k] = e
	if k.Kind == model.KindPolicy {
		ix.policies[k] = e
	}
}

// groupView is the view of one label group.
type groupView struct {
	tenant   string // "" matches every tenant's policies
	labels   map[string]string
	policies map[model.Key]struct{}
	netRefs  map[model.Key]int // how many of the view's policies name each network
}

func newGroupView(tenant string, labels map[string]string, ix *index) *groupView {
	g := &groupView{tenant: tenant, labels: labels}
	g.rebuild(ix)
	return g
}

// rebuild recomputes the view from scratch.
func (g *groupView) rebuild(ix *index) {
	g.policies = map[model.Key]struct{}{}
	g.netRefs = map[model.Key]int{}
	for k, e := range ix.policies {
		if g.selects(e) {
			g.add(k, e)
		}
	}
}

func (g *groupView) selects(e *entry) bool {
	return e != nil && !e.bad && (g.tenant == "" || e.obj.Metadata.Tenant == g.tenant) && e.sel.Matches(g.labels)
}

func (g *groupView) add(k model.Key, e *entry) {
	g.policies[k] = struct{}{}
	for _, n := range e.nets {
		g.netRefs[n]++
	}
}

func (g *groupView) remove(k model.Key, e *entry) {
	delete(g.policies, k)
	for _, n := range e.nets {
		if g.netRefs[n]--; g.netRefs[n] <= 0 {
			delete(g.netRefs, n)
		}
	}
}

// visible reports whether the object at k is in the view.
func (g *groupView) visible(ix *index, k model.Key) bool {
	switch k.Kind {
	case model.KindPolicy:
		_, ok := g.policies[k]
		return ok
	case model.KindNetwork:
		return g.netRefs[k] > 0 && ix.objs[k] != nil
	}
	return false
}

// objects returns the view's objects in key order (networks before policies).
func (g *groupView) objects(ix *index) []*entry {
	out := make([]*entry, 0, len(g.policies)+len(g.netRefs))
	for k := range g.netRefs {
		if e := ix.objs[k]; e != nil {
			out = append(out, e)
		}
	}
	for k := range g.policies {
		out = append(out, ix.objs[k])
	}
	slices.SortFunc(out, func(a, b *entry) int { return compareKeys(a.obj.Key(), b.obj.Key()) })
	return out
}

// revisions returns the view as key -> object revision.
func (g *groupView) revisions(ix *index) map[model.Key]uint64 {
	out := map[model.Key]uint64{}
	for _, e := range g.objects(ix) {
		out[e.obj.Key()] = e.rev
	}
	return out
}

// before is the state of one key in a group's view when a batch first touched it.
type before struct {
	visible bool
	rev     uint64
}

// batch applies store events to an index and to the views of groups, and then tells each
// group what changed in its view over the whole batch.
type batch struct {
	ix      *index
	groups  []*groupView
	touched map[*groupView]map[model.Key]before
}

func newBatch(ix *index, groups []*groupView) *batch {
	return &batch{ix: ix, groups: groups, touched: map[*groupView]map[model.Key]before{}}
}

// touch records k's visibility in g before the batch changes it. A key's visibility only
// changes through events that touch it, so its first touch sees the state before the batch.
func (b *batch) touch(g *groupView, k model.Key) {
	t := b.touched[g]
	if t == nil {
		t = map[model.Key]before{}
		b.touched[g] = t
	}
	if _, ok := t[k]; ok {
		return
	}
	var s before
	if s.visible = g.visible(b.ix, k); s.visible {
		s.rev = b.ix.objs[k].rev
	}
	t[k] = s
}

// apply applies one event.
func (b *batch) apply(ev store.Event) {
	k := ev.Key
	if !viewKind(k.Kind) {
		return
	}
	old := b.ix.objs[k]
	var cur *entry
	if ev.Type != store.OpDelete && ev.Object != nil {
		cur = newEntry(ev.Object, ev.Revision)
	}
	for _, g := range b.groups {
		switch k.Kind {
		case model.KindPolicy:
			wasIn, isIn := g.selects(old), g.selects(cur)
			if !wasIn && !isIn {
				continue
			}
			b.touch(g, k)
			if wasIn {
				for _, n := range old.nets {
					b.touch(g, n)
				}
				g.remove(k, old)
			}
			if isIn {
				for _, n := range cur.nets {
					b.touch(g, n)
				}
				g.add(k, cur)
			}
		case model.KindNetwork:
			if g.netRefs[k] > 0 {
				b.touch(g, k)
			}
		}
	}
	b.ix.set(k, cur)
}

// changes returns what changed in g's view over the batch, ending at revision to.
func (b *batch) changes(g *groupView, to uint64) []wire.Change {
	t := b.touched[g]
	if len(t) == 0 {
		return nil
	}
	var out []wire.Change
	for k, was := range t {
		if g.visible(b.ix, k) {
			e := b.ix.objs[k]
			if !was.visible || was.rev != e.rev {
				out = append(out, putChange(e))
			}
		} else if was.visible {
			out = append(out, deleteChange(k, to))
		}
	}
	sortChanges(out)
	return out
}

// diffViews returns the changes that turn the view old (key -> revision) into cur.
func diffViews(old map[model.Key]uint64, cur []*entry, to uint64) []wire.Change {
	var out []wire.Change
	seen := make(map[model.Key]bool, len(cur))
	for _, e := range cur {
		k := e.obj.Key()
		seen[k] = true
		if r, ok := old[k]; !ok || r != e.rev {
			out = append(out, putChange(e))
		}
	}
	for k := range old {
		if !seen[k] {
			out = append(out, deleteChange(k, to))
		}
	}
	sortChanges(out)
	return out
}

// filterChanges turns store changes since a revision into the changes of g's view, when that
// can be done exactly: only if no policy changed, since a changed policy's earlier state (and
// so the earlier view) is not known.
func filterChanges(evs []store.Event, g *groupView, ix *index, to uint64) ([]wire.Change, bool) {
	var out []wire.Change
	for _, ev := range evs {
		switch ev.Key.Kind {
		case model.KindPolicy:
			return nil, false
		case model.KindNetwork:
			if g.netRefs[ev.Key] == 0 {
				continue
			}
			if e := ix.objs[ev.Key]; e != nil {
				out = append(out, putChange(e))
			} else {
				out = append(out, deleteChange(ev.Key, to))
			}
		}
	}
	sortChanges(out)
	return out, true
}

func putChange(e *entry) wire.Change {
	k := e.obj.Key()
	return wire.Change{Op: wire.OpPut, Kind: k.Kind, Tenant: k.Tenant, Name: k.Name, Revision: e.rev, Object: e.obj}
}

func deleteChange(k model.Key, rev uint64) wire.Change {
	return wire.Change{Op: wire.OpDelete, Kind: k.Kind, Tenant: k.Tenant, Name: k.Name, Revision: rev}
}

// sortChanges orders changes by key, networks before the policies that name them.
func sortChanges(cs []wire.Change) {
	slices.SortFunc(cs, func(a, b wire.Change) int { return compareKeys(a.Key(), b.Key()) })
}

func kindRank(k model.Kind) int {
	if i := slices.Index(model.Kinds, k); i >= 0 {
		return i
	}
	return len(model.Kinds)
}

func compareKeys(a, b model.Key) int {
	if c := cmp.Compare(kindRank(a.Kind), kindRank(b.Kind)); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Tenant, b.Tenant); c != 0 {
		return c
	}
	return cmp.Compare(a.Name, b.Name)
}

// coalesce merges successive changes, keeping the last one per key.
func coalesce(lists ...[]wire.Change) []wire.Change {
	if len(lists) == 1 {
		return lists[0]
	}
	last := map[model.Key]wire.Change{}
	for _, l := range lists {
		for _, c := range l {
			last[c.Key()] = c
		}
	}
	out := make([]wire.Change, 0, len(last))
	for _, c := range last {
		out = append(out, c)
	}
	sortChanges(out)
	return out
}
