package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/dsnscale/dsnscale/controlplane/model"
)

// propKeys is the key space of the property test: small, so that ops collide often.
var propKeys = func() []model.Key {
	var keys []model.Key
	for _, name := range []string{"x", "y"} {
		keys = append(keys, model.Key{Kind: model.KindTenant, Name: name})
		for _, tenant := range []string{"a", "b"} {
			keys = append(keys, model.Key{Kind: model.KindNetwork, Tenant: tenant, Name: name})
		}
	}
	return keys
}()

var errPropCheck = errors.New("check refused the batch")

// propModel is the reference the store is checked against: a map and a list.
type propModel struct {
	objs    map[model.Key]*model.Object // as the store must return them
	rev     Revision
	horizon Revision
	events  []Event // every committed change above the horizon
	all     []Event // every committed change, for the live watch that saw them before compaction
}

func (m *propModel) compacted() Revision { return m.horizon }

func (m *propModel) eventsAfter(from Revision) []Event { return after(m.events, from) }

func after(evs []Event, from Revision) []Event {
	i := sort.Search(len(evs), func(i int) bool { return evs[i].Revision > from })
	return evs[i:]
}

// liveWatch follows the store from a revision and records what it gets.
type liveWatch struct {
	from   Revision
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	got    []Event
	w      Watcher
}

func startLiveWatch(t *rapid.T, s *KV, from Revision) *liveWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w, err := s.Watch(ctx, from)
	if err != nil {
		cancel()
		t.Fatalf("live watch from %d: %v", from, err)
	}
	lw := &liveWatch{from: from, cancel: cancel, done: make(chan struct{}), w: w}
	go func() {
		defer close(lw.done)
		for ev := range w.Events() {
			lw.mu.Lock()
			lw.got = append(lw.got, ev)
			lw.mu.Unlock()
		}
	}()
	return lw
}

