package search

import (
	"context"
	"errors"

	"github.com/dsnscale/dsnscale/tsdb/queue"
)

// Sink adapts idx to a queue.Queue, so that callers offer documents without waiting:
//
//	q, err := queue.New(queue.Config{Name: "events"}, search.Sink(idx), queue.WithRegisterer(reg))
//
// A batch with an invalid document fails permanently (retrying cannot fix it); other failures
// are retried by the queue. Re-indexing a retried batch is harmless when documents carry IDs.
func Sink(idx Index) queue.Sink[Document] {
	return func(ctx context.Context, batch []Document) error {
		err := idx.Index(ctx, batch...)
		if errors.Is(err, ErrInvalid) || errors.Is(err, ErrClosed) {
			return queue.Permanent(err)
		}
		return err
	}
}
