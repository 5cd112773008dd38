package store

import (
	"encoding/json"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/model"
)

// putDirect writes a key straight into the bucket through the KV API, as another client would.
func putDirect(t *testing.T, e *env, o *model.Object) Revision {
	t.Helper()
	kv, err := e.js.KeyValue(ctxT(t), "intent")
	require.NoError(t, err, "the bucket stays bindable by KV clients")
	skey, err := kvKey(o.Key())
	require.NoError(t, err)
	b, err := json.Marshal(o)
	require.NoError(t, err)
	rev, err := kv.Put(ctxT(t), skey, b)
	require.NoError(t, err)
	return rev
}

// TestServerSideCASFails checks that when another client wrote a key behind the store's back,
// the server refuses the whole batch, nothing of it is stored, and the store learns the write.
func TestServerSideCASFails(t *testing.T) {
	e := newEnv(t, Config{})
	s := e.st
	stored, _ := mustCommit(t, s, create(network("a", "x", 1)))
	x := stored[0]
	w, err := s.Watch(ctxT(t), 1)
	require.NoError(t, err)

	foreign := network("a", "x", 42)
	foreign.Metadata.Labels = map[string]string{"by": "other"}
	frev := putDirect(t, e, foreign)
	require.Equal(t, Revision(2), frev)

	// The store has not seen the foreign write, so its own checks pass; the server's do not.
	x.Metadata.Labels = map[string]string{"by": "store"}
	_, _, err = s.Commit(ctxT(t), []Op{create(network("a", "y", 1)), update(x), create(network("b", "z", 1))}, nil, false)
	require.ErrorIs(t, err, ErrConflict)
	assert.ErrorContains(t, err, "Network/a/x")

	info, err := s.stream.Info(ctxT(t))
	require.NoError(t, err)
	assert.Equal(t, uint64(2), info.State.LastSeq, "the failed batch left nothing in the stream")
	for _, subj := range []string{"Network.a.y", "Network.b.z"} {
		_, err := s.stream.GetLastMsgForSubject(ctxT(t), s.prefix+subj)
		assert.ErrorIs(t, err, jetstream.ErrMsgNotFound, subj)
	}

	// The store read the foreign write while handling the conflict.
	assert.Equal(t, Revision(2), s.Revision())
	got, err := s.Get(ctxT(t), x.Key())
	require.NoError(t, err)
	assert.Equal(t, "other", got.Metadata.Labels["by"])
	assert.Equal(t, "2", got.Metadata.ResourceVersion)
	assert.Equal(t, Revision(1), got.Metadata.CreationRevision, "a foreign write to a live key is an update")
	evs := collect(t, w, 1)
	assert.Equal(t, Event{Revision: 2, Type: OpUpdate, Key: x.Key(), Object: evs[0].Object}, evs[0])

	// A single op, which is a plain publish rather than a batch, is checked the same way.
	putDirect(t, e, foreign)
	_, _, err = s.Commit(ctxT(t), []Op{update(got)}, nil, false)
	require.ErrorIs(t, err, ErrConflict)
	assert.Equal(t, Revision(3), s.Revision())
	got, err = s.Get(ctxT(t), x.Key())
	require.NoError(t, err)
	assert.Equal(t, "3", got.Metadata.ResourceVersion)

	// A retry against what is stored now succeeds.
	got.Metadata.Labels["by"] = "store"
	objs, rev, err := s.Commit(ctxT(t), []Op{update(got), create(network("a", "y", 1))}, nil, false)
	require.NoError(t, err)
	assert.Equal(t, Revision(5), rev)
	assert.Equal(t, "4", objs[0].Metadata.ResourceVersion)
}

// TestForeignWriteBetweenCommits checks that a write to another key from elsewhere, which the
// server lets through, still reaches the index and the event log in revision order.
func TestForeignWriteBetweenCommits(t *testing.T) {
	e := newEnv(t, Config{})
	s := e.st
	mustCommit(t, s, create(network("a", "x", 1)))
	putDirect(t, e, network("a", "other", 7))
	_, rev := mustCommit(t, s, create(network("a", "y", 1)))
	assert.Equal(t, Revision(3), rev)
	assert.Equal(t, Revision(3), s.Revision())

	w, err := s.Watch(ctxT(t), 0)
	require.NoError(t, err)
	evs := collect(t, w, 3)
	var keys []string
	for i, ev := range evs {
		assert.Equal(t, Revision(i+1), ev.Revision)
		assert.Equal(t, OpCreate, ev.Type)
		keys = append(keys, ev.Key.Name)
	}
	assert.Equal(t, []string{"x", "other", "y"}, keys)
	o, err := s.Get(ctxT(t), model.Key{Kind: model.KindNetwork, Tenant: "a", Name: "other"})
	require.NoError(t, err)
	assert.Equal(t, "2", o.Metadata.ResourceVersion)
	assert.Equal(t, Revision(2), o.Metadata.CreationRevision)

	// A foreign delete, a value that is not an object and a key outside the scheme.
	kv, err := e.js.KeyValue(ctxT(t), "intent")
	require.NoError(t, err)
	require.NoError(t, kv.Delete(ctxT(t), "Network.a.other"))
	_, err = kv.Put(ctxT(t), "Network.a.x", []byte("not json"))
	require.NoError(t, err)
	_, err = kv.Put(ctxT(t), "not.a.valid.key", []byte("{}"))
	require.NoError(t, err)
	_, rev = mustCommit(t, s, create(network("a", "z", 1)))
	assert.Equal(t, Revision(7), rev)
	evs = collect(t, w, 3)
	assert.Equal(t, []Revision{4, 5, 7}, []Revision{evs[0].Revision, evs[1].Revision, evs[2].Revision})
	assert.Equal(t, []OpType{OpDelete, OpDelete, OpCreate}, []OpType{evs[0].Type, evs[1].Type, evs[2].Type})
	assert.Equal(t, "2", evs[0].Object.Metadata.ResourceVersion, "a foreign delete reports the last known state")
	_, err = s.Get(ctxT(t), model.Key{Kind: model.KindNetwork, Tenant: "a", Name: "x"})
	assert.ErrorIs(t, err, ErrNotFound, "a value that is not an object leaves the key deleted")

	e.restart()
	assert.Equal(t, Revision(7), e.st.Revision())
	ch, err := e.st.Changes(0, 7)
	require.NoError(t, err)
	var got []string
	for _, ev := range ch {
		got = append(got, string(ev.Type)+" "+ev.Key.Name)
	}
	assert.Equal(t, []string{"create y", "delete other", "delete x", "create z"}, got)
}