// verify waits until the live watch has received every event up to rev and checks them.
func (lw *liveWatch) verify(t *rapid.T, m *propModel) {
	want := after(m.all, lw.from)
	deadline := time.Now().Add(10 * time.Second)
	for {
		lw.mu.Lock()
		n := len(lw.got)
		lw.mu.Unlock()
		if n >= len(want) || time.Now().After(deadline) {
			break
		}
		select {
		case <-lw.done:
			t.Fatalf("live watch ended early: %v", lw.w.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
	lw.mu.Lock()
	defer lw.mu.Unlock()
	requireEvents(t, want, lw.got, fmt.Sprintf("live watch from %d", lw.from))
}

func (lw *liveWatch) stop() {
	lw.cancel()
	<-lw.done
}

func requireEvents(t *rapid.T, want, got []Event, what string) {
	if len(got) != len(want) {
		t.Fatalf("%s: got %d events, want %d:\ngot  %s\nwant %s", what, len(got), len(want), renderEvents(got), renderEvents(want))
	}
	for i := range want {
		require.Equal(t, want[i], got[i], "%s: event %d", what, i)
	}
}

func renderEvents(evs []Event) string {
	var out []string
	for _, ev := range evs {
		out = append(out, fmt.Sprintf("%d:%s:%s", ev.Revision, ev.Type, ev.Key))
	}
	return fmt.Sprint(out)
}

type propOp struct {
	typ    OpType
	key    model.Key
	rvMode int // 0 none, 1 the stored one, 2 a wrong one, 3 ExpectedRevision stored, 4 ExpectedRevision wrong
	vlan   int
	labels map[string]string
}

var genPropOp = rapid.Custom(func(t *rapid.T) propOp {
	op := propOp{
		typ:    rapid.SampledFrom([]OpType{OpCreate, OpCreate, OpUpdate, OpUpdate, OpDelete}).Draw(t, "type"),
		key:    rapid.SampledFrom(propKeys).Draw(t, "key"),
		rvMode: rapid.IntRange(0, 4).Draw(t, "rvMode"),
		vlan:   rapid.IntRange(1, 4094).Draw(t, "vlan"),
	}
	if rapid.Bool().Draw(t, "labelled") {
		op.labels = map[string]string{"tier": rapid.SampledFrom([]string{"web", "db"}).Draw(t, "tier")}
	}
	return op
})

// TestStoreProperties runs random commits, dry runs, watches, compactions and restarts of the
// store and its server against propModel.
func TestStoreProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		e := startEnv(t, tempDir(t), Config{})
		m := &propModel{objs: map[model.Key]*model.Object{}}
		lw := startLiveWatch(t, e.st, 0)
		t.Cleanup(func() { lw.stop() })

		t.Repeat(map[string]func(*rapid.T){
			"commit": func(t *rapid.T) {
				ops := rapid.SliceOfN(genPropOp, 1, 4).Draw(t, "ops")
				dry := rapid.IntRange(0, 3).Draw(t, "dryRun") == 0
				refuse := rapid.IntRange(0, 5).Draw(t, "refuse") == 0
				propCommit(t, e.st, m, ops, dry, refuse)
			},
			"watch": func(t *rapid.T) {
				from := rapid.Uint64Range(0, m.rev+1).Draw(t, "from")
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				w, err := e.st.Watch(ctx, from)
				if from < m.compacted() {
					require.ErrorIs(t, err, ErrCompacted)
					return
				}
				require.NoError(t, err)
				want := m.eventsAfter(from)
				var got []Event
				for len(got) < len(want) {
					ev, ok := <-w.Events()
					if !ok {
						t.Fatalf("watch from %d ended after %d events: %v", from, len(got), w.Err())
					}
					got = append(got, ev)
				}
				requireEvents(t, want, got, fmt.Sprintf("watch from %d", from))
			},
			"changes": func(t *rapid.T) {
				from := rapid.Uint64Range(0, m.rev).Draw(t, "from")
				to := rapid.Uint64Range(from, m.rev+2).Draw(t, "to")
				got, err := e.st.Changes(from, to)
				if from < m.compacted() {
					require.ErrorIs(t, err, ErrCompacted)
					return
				}
				require.NoError(t, err)
				var want []Event
				seen := map[model.Key]bool{}
				evs := m.eventsAfter(from)
				for i := len(evs) - 1; i >= 0; i-- {
					if ev := evs[i]; ev.Revision <= to && !seen[ev.Key] {
						seen[ev.Key] = true
						want = append(want, ev)
					}
				}
				slices.Reverse(want)
				requireEvents(t, want, got, fmt.Sprintf("changes (%d, %d]", from, to))
			},
			"compact": func(t *rapid.T) {
				rev := rapid.Uint64Range(0, m.rev).Draw(t, "rev")
				lw.verify(t, m) // a watcher that is caught up survives compaction
				require.NoError(t, e.st.Compact(context.Background(), rev))
				if rev > m.horizon {
					m.horizon = rev
					m.events = m.eventsAfter(rev)
				}
			},
			"restart": func(t *rapid.T) {
				if rapid.IntRange(0, 3).Draw(t, "restartDice") != 0 {
					t.Skip("restart in a quarter of the draws only")
				}
				lw.verify(t, m)
				lw.stop()
				e.restart()
				lw = startLiveWatch(t, e.st, m.rev)
			},
			"": func(t *rapid.T) {
				s := e.st
				require.Equal(t, m.rev, s.Revision())
				require.Equal(t, m.compacted(), s.CompactedRevision())
				view, vrev := s.Snapshot()
				require.Equal(t, m.rev, vrev)
				for _, key := range propKeys {
					want := m.objs[key]
					got, err := s.Get(context.Background(), key)
					if want == nil {
						require.ErrorIs(t, err, ErrNotFound)
						_, ok := view.Get(key)
						require.False(t, ok)
						continue
					}
					require.NoError(t, err)
					require.Equal(t, want, got, "Get %s", key)
				}
				for _, kind := range []model.Kind{model.KindTenant, model.KindNetwork} {
					res, err := s.List(context.Background(), kind, ListOptions{})
					require.NoError(t, err)
					require.Equal(t, m.list(kind), res.Items, "List %s", kind)
				}
			},
		})
		lw.verify(t, m)
	})
}

func (m *propModel) list(kind model.Kind) []*model.Object {
	var out []*model.Object
	for _, key := range propKeys {
		if o := m.objs[key]; o != nil && key.Kind == kind {
			out = append(out, o)
		}
	}
	sort.Slice(out, func(i, j int) bool { return compareKeys(out[i].Key(), out[j].Key()) < 0 })
	return out
}

