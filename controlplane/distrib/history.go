package distrib

import (
	"slices"

	"github.com/dsnscale/dsnscale/controlplane/wire"
)

// bounds are the revisions at which past batches ended, oldest first. A DSN's applied revision
// is one of them unless it came from elsewhere (an older control plane, a forged Hello), and a
// catch-up delta can be built from history only from a revision that is one of them: from inside
// a batch, the changes that happened within it are not known one by one.
type bounds struct {
	limit int
	revs  []uint64
}

// add records the end of a batch.
func (b *bounds) add(rev uint64) {
	if n := len(b.revs); n > 0 && b.revs[n-1] >= rev {
		return
	}
	b.revs = append(b.revs, rev)
	if over := len(b.revs) - b.limit; over > 0 {
		// Drop in chunks so that trimming is amortised.
		over = max(over, b.limit/8)
		b.revs = append(b.revs[:0], b.revs[over:]...)
	}
}

// reset forgets all batches and starts again at rev.
func (b *bounds) reset(rev uint64) { b.revs = append(b.revs[:0], rev) }

// oldest is the oldest revision a delta can start from (0 if none).
func (b *bounds) oldest() uint64 {
	if len(b.revs) == 0 {
		return 0
	}
	return b.revs[0]
}

// covers reports whether a delta from rev can be built from history.
func (b *bounds) covers(rev uint64) bool {
	_, ok := slices.BinarySearch(b.revs, rev)
	return ok
}

// groupDelta is what changed in a group's view over one batch (from, to].
type groupDelta struct {
	from, to uint64
	changes  []wire.Change
}

// deltaLog keeps a group's non-empty batch deltas, oldest first.
type deltaLog []groupDelta

// add appends a batch's changes (nothing if empty) and drops entries older than oldest.
func (l deltaLog) add(d groupDelta, oldest uint64) deltaLog {
	if len(d.changes) > 0 {
		l = append(l, d)
	}
	i := 0
	for i < len(l) && l[i].from < oldest {
		i++
	}
	if i > 0 {
		l = append(l[:0], l[i:]...)
	}
	return l
}

// since returns the changes after rev, which must be a batch boundary the log still covers.
func (l deltaLog) since(rev uint64) []wire.Change {
	i, _ := slices.BinarySearchFunc(l, rev, func(d groupDelta, r uint64) int {
		switch {
		case d.from < r:
			return -1
		case d.from > r:
			return 1
		}
		return 0
	})
	rest := l[i:]
	switch len(rest) {
	case 0:
		return nil
	case 1:
		return rest[0].changes
	}
	lists := make([][]wire.Change, len(rest))
	for j, d := range rest {
		lists[j] = d.changes
	}
	return coalesce(lists...)
}
