package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/model"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"zero", Config{}, ""},
		{"full", Config{Bucket: "intent_2-x", WatchBuffer: 1, MaxHistoryEvents: 10, RequestTimeout: 1}, ""},
		{"dotted bucket", Config{Bucket: "a.b"}, `bucket "a.b"`},
		{"wildcard bucket", Config{Bucket: "a*"}, `bucket "a*"`},
		{"long bucket", Config{Bucket: strings.Repeat("b", 201)}, "longer than 200"},
		{"negative buffer", Config{WatchBuffer: -1}, "watchBuffer -1"},
		{"negative history", Config{MaxHistoryEvents: -1}, "maxHistoryEvents -1"},
		{"negative timeout", Config{RequestTimeout: -1}, "requestTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.want)
		})
	}
}

// TestCommitErrors checks every way a Commit is refused, and that a refused one changes nothing.
func TestCommitErrors(t *testing.T) {
	e := newEnv(t, Config{})
	s := e.st
	stored, _ := mustCommit(t, s, create(network("a", "x", 1)), create(obj(model.KindTenant, "", "t1", nil, nil)))
	x := stored[0]
	gone, _ := mustCommit(t, s, create(network("a", "gone", 3)))
	mustCommit(t, s, del(gone[0]))
	base := s.Revision()
	require.Equal(t, Revision(4), base)

	withRV := func(o *model.Object, v string) *model.Object {
		o = cloneObject(o)
		o.Metadata.ResourceVersion = v
		return o
	}
	big := network("a", "big", 1)
	big.Spec = json.RawMessage(`"` + strings.Repeat("x", 2<<20) + `"`)
	many := make([]Op, MaxBatchOps+1)
	for i := range many {
		many[i] = create(network("a", fmt.Sprintf("n%d", i), 1))
	}

	tests := []struct {
		name    string
		ops     []Op
		wantErr error
		wantMsg string
	}{
		{"no ops", nil, ErrInvalid, "no ops"},
		{"nil object", []Op{{Type: OpCreate}}, ErrInvalid, "ops[0]: create without an object"},
		{"unknown type", []Op{{Type: "patch", Object: network("a", "n", 1)}}, ErrInvalid, `unknown op type "patch"`},
		{"create existing", []Op{create(network("a", "x", 9))}, ErrAlreadyExists, "Network/a/x"},
		{"create with resourceVersion", []Op{create(withRV(network("a", "n", 1), "3"))}, ErrInvalid, "Network/a/n"},
		{"create with expected revision", []Op{{Type: OpCreate, Object: network("a", "n", 1), ExpectedRevision: 3}}, ErrInvalid, "Network/a/n"},
		{"update missing", []Op{update(network("a", "nope", 1))}, ErrNotFound, "Network/a/nope"},
		{"update deleted", []Op{update(network("a", "gone", 1))}, ErrNotFound, "Network/a/gone"},
		{"delete missing", []Op{del(network("b", "x", 1))}, ErrNotFound, "Network/b/x"},
		{"update stale resourceVersion", []Op{update(withRV(x, "2"))}, ErrConflict, "Network/a/x: resourceVersion 2, stored 1"},
		{"update wrong expected revision", []Op{{Type: OpUpdate, Object: x, ExpectedRevision: 7}}, ErrConflict, "expected revision 7"},
		{"delete stale resourceVersion", []Op{del(withRV(x, "9"))}, ErrConflict, "Network/a/x"},
		{"delete wrong expected revision", []Op{{Type: OpDelete, Object: x, ExpectedRevision: 2}}, ErrConflict, "Network/a/x"},
		{"resourceVersion not a number", []Op{update(withRV(x, "abc"))}, ErrInvalid, `resourceVersion "abc"`},
		{"resourceVersion zero", []Op{update(withRV(x, "0"))}, ErrInvalid, `resourceVersion "0"`},
		{"same key twice", []Op{create(network("a", "n", 1)), del(network("a", "n", 1))}, ErrInvalid, "also written by ops[0]"},
		{"valid then invalid", []Op{create(network("a", "n", 1)), update(network("a", "nope", 1))}, ErrNotFound, "Network/a/nope"},
		{"invalid then valid", []Op{create(network("a", "x", 1)), create(network("a", "n", 1))}, ErrAlreadyExists, "Network/a/x"},
		{"dot in name", []Op{create(network("a", "b.c", 1))}, ErrInvalid, `name "b.c"`},
		{"wildcard name", []Op{create(network("a", "*", 1))}, ErrInvalid, `name "*"`},
		{"full wildcard name", []Op{create(network("a", ">", 1))}, ErrInvalid, `name ">"`},
		{"space in tenant", []Op{create(network("a b", "n", 1))}, ErrInvalid, `tenant "a b"`},
		{"empty name", []Op{create(network("a", "", 1))}, ErrInvalid, "name is empty"},
		{"reserved tenant", []Op{create(network("_", "n", 1))}, ErrInvalid, "reserved"},
		{"empty kind", []Op{create(obj("", "", "n", nil, nil))}, ErrInvalid, "kind is empty"},
		{"long name", []Op{create(network("a", strings.Repeat("n", 300), 1))}, ErrInvalid, "at most 253"},
		{"too many ops", many, ErrInvalid, "at most 1000"},
		{"too large", []Op{create(big)}, ErrInvalid, "bytes encoded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, dry := range []bool{false, true} {
				objs, rev, err := s.Commit(ctxT(t), tt.ops, nil, dry)
				require.ErrorIs(t, err, tt.wantErr, "dryRun=%v", dry)
				assert.ErrorContains(t, err, tt.wantMsg)
				assert.Nil(t, objs)
				assert.Zero(t, rev)
			}
			assert.Equal(t, base, s.Revision(), "a refused commit changed the revision")
			got, err := s.Get(ctxT(t), x.Key())
			require.NoError(t, err)
			assert.Equal(t, x, got)
			_, err = s.Get(ctxT(t), model.Key{Kind: model.KindNetwork, Tenant: "a", Name: "n"})
			assert.ErrorIs(t, err, ErrNotFound)
		})
	}
	info, err := s.stream.Info(ctxT(t))
	require.NoError(t, err)
	assert.Equal(t, uint64(4), info.State.LastSeq, "a refused commit reached the stream")
}