// propCommit commits ops and checks the outcome against the model, then applies it there.
func propCommit(t *rapid.T, s *KV, m *propModel, pops []propOp, dry, refuse bool) {
	ops := make([]Op, len(pops))
	for i, p := range pops {
		o := obj(p.key.Kind, p.key.Tenant, p.key.Name, p.labels, model.NetworkSpec{CIDR: "10.1.0.0/16", VLAN: p.vlan})
		op := Op{Type: p.typ, Object: o}
		cur := m.objs[p.key]
		var stored Revision
		if cur != nil {
			stored, _ = strconv.ParseUint(cur.Metadata.ResourceVersion, 10, 64)
		}
		switch p.rvMode {
		case 1:
			if stored != 0 {
				o.Metadata.ResourceVersion = rv(stored)
			}
		case 2:
			o.Metadata.ResourceVersion = rv(stored + 1000)
		case 3:
			op.ExpectedRevision = stored
		case 4:
			op.ExpectedRevision = stored + 1000
		}
		ops[i] = op
	}

	// What the model expects: the first failing op decides; otherwise the new objects.
	var wantErr error
	seen := map[model.Key]bool{}
	after := map[model.Key]*model.Object{}
	for i, op := range ops {
		key := op.Object.Key()
		cur := m.objs[key]
		rvSet := op.Object.Metadata.ResourceVersion != ""
		switch {
		case seen[key]:
			wantErr = ErrInvalid
		case op.Type == OpCreate && (rvSet || op.ExpectedRevision != 0):
			wantErr = ErrInvalid
		case op.Type == OpCreate && cur != nil:
			wantErr = ErrAlreadyExists
		case op.Type != OpCreate && cur == nil:
			wantErr = ErrNotFound
		case op.Type != OpCreate && ((rvSet && op.Object.Metadata.ResourceVersion != cur.Metadata.ResourceVersion) ||
			(op.ExpectedRevision != 0 && rv(op.ExpectedRevision) != cur.Metadata.ResourceVersion)):
			wantErr = ErrConflict
		}
		if wantErr != nil {
			break
		}
		seen[key] = true
		switch op.Type {
		case OpCreate:
			n := cloneObject(op.Object)
			n.Metadata.CreationRevision = m.rev + Revision(i) + 1
			after[key] = n
		case OpUpdate:
			n := cloneObject(op.Object)
			n.Metadata.ResourceVersion = ""
			n.Metadata.CreationRevision = cur.Metadata.CreationRevision
			after[key] = n
		case OpDelete:
			after[key] = nil
		}
	}

	var checked bool
	check := func(v View) error {
		checked = true
		for _, key := range propKeys {
			want, changed := after[key]
			if !changed {
				want = m.objs[key]
			}
			got, ok := v.Get(key)
			if want == nil {
				require.False(t, ok, "check view: %s should be absent", key)
				continue
			}
			require.True(t, ok, "check view: %s should be present", key)
			require.Equal(t, want.Spec, got.Spec, "check view: %s", key)
		}
		if refuse {
			return errPropCheck
		}
		return nil
	}
	objs, rev, err := s.Commit(context.Background(), ops, check, dry)
	if wantErr != nil {
		require.ErrorIs(t, err, wantErr)
		require.False(t, checked, "check ran for an invalid batch")
		return
	}
	require.True(t, checked)
	if refuse {
		require.ErrorIs(t, err, errPropCheck)
		return
	}
	require.NoError(t, err)
	require.Len(t, objs, len(ops))
	if dry {
		require.Equal(t, m.rev, rev)
		return
	}
	require.Equal(t, m.rev+Revision(len(ops)), rev)
	for i, op := range ops {
		key := op.Object.Key()
		r := m.rev + Revision(i) + 1
		ev := Event{Revision: r, Type: op.Type, Key: key}
		if op.Type == OpDelete {
			ev.Object = m.objs[key]
			require.Equal(t, m.objs[key], objs[i], "deleted %s", key)
			delete(m.objs, key)
		} else {
			n := after[key]
			n.Metadata.ResourceVersion = rv(r)
			require.Equal(t, n, objs[i], "stored %s", key)
			m.objs[key] = n
			ev.Object = n
		}
		m.events = append(m.events, ev)
		m.all = append(m.all, ev)
	}
	m.rev = rev
}
