package distrib

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Partition returns the partition of DSN id among n: a stable hash (FNV-1a), so that every
// replica puts a DSN in the same partition.
func Partition(id string, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return int(h.Sum32() % uint32(n))
}

// Keys of the owners bucket: one lease per partition and one heartbeat per live replica.
const (
	partitionKeyPrefix = "p."
	replicaKeyPrefix   = "r."
)

// deadReplicaLeases is how many lease periods a replica's heartbeat may stand still before
// another replica deletes it.
const deadReplicaLeases = 10

func partitionKey(p int) string { return partitionKeyPrefix + strconv.Itoa(p) }

// leaseValue is the value of a partition lease or of a replica heartbeat.
type leaseValue struct {
	Owner string `json:"owner"`
	// Partitions is the partition count of a replica, in its heartbeat: replicas that disagree
	// on it would serve some DSNs twice.
	Partitions int `json:"partitions,omitempty"`
}

// leaseEntry is one key of the owners bucket as last read.
type leaseEntry struct {
	value    []byte
	revision uint64
}

// errLeaseConflict is a compare-and-set that lost: the key is not at the revision given.
var errLeaseConflict = errors.New("lease changed meanwhile")

// leaseStore is the bucket the leases live in. Writes are compare-and-set on the key's
// revision, so that of two replicas racing for a key at most one succeeds.
type leaseStore interface {
	// entries returns the keys the store knows of, with their values and revisions; deleted
	// keys are absent. It may lag behind writes.
	entries() map[string]leaseEntry
	// create writes key if it does not exist (or was deleted).
	create(ctx context.Context, key string, value []byte) (uint64, error)
	// update writes key if it is at revision last.
	update(ctx context.Context, key string, value []byte, last uint64) (uint64, error)
	// remove deletes key if it is at revision last.
	remove(ctx context.Context, key string, last uint64) error
}

// leaser holds partition leases for one replica.
//
// Expiry needs no synchronised clocks: a replica counts a lease as expired once it has seen
// the same revision of it for a whole lease period on its own clock, while the holder believes
// in a lease only until one lease period after it started the write that renewed it. The
// observer saw the revision after that write, so the holder's belief ends first. Every
// acquisition is a compare-and-set on the revision the observer waited on, so two replicas
// never both believe they hold a partition (assuming clocks that run at the same rate).
type leaser struct {
	name  string
	parts int
	lease time.Duration
	clock interface{ Now() time.Time }
	store leaseStore

	seen  map[string]seenAt // by key: the revision last seen and when it was first seen
	owned map[int]heldLease
	hbRev uint64 // revision of this replica's heartbeat; 0 before the first write
	live  []string
}

type seenAt struct {
	revision uint64
	at       time.Time
}

// heldLease is a lease this replica wrote last. Its belief may have lapsed (a renewal came
// late): renewing it on the revision written brings it back, since nobody else wrote since.
type heldLease struct {
	revision uint64
	until    time.Time // the end of this replica's belief
}

func newLeaser(name string, parts int, lease time.Duration, clock interface{ Now() time.Time }, store leaseStore) *leaser {
	return &leaser{name: name, parts: parts, lease: lease, clock: clock, store: store,
		seen: map[string]seenAt{}, owned: map[int]heldLease{}}
}

// owns reports whether the replica believes it holds partition p at now.
func (l *leaser) owns(p int, now time.Time) bool {
	h, ok := l.owned[p]
	return ok && now.Before(h.until)
}

// held returns the partitions held at now and when each belief ends.
func (l *leaser) held(now time.Time) map[int]time.Time {
	out := make(map[int]time.Time, len(l.owned))
	for p, h := range l.owned {
		if now.Before(h.until) {
			out[p] = h.until
		}
	}
	return out
}

// errPartitionCount is a live replica whose partition count differs from this one's.
var errPartitionCount = errors.New("replicas disagree on the partition count")

