package store

import (
	"encoding/json"
	"maps"
	"sort"

	"github.com/dsnscale/dsnscale/controlplane/model"
)

// snapshot is an immutable view of every live object, sorted by key. A commit never changes
// one: it builds the next snapshot by merging its changes into a copy of the sorted slice,
// which costs a copy of n pointers, and readers take the current one with an atomic load.
type snapshot struct {
	rev  Revision
	objs []*model.Object
}

var _ View = (*snapshot)(nil)

// search returns the index of the first object whose key is not before key.
func (s *snapshot) search(key model.Key) int {
	return sort.Search(len(s.objs), func(i int) bool { return compareKeys(s.objs[i].Key(), key) >= 0 })
}

// Get returns the object at key. The object is shared: callers must not modify it.
func (s *snapshot) Get(key model.Key) (*model.Object, bool) {
	i := s.search(key)
	if i < len(s.objs) && compareKeys(s.objs[i].Key(), key) == 0 {
		return s.objs[i], true
	}
	return nil, false
}

// List returns the objects of kind in tenant ("" for all tenants), in key order. The slice and
// the objects are shared: callers must not modify them.
func (s *snapshot) List(kind model.Kind, tenant string) []*model.Object {
	lo, hi := s.bounds(kind, tenant)
	return s.objs[lo:hi:hi]
}

// Len is the number of live objects.
func (s *snapshot) Len() int { return len(s.objs) }

// bounds returns the index range of kind's objects in tenant ("" for all tenants).
func (s *snapshot) bounds(kind model.Kind, tenant string) (int, int) {
	lo := s.search(model.Key{Kind: kind, Tenant: tenant})
	hi := lo
	for hi < len(s.objs) {
		o := s.objs[hi]
		if o.Kind != kind || (tenant != "" && o.Metadata.Tenant != tenant) {
			break
		}
		hi++
	}
	return lo, hi
}

// change is the new state of one key: obj, or nil when the key is gone.
type change struct {
	key model.Key
	obj *model.Object
}

// with returns a new snapshot at rev with changes applied. changes must be sorted by key and
// hold each key at most once.
func (s *snapshot) with(changes []change, rev Revision) *snapshot {
	out := make([]*model.Object, 0, len(s.objs)+len(changes))
	i := 0
	for _, c := range changes {
		rest := s.objs[i:]
		j := i + sort.Search(len(rest), func(k int) bool { return compareKeys(rest[k].Key(), c.key) >= 0 })
		out = append(out, s.objs[i:j]...) // the untouched run before the change
		i = j
		if i < len(s.objs) && compareKeys(s.objs[i].Key(), c.key) == 0 {
			i++ // replaced or removed
		}
		if c.obj != nil {
			out = append(out, c.obj)
		}
	}
	out = append(out, s.objs[i:]...)
	return &snapshot{rev: rev, objs: out}
}

// sortChanges orders changes by key.
func sortChanges(cs []change) {
	sort.Slice(cs, func(i, j int) bool { return compareKeys(cs[i].key, cs[j].key) < 0 })
}

// cloneObject returns a deep copy of o, so that callers can modify what they get.
func cloneObject(o *model.Object) *model.Object {
	if o == nil {
		return nil
	}
	c := *o
	c.Metadata.Labels = maps.Clone(o.Metadata.Labels)
	if o.Spec != nil {
		c.Spec = append(json.RawMessage(nil), o.Spec...)
	}
	if o.Status != nil {
		c.Status = append(json.RawMessage(nil), o.Status...)
	}
	return &c
}