func TestCheckSeesStateAfterOps(t *testing.T) {
	e := newEnv(t, Config{})
	s := e.st
	stored, _ := mustCommit(t, s, create(network("a", "x", 1)), create(network("a", "y", 2)))
	x, y := stored[0], stored[1]
	x2 := cloneObject(x)
	x2.Metadata.Labels = map[string]string{"v": "2"}
	ops := []Op{update(x2), del(y), create(network("a", "z", 3)), create(network("b", "w", 4))}

	var seen []string
	check := func(v View) error {
		seen = nil
		for _, o := range v.List(model.KindNetwork, "") {
			seen = append(seen, o.Key().String()+"="+o.Metadata.Labels["v"])
		}
		if _, ok := v.Get(y.Key()); ok {
			return errors.New("deleted object still visible")
		}
		assert.Len(t, v.List(model.KindNetwork, "a"), 2)
		return nil
	}
	want := []string{"Network/a/x=2", "Network/a/z=", "Network/b/w="}

	// A dry run checks and reports, and writes nothing.
	objs, rev, err := s.Commit(ctxT(t), ops, check, true)
	require.NoError(t, err)
	assert.Equal(t, want, seen)
	assert.Equal(t, Revision(2), rev)
	require.Len(t, objs, 4)
	assert.Empty(t, objs[0].Metadata.ResourceVersion)
	assert.Equal(t, Revision(1), objs[0].Metadata.CreationRevision)
	assert.Equal(t, y, objs[1], "a delete reports the last state")
	assert.Equal(t, Revision(2), s.Revision())

	// A failing check aborts the batch with its own error.
	errCheck := errors.New("policy refers to a missing network")
	_, _, err = s.Commit(ctxT(t), ops, func(View) error { return errCheck }, false)
	require.Same(t, errCheck, err)
	assert.Equal(t, Revision(2), s.Revision())

	objs, rev, err = s.Commit(ctxT(t), ops, check, false)
	require.NoError(t, err)
	assert.Equal(t, Revision(6), rev, "ops get consecutive revisions")
	assert.Equal(t, "3", objs[0].Metadata.ResourceVersion)
	assert.Equal(t, Revision(1), objs[0].Metadata.CreationRevision)
	assert.Equal(t, y, objs[1])
	assert.Equal(t, "5", objs[2].Metadata.ResourceVersion)
	assert.Equal(t, Revision(5), objs[2].Metadata.CreationRevision)
	view, vrev := s.Snapshot()
	assert.Equal(t, Revision(6), vrev)
	var keys []string
	for _, o := range view.List(model.KindNetwork, "") {
		keys = append(keys, o.Key().String())
	}
	assert.Equal(t, []string{"Network/a/x", "Network/a/z", "Network/b/w"}, keys)
}

