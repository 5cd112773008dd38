package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/wire"
)

// held is one object of a config and its revision.
type held struct {
	obj *model.Object
	rev uint64
}

// objectSet is an immutable set of objects. DSNs that reach the same content the same way share
// one objectSet, so a fleet of thousands holds a handful of them.
type objectSet struct {
	key     string
	objects map[model.Key]held
	list    []*model.Object // in key order
}

// applied is what a DSN has in force: an object set at a revision.
type applied struct {
	rev  uint64
	objs *objectSet
}

var emptySet = newObjectSet("empty", map[model.Key]held{})

func newObjectSet(key string, objects map[model.Key]held) *objectSet {
	s := &objectSet{key: key, objects: objects, list: make([]*model.Object, 0, len(objects))}
	for _, h := range objects {
		s.list = append(s.list, h.obj)
	}
	slices.SortFunc(s.list, func(a, b *model.Object) int {
		ka, kb := a.Key(), b.Key()
		if ka.Kind != kb.Kind {
			return compareStr(string(ka.Kind), string(kb.Kind))
		}
		if ka.Tenant != kb.Tenant {
			return compareStr(ka.Tenant, kb.Tenant)
		}
		return compareStr(ka.Name, kb.Name)
	})
	return s
}

func compareStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// maxInterned bounds each intern table; when full it starts afresh (DSNs keep what they hold).
const maxInterned = 4096

// configs interns decoded pushes, snapshots and derived object sets, shared by all DSNs of an
// engine.
type configs struct {
	mu        sync.Mutex
	pushes    map[[32]byte]*wire.Push
	snapshots map[[32]byte]*snapshot
	derived   map[string]*objectSet
	byKey     map[string]*objectSet
}

type snapshot struct {
	group string
	rev   uint64
	objs  *objectSet
}

func newConfigs() *configs {
	return &configs{pushes: map[[32]byte]*wire.Push{}, snapshots: map[[32]byte]*snapshot{},
		derived: map[string]*objectSet{}, byKey: map[string]*objectSet{}}
}

func (c *configs) remember(s *objectSet) {
	if len(c.byKey) >= maxInterned {
		clear(c.byKey)
	}
	c.byKey[s.key] = s
}

// decodePush decodes and validates a push, sharing the result between DSNs that got the same
// bytes.
func (c *configs) decodePush(data []byte) (*wire.Push, [32]byte, error) {
	sum := sha256.Sum256(data)
	c.mu.Lock()
	p, ok := c.pushes[sum]
	c.mu.Unlock()
	if ok {
		return p, sum, nil
	}
	p = new(wire.Push)
	if err := wire.Unmarshal(data, p); err != nil {
		return nil, sum, err
	}
	c.mu.Lock()
	if len(c.pushes) >= maxInterned {
		clear(c.pushes)
	}
	c.pushes[sum] = p
	c.mu.Unlock()
	return p, sum, nil
}

// pushKey identifies an inline delta (from an Admission) by content.
func pushKey(p *wire.Push) [32]byte {
	b, _ := json.Marshal(p)
	return sha256.Sum256(b)
}

// derive returns base with changes applied (shared with every DSN that did the same).
func (c *configs) derive(base *objectSet, key [32]byte, changes []wire.Change) *objectSet {
	if len(changes) == 0 {
		return base
	}
	dk := base.key + "|" + hex.EncodeToString(key[:8])
	c.mu.Lock()
	s, ok := c.derived[dk]
	c.mu.Unlock()
	if ok {
		return s
	}
	objects := make(map[model.Key]held, len(base.objects)+len(changes))
	for k, v := range base.objects {
		objects[k] = v
	}
	for i := range changes {
		ch := &changes[i]
		k := ch.Key()
		cur, have := objects[k]
		switch ch.Op {
		case wire.OpPut:
			if !have || ch.Revision > cur.rev {
				objects[k] = held{obj: ch.Object, rev: ch.Revision}
			}
		case wire.OpDelete:
			if have && ch.Revision > cur.rev {
				delete(objects, k)
			}
		}
	}
	sum := sha256.Sum256([]byte(dk))
	s = newObjectSet("d"+hex.EncodeToString(sum[:12]), objects)
	c.mu.Lock()
	if len(c.derived) >= maxInterned {
		clear(c.derived)
	}
	c.derived[dk] = s
	c.remember(s)
	c.mu.Unlock()
	return s
}

// decodeSnapshot checks a fetched snapshot object against its reference and decodes it. An
// object rewritten since the reference was made (a later revision) is as good.
func (c *configs) decodeSnapshot(ref *wire.SnapshotRef, data []byte) (*snapshot, error) {
	sum := sha256.Sum256(data)
	c.mu.Lock()
	s, ok := c.snapshots[sum]
	c.mu.Unlock()
	if !ok {
		var raw wire.Snapshot
		if err := wire.Unmarshal(data, &raw); err != nil {
			return nil, err
		}
		objects := make(map[model.Key]held, len(raw.Objects))
		for i := range raw.Objects {
			o := &raw.Objects[i]
			objects[o.Key()] = held{obj: o, rev: revisionOf(o, raw.Revision)}
		}
		s = &snapshot{group: raw.Group, rev: raw.Revision, objs: newObjectSet("s"+hex.EncodeToString(sum[:12]), objects)}
		c.mu.Lock()
		if len(c.snapshots) >= maxInterned {
			clear(c.snapshots)
		}
		c.snapshots[sum] = s
		c.remember(s.objs)
		c.mu.Unlock()
	}
	if s.rev < ref.Revision {
		return nil, fmt.Errorf("snapshot %s/%s: revision %d, older than the expected %d", ref.Bucket, ref.Object, s.rev, ref.Revision)
	}
	if s.rev == ref.Revision && ref.SHA256 != "" && hex.EncodeToString(sum[:]) != ref.SHA256 {
		return nil, fmt.Errorf("snapshot %s/%s: sha256 mismatch", ref.Bucket, ref.Object)
	}
	return s, nil
}

// setFromObjects interns an object set read back from a cache file.
func (c *configs) setFromObjects(key string, objs []model.Object, rev uint64) *objectSet {
	c.mu.Lock()
	s, ok := c.byKey[key]
	c.mu.Unlock()
	if ok {
		return s
	}
	objects := make(map[model.Key]held, len(objs))
	for i := range objs {
		o := &objs[i]
		objects[o.Key()] = held{obj: o, rev: revisionOf(o, rev)}
	}
	s = newObjectSet(key, objects)
	c.mu.Lock()
	c.remember(s)
	c.mu.Unlock()
	return s
}

// revisionOf is an object's revision from its resourceVersion, or fallback.
func revisionOf(o *model.Object, fallback uint64) uint64 {
	if v, err := strconv.ParseUint(o.Metadata.ResourceVersion, 10, 64); err == nil && v > 0 {
		return v
	}
	return fallback
}
