package store

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestBatchWaitsOutAStreamWithoutLeader checks that a batch whose stream takes no messages for
// a moment ("no responders", as while a stream changes leader) is sent again and commits,
// instead of failing. The stream stops taking the bucket's subjects until a moment after the
// commit started.
func TestBatchWaitsOutAStreamWithoutLeader(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := ctxT(t)
	info, err := e.st.stream.Info(ctx)
	require.NoError(t, err)
	cfg := info.Config
	off := cfg
	off.Subjects = []string{"nobody.listens.here"}
	_, err = e.js.UpdateStream(ctx, off)
	require.NoError(t, err)
	restored := make(chan error, 1)
	go func() {
		time.Sleep(300 * time.Millisecond) // the commit meanwhile finds nobody to take it
		_, err := e.js.UpdateStream(context.Background(), cfg)
		restored <- err
	}()
	objs, rev, err := e.st.Commit(ctx, []Op{create(network("a", "x", 1)), create(network("a", "y", 2))}, nil, false)
	require.NoError(t, <-restored)
	require.NoError(t, err)
	require.Len(t, objs, 2)
	require.Equal(t, Revision(2), rev)
}