func TestCreateAfterDelete(t *testing.T) {
	e := newEnv(t, Config{})
	s := e.st
	a, _ := mustCommit(t, s, create(network("a", "x", 1)))
	mustCommit(t, s, del(a[0]))
	b, rev := mustCommit(t, s, create(network("a", "x", 2)))
	assert.Equal(t, Revision(3), rev)
	assert.Equal(t, Revision(3), b[0].Metadata.CreationRevision)
	ch, err := s.Changes(0, rev)
	require.NoError(t, err)
	require.Len(t, ch, 1, "coalesced to the latest per key")
	assert.Equal(t, OpCreate, ch[0].Type)

	e.restart()
	got, err := e.st.Get(ctxT(t), b[0].Key())
	require.NoError(t, err)
	assert.Equal(t, b[0], got)
	w, err := e.st.Watch(ctxT(t), 0)
	require.NoError(t, err)
	evs := collect(t, w, 3)
	assert.Equal(t, []OpType{OpCreate, OpDelete, OpCreate}, []OpType{evs[0].Type, evs[1].Type, evs[2].Type})
	assert.Equal(t, "1", evs[1].Object.Metadata.ResourceVersion, "a delete event carries the last state")
}

func TestGetAndViewsAreIsolated(t *testing.T) {
	e := newEnv(t, Config{})
	s := e.st
	in := obj(model.KindNetwork, "a", "x", map[string]string{"k": "v"}, model.NetworkSpec{VLAN: 1})
	stored, _ := mustCommit(t, s, create(in))
	in.Metadata.Labels["k"] = "changed by the caller after commit"
	stored[0].Metadata.Labels["k"] = "changed in the result"

	got, err := s.Get(ctxT(t), in.Key())
	require.NoError(t, err)
	assert.Equal(t, "v", got.Metadata.Labels["k"])
	got.Metadata.Labels["k"] = "changed by a reader"
	got.Spec[0] = ' '
	again, err := s.Get(ctxT(t), in.Key())
	require.NoError(t, err)
	assert.Equal(t, "v", again.Metadata.Labels["k"])
	assert.JSONEq(t, `{"cidr":"","vlan":1}`, string(again.Spec))

	view, rev := s.Snapshot()
	again.Metadata.Labels["k"] = "w"
	mustCommit(t, s, update(again), create(network("a", "y", 2)))
	o, ok := view.Get(in.Key())
	require.True(t, ok)
	assert.Equal(t, "v", o.Metadata.Labels["k"], "an old view does not change")
	assert.Len(t, view.List(model.KindNetwork, "a"), 1)
	assert.Equal(t, Revision(1), rev)
}

func TestList(t *testing.T) {
	e := newEnv(t, Config{})
	s := e.st
	var ops []Op
	for _, tenant := range []string{"b", "a", "a-b", "c"} {
		for i := range 6 {
			labels := map[string]string{"parity": []string{"even", "odd"}[i%2]}
			ops = append(ops, create(obj(model.KindNetwork, tenant, fmt.Sprintf("n%d", i), labels, nil)))
		}
	}
	ops = append(ops, create(obj(model.KindTenant, "", "a", nil, nil)), create(obj(model.KindDSN, "", "d1", map[string]string{"parity": "even"}, nil)))
	_, rev := mustCommit(t, s, ops...)

	keys := func(objs []*model.Object) []string {
		var out []string
		for _, o := range objs {
			out = append(out, o.Metadata.Tenant+"/"+o.Metadata.Name)
		}
		return out
	}
	all, err := s.List(ctxT(t), model.KindNetwork, ListOptions{})
	require.NoError(t, err)
	assert.Equal(t, rev, all.Revision)
	assert.Empty(t, all.Continue)
	require.Len(t, all.Items, 24)
	assert.Equal(t, "a/n0", keys(all.Items)[0])
	assert.Equal(t, "a-b/n0", keys(all.Items)[6], "key order is tenant order, not encoded order")

	// Pages of 5 over the odd networks of every tenant.
	var paged []string
	opts := ListOptions{Selector: map[string]string{"parity": "odd"}, Limit: 5}
	for page := 0; ; page++ {
		require.Less(t, page, 10)
		res, err := s.List(ctxT(t), model.KindNetwork, opts)
		require.NoError(t, err)
		paged = append(paged, keys(res.Items)...)
		if res.Continue == "" {
			break
		}
		assert.Len(t, res.Items, 5)
		opts.Continue = res.Continue
	}
	assert.Len(t, paged, 12)
	for _, k := range paged {
		assert.Regexp(t, `n[135]$`, k)
	}

	res, err := s.List(ctxT(t), model.KindNetwork, ListOptions{Tenant: "a", Limit: 6})
	require.NoError(t, err)
	assert.Equal(t, []string{"a/n0", "a/n1", "a/n2", "a/n3", "a/n4", "a/n5"}, keys(res.Items))
	assert.Empty(t, res.Continue, "an exactly full last page has no continue token")

	res, err = s.List(ctxT(t), model.KindDSN, ListOptions{Selector: map[string]string{"parity": "even"}})
	require.NoError(t, err)
	assert.Equal(t, []string{"/d1"}, keys(res.Items))
	res, err = s.List(ctxT(t), model.KindPolicy, ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, res.Items)

	tenantToken := encodeContinue(model.Key{Kind: model.KindTenant, Name: "a"})
	for name, opts := range map[string]ListOptions{
		"negative limit":  {Limit: -1},
		"garbage token":   {Continue: "!!!"},
		"not a key":       {Continue: "bm90IGEga2V5"},
		"other kind":      {Continue: tenantToken},
		"wildcard inside": {Continue: encodeContinueRaw("Network.a.*")},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := s.List(ctxT(t), model.KindNetwork, opts)
			require.ErrorIs(t, err, ErrInvalid)
		})
	}
}

