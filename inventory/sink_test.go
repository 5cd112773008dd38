package inventory_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/inventory"
	"github.com/dsnscale/dsnscale/tsdb/queue"
)

func TestUpsertSinkThroughAQueue(t *testing.T) {
	inv, err := inventory.Open("", t.TempDir(), inventory.Options{Logger: quiet()})
	require.NoError(t, err)
	defer inv.Close()
	q, err := queue.New(queue.Config{Name: "inventory", BatchSize: 10, FlushInterval: time.Hour}, inventory.UpsertSink(inv), queue.WithLogger(quiet()))
	require.NoError(t, err)
	for rev := range 5 {
		q.Offer(
			inventory.DSNRecord{ID: "dsn-1", State: model.DSNStateSyncing, AppliedRevision: uint64(rev)},
			inventory.DSNRecord{ID: "dsn-2", State: model.DSNStateInSync, AppliedRevision: uint64(rev)},
		)
	}
	q.Offer(inventory.DSNRecord{ID: "bad id", State: model.DSNStateInSync})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, q.Close(ctx))
	got, err := inv.GetDSN(ctx, "dsn-1")
	require.NoError(t, err)
	assert.Equal(t, uint64(4), got.AppliedRevision, "the last record of a DSN wins")
	s := q.Stats()
	assert.Equal(t, 1, s.Dropped[queue.ReasonFailed], "the invalid record's batch is dropped, not retried: %+v", s)
	assert.Equal(t, uint64(10), s.Written)
}
