package inventory

import (
	"context"
	"errors"

	"github.com/dsnscale/dsnscale/tsdb/queue"
)

// UpsertSink adapts inv to a queue.Queue of records, so that callers update the inventory
// without waiting:
//
//	q, err := queue.New(queue.Config{Name: "inventory", BatchSize: 100}, inventory.UpsertSink(inv))
//
// A batch is upserted in one transaction; when it holds several records of one DSN, the last
// one offered wins. A batch holding an invalid record fails permanently (retrying cannot fix
// it); other failures are retried by the queue, upserts being idempotent.
func UpsertSink(inv Inventory) queue.Sink[DSNRecord] {
	return func(ctx context.Context, batch []DSNRecord) error {
		err := inv.UpsertDSNs(ctx, latest(batch)...)
		if errors.Is(err, ErrInvalid) || errors.Is(err, ErrClosed) {
			return queue.Permanent(err)
		}
		return err
	}
}

// latest keeps the last record of each DSN, in the order of those last records.
func latest(batch []DSNRecord) []DSNRecord {
	last := make(map[string]int, len(batch))
	for i, r := range batch {
		last[r.ID] = i
	}
	if len(last) == len(batch) {
		return batch
	}
	out := make([]DSNRecord, 0, len(last))
	for i, r := range batch {
		if last[r.ID] == i {
			out = append(out, r)
		}
	}
	return out
}
