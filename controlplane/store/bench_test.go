package store

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/internal/benchfig"
)

// seed creates n objects in batches and returns their keys.
func seed(b *testing.B, s *KV, n int) []model.Key {
	b.Helper()
	keys := make([]model.Key, n)
	for i := 0; i < n; i += benchBatchOps {
		var ops []Op
		for j := i; j < min(n, i+benchBatchOps); j++ {
			o := benchObject(j, 0)
			keys[j] = o.Key()
			ops = append(ops, Op{Type: OpCreate, Object: o})
		}
		_, _, err := s.Commit(context.Background(), ops, nil, false)
		require.NoError(b, err)
	}
	return keys
}

func BenchmarkCommit(b *testing.B) {
	e := newEnv(b, Config{})
	seed(b, e.st, benchObjects)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		_, _, err := e.st.Commit(context.Background(), []Op{{Type: OpUpdate, Object: benchObject(i%benchObjects, i)}}, nil, false)
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCommitBatch100(b *testing.B) {
	e := newEnv(b, Config{})
	seed(b, e.st, benchObjects)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		ops := make([]Op, benchBatchOps)
		for j := range ops {
			ops[j] = Op{Type: OpUpdate, Object: benchObject((i*benchBatchOps+j)%benchObjects, i)}
		}
		if _, _, err := e.st.Commit(context.Background(), ops, nil, false); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGet(b *testing.B) {
	e := newEnv(b, Config{})
	keys := seed(b, e.st, benchObjects)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := e.st.Get(context.Background(), keys[i%len(keys)]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSnapshotGet is what admission does per request: take a view and look up in it.
func BenchmarkSnapshotGet(b *testing.B) {
	e := newEnv(b, Config{})
	keys := seed(b, e.st, benchObjects)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		v, _ := e.st.Snapshot()
		if _, ok := v.Get(keys[i%len(keys)]); !ok {
			b.Fatal("missing")
		}
	}
}

func TestBenchfigRegistration(t *testing.T) {
	var found bool
	for _, bm := range benchfig.Select("cp") {
		if bm.Name == "cp_store" {
			found = true
		}
	}
	require.True(t, found)
	if os.Getenv("STORE_BENCHFIG") == "" {
		t.Skip("set STORE_BENCHFIG=1 to run the registered benchmark once")
	}
	figs, err := runBench(ctxT(t), benchfig.Env{WorkDir: t.TempDir(), Logf: t.Logf})
	require.NoError(t, err)
	t.Logf("%v", figs)
}
