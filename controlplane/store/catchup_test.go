package store

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCatchUpReadsOtherWriters checks CatchUp: a second store of the same bucket that follows
// the first reads its commits when asked, at once; one that does not follow has nothing to read.
func TestCatchUpReadsOtherWriters(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := ctxT(t)
	other, err := Open(ctx, e.js, e.cfg)
	require.NoError(t, err)
	defer other.Close()

	// A store that does not follow has nothing to read.
	_, rev := mustCommit(t, e.st, create(network("a", "x", 1)))
	require.NoError(t, other.CatchUp(ctx))
	assert.Equal(t, Revision(0), other.Revision())

	// Follow's background reader is stopped at once (its context ends and it is waited for),
	// so that only CatchUp can bring the next commit in.
	fctx, cancel := context.WithCancel(ctx)
	require.NoError(t, other.Follow(fctx))
	cancel()
	other.wg.Wait()
	_, rev = mustCommit(t, e.st, create(network("a", "y", 2)))
	require.NoError(t, other.CatchUp(ctx))
	assert.Equal(t, rev, other.Revision())
	got, err := other.Get(ctx, network("a", "y", 2).Key())
	require.NoError(t, err)
	assert.Equal(t, "2", got.Metadata.ResourceVersion)
}