// tick renews this replica's heartbeat and leases, then releases surplus partitions or takes
// free and expired ones so that each of n live replicas holds at most ceil(P/n).
func (l *leaser) tick(ctx context.Context) error {
	start := l.clock.Now()
	ents := l.store.entries()
	for k, e := range ents {
		if s, ok := l.seen[k]; !ok || s.revision != e.revision {
			l.seen[k] = seenAt{revision: e.revision, at: start}
		}
	}
	for k := range l.seen {
		if _, ok := ents[k]; !ok {
			delete(l.seen, k)
		}
	}

	// The heartbeat.
	hb, _ := json.Marshal(leaseValue{Owner: l.name, Partitions: l.parts})
	var err error
	hbKey := replicaKeyPrefix + l.name
	if e, ok := ents[hbKey]; ok && l.hbRev == 0 {
		l.hbRev = e.revision // this replica's name, from before a restart
	}
	if l.hbRev == 0 {
		l.hbRev, err = l.store.create(ctx, hbKey, hb)
	} else {
		l.hbRev, err = l.store.update(ctx, hbKey, hb, l.hbRev)
	}
	if err != nil {
		// Leases are renewed all the same: a missed heartbeat costs balance, not safety.
		l.hbRev = 0
		err = fmt.Errorf("replica heartbeat: %w", err)
	}

	// Live replicas: those whose heartbeat moved within a lease period.
	l.live = l.live[:0]
	for k, e := range ents {
		name, ok := strings.CutPrefix(k, replicaKeyPrefix)
		if !ok || name == l.name || start.Sub(l.seen[k].at) >= l.lease {
			continue
		}
		var v leaseValue
		if json.Unmarshal(e.value, &v) == nil && v.Partitions != 0 && v.Partitions != l.parts {
			return fmt.Errorf("%w: replica %s has %d partitions, this one %d", errPartitionCount, name, v.Partitions, l.parts)
		}
		l.live = append(l.live, name)
	}
	l.live = append(l.live, l.name)
	slices.Sort(l.live)
	// Forget replicas long gone, so that the bucket does not keep every name ever used.
	for k, e := range ents {
		if name, ok := strings.CutPrefix(k, replicaKeyPrefix); ok && name != l.name && start.Sub(l.seen[k].at) >= deadReplicaLeases*l.lease {
			_ = l.store.remove(ctx, k, e.revision)
		}
	}
	target := (l.parts + len(l.live) - 1) / len(l.live)

	mine, _ := json.Marshal(leaseValue{Owner: l.name})
	until := start.Add(l.lease)
	// Renew.
	renew := slices.Sorted(maps.Keys(l.owned))
	revs, errs := l.writeAll(renew, func(p int) (uint64, error) {
		return l.store.update(ctx, partitionKey(p), mine, l.owned[p].revision)
	})
	for i, p := range renew {
		switch {
		case errs[i] == nil:
			l.owned[p] = heldLease{revision: revs[i], until: until}
		case errors.Is(errs[i], errLeaseConflict):
			delete(l.owned, p) // someone else wrote it: it is not ours
		}
		// Any other error keeps the belief until it ends: the write may not have happened.
	}
	// Release the surplus, least preferred first: stop believing, then delete.
	if len(l.owned) > target {
		ps := l.byPreference(slices.Collect(maps.Keys(l.owned)))
		for _, p := range ps[target:] {
			rev := l.owned[p].revision
			delete(l.owned, p)
			_ = l.store.remove(ctx, partitionKey(p), rev)
		}
	}
	// Take free and expired partitions, most preferred first.
	if need := target - len(l.owned); need > 0 {
		var cands []int
		for p := 0; p < l.parts; p++ {
			if _, ok := l.owned[p]; !ok {
				cands = append(cands, p)
			}
		}
		var take []int
		for _, p := range l.byPreference(cands) {
			if len(take) == need {
				break
			}
			k := partitionKey(p)
			e, exists := ents[k]
			// Free; or written by this replica before it restarted or lost track of a
			// renewal (the revision seen is the last write, so nobody else holds it); or
			// expired.
			if !exists || ownerOf(e.value) == l.name || start.Sub(l.seen[k].at) >= l.lease {
				take = append(take, p)
			}
		}
		revs, errs := l.writeAll(take, func(p int) (uint64, error) {
			k := partitionKey(p)
			if e, exists := ents[k]; exists {
				return l.store.update(ctx, k, mine, e.revision)
			}
			return l.store.create(ctx, k, mine)
		})
		for i, p := range take {
			if errs[i] == nil {
				l.owned[p] = heldLease{revision: revs[i], until: until}
			}
		}
	}
	return err
}

// maxLeaseWrites bounds the lease writes in flight at once: renewing one by one would take
// a round trip per partition.
const maxLeaseWrites = 16

// writeAll runs write for every partition of ps, up to maxLeaseWrites at once, and returns
// the revisions and errors in the order of ps.
func (l *leaser) writeAll(ps []int, write func(p int) (uint64, error)) ([]uint64, []error) {
	revs, errs := make([]uint64, len(ps)), make([]error, len(ps))
	sem := make(chan struct{}, maxLeaseWrites)
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			revs[i], errs[i] = write(p)
		}()
	}
	wg.Wait()
	return revs, errs
}

// release gives up every lease and the heartbeat, so that other replicas take over at once.
func (l *leaser) release(ctx context.Context) {
	for p, h := range l.owned {
		delete(l.owned, p)
		_ = l.store.remove(ctx, partitionKey(p), h.revision)
	}
	if l.hbRev != 0 {
		_ = l.store.remove(ctx, replicaKeyPrefix+l.name, l.hbRev)
		l.hbRev = 0
	}
}

// byPreference orders partitions by this replica's rendezvous hash, so that replicas prefer
// different partitions and a restarted replica prefers the ones it had.
func (l *leaser) byPreference(ps []int) []int {
	score := func(p int) uint32 {
		h := fnv.New32a()
		_, _ = h.Write([]byte(l.name + "/" + strconv.Itoa(p)))
		return h.Sum32()
	}
	slices.SortFunc(ps, func(a, b int) int {
		sa, sb := score(a), score(b)
		switch {
		case sa > sb:
			return -1
		case sa < sb:
			return 1
		}
		return a - b
	})
	return ps
}

func ownerOf(value []byte) string {
	var v leaseValue
	if json.Unmarshal(value, &v) != nil {
		return ""
	}
	return v.Owner
}