func TestCloseEndsEverything(t *testing.T) {
	e := newEnv(t, Config{})
	s := e.st
	mustCommit(t, s, create(network("a", "x", 1)))
	w, err := s.Watch(context.Background(), 1)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close twice is fine")
	_, ok := <-w.Events()
	assert.False(t, ok)
	assert.ErrorIs(t, w.Err(), ErrClosed)

	ctx := ctxT(t)
	_, _, err = s.Commit(ctx, []Op{create(network("a", "y", 1))}, nil, false)
	assert.ErrorIs(t, err, ErrClosed)
	_, err = s.Get(ctx, model.Key{Kind: model.KindNetwork, Tenant: "a", Name: "x"})
	assert.ErrorIs(t, err, ErrClosed)
	_, err = s.List(ctx, model.KindNetwork, ListOptions{})
	assert.ErrorIs(t, err, ErrClosed)
	_, err = s.Watch(ctx, 0)
	assert.ErrorIs(t, err, ErrClosed)
	_, err = s.Changes(0, 1)
	assert.ErrorIs(t, err, ErrClosed)
	assert.ErrorIs(t, s.Compact(ctx, 1), ErrClosed)
	assert.False(t, e.nc.IsClosed(), "the connection belongs to the caller")
}

func TestKeyEncoding(t *testing.T) {
	tests := []struct {
		key  model.Key
		want string
	}{
		{model.Key{Kind: model.KindTenant, Name: "acme"}, "Tenant._.acme"},
		{model.Key{Kind: model.KindNetwork, Tenant: "acme", Name: "web-1"}, "Network.acme.web-1"},
	}
	for _, tt := range tests {
		got, err := kvKey(tt.key)
		require.NoError(t, err)
		assert.Equal(t, tt.want, got)
		back, err := parseKVKey(got)
		require.NoError(t, err)
		assert.Equal(t, tt.key, back)
	}
	for _, bad := range []string{"", "a.b", "a.b.c.d", "Network.a.", ".a.b", "Network.a.b*"} {
		_, err := parseKVKey(bad)
		assert.ErrorIs(t, err, ErrInvalid, bad)
	}
}

func FuzzDecodeContinue(f *testing.F) {
	f.Add(encodeContinue(model.Key{Kind: model.KindNetwork, Tenant: "a", Name: "x"}))
	f.Add("")
	f.Add("TmV0d29yay5hLng")
	f.Add(encodeContinueRaw("Network._.x"))
	f.Fuzz(func(t *testing.T, token string) {
		key, err := decodeContinue(token, model.KindNetwork)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalid)
			return
		}
		require.Equal(t, token, encodeContinue(key))
	})
}

// TestLastPresentSeesPastDeletedTail checks the leader probe that catchUp uses to tell a read
// that ended early (a lagging replica answered) from a stream whose last messages are gone.
func TestLastPresentSeesPastDeletedTail(t *testing.T) {
	e := newEnv(t, Config{})
	s := e.st
	for i := range 4 {
		mustCommit(t, s, create(network("a", "n"+strconv.Itoa(i), i+1)))
	}
	ctx := ctxT(t)
	got, err := s.lastPresent(ctx, 0, 4)
	require.NoError(t, err)
	assert.Equal(t, Revision(4), got, "the last message is there")

	// The bucket's stream denies deletes; a purge of a key's subject removes its messages.
	for _, name := range []string{"n2", "n3"} {
		skey, err := kvKey(network("a", name, 0).Key())
		require.NoError(t, err)
		require.NoError(t, s.stream.Purge(ctx, jetstream.WithPurgeSubject(s.prefix+skey)))
	}
	got, err = s.lastPresent(ctx, 1, 4)
	require.NoError(t, err)
	assert.Equal(t, Revision(2), got, "the probe steps back over a deleted tail")
	got, err = s.lastPresent(ctx, 2, 4)
	require.NoError(t, err)
	assert.Equal(t, Revision(2), got, "nothing after 2 is left: the answer is after itself")
}
