package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/dsnscale/dsnscale/inventory"
	"github.com/dsnscale/dsnscale/search"
	"github.com/dsnscale/dsnscale/tsdb"
	"github.com/dsnscale/dsnscale/tsdb/queue"
)

// MessageStats counts the messages of one kind.
type MessageStats struct {
	Received uint64
	// Invalid counts refused messages by reason (ReasonMalformed, ...).
	Invalid map[string]uint64
	// Dropped counts messages NATS dropped because the subscriptions fell behind.
	Dropped uint64
	// RolledUp counts events stored only in the count of their series, RolledUpDropped those
	// lost with a series the full search queue refused beyond its one document (events only;
	// see Config.EventSeriesWindow).
	RolledUp, RolledUpDropped uint64
}

// InvalidTotal sums Invalid over all reasons.
func (s MessageStats) InvalidTotal() uint64 {
	var n uint64
	for _, v := range s.Invalid {
		n += v
	}
	return n
}

// Stats is what the ingestion did so far.
type Stats struct {
	Telemetry, Events MessageStats
	// Samples counts samples offered to the TSDB queue, SamplesInvalid those refused before it,
	// SamplesRejected those the TSDB refused one by one.
	Samples, SamplesInvalid, SamplesRejected uint64
	// InventoryPolls and InventoryPollErrors count polls of the fleet; InventoryInvalid the
	// inventory writes the database refused as invalid.
	InventoryPolls, InventoryPollErrors, InventoryInvalid uint64
	// TSDB, Search and Inventory are the queues' counters.
	TSDB, Search, Inventory queue.Stats
}

// Stats returns the counters.
func (in *Ingest) Stats() Stats {
	s := Stats{
		Samples:             in.c.samples.Load(),
		SamplesInvalid:      in.c.samplesInvalid.Load(),
		SamplesRejected:     in.writer.Rejected(),
		InventoryPolls:      in.c.pollsOK.Load(),
		InventoryPollErrors: in.c.pollsFailed.Load(),
		InventoryInvalid:    in.c.inventoryInvalid.Load(),
		TSDB:                in.writer.Stats(),
		Search:              in.events.Stats(),
		Inventory:           in.invQ.Stats(),
	}
	for i, k := range kinds {
		ms := MessageStats{Received: in.c.messages[i].Load(), Invalid: map[string]uint64{}, Dropped: uint64(in.dropped(k))}
		for j, r := range reasons {
			if n := in.c.invalid[i][j].Load(); n > 0 {
				ms.Invalid[r] = n
			}
		}
		if k == KindTelemetry {
			s.Telemetry = ms
		} else {
			ms.RolledUp, ms.RolledUpDropped = in.series.rolledUp.Load(), in.series.lost.Load()
			s.Events = ms
		}
	}
	return s
}

// TSDB is the time-series storage the telemetry goes to, for queries.
func (in *Ingest) TSDB() tsdb.Storage { return in.tsdb }

// SearchIndex is the search index events and logs go to. The audit writes to it too
// (audit.NewSearchStore(in.SearchIndex())); Close closes it, so close the audit recorder first.
func (in *Ingest) SearchIndex() search.Index { return in.index }

// Inventory is the DSN inventory, for queries.
func (in *Ingest) Inventory() inventory.Inventory { return in.inv }

// Close stops ingesting and flushes: it drains the subscriptions, writes what the queues hold
// until ctx is done, then closes the backends. Items still unwritten at ctx's deadline are
// dropped and counted, and the error wraps queue.ErrCloseTimeout; Close does not wait past ctx
// for a backend that hangs. Closing twice is harmless.
func (in *Ingest) Close(ctx context.Context) error {
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		return nil
	}
	in.closed = true
	close(in.stop)
	in.mu.Unlock()
	in.wg.Wait()

	var errs []error
	in.drain(ctx)
	if in.series != nil {
		in.series.flush(in.clock.Now(), true)
	}

	// The queues flush in parallel, so a dead backend does not use up the others' time.
	var wg sync.WaitGroup
	var mu sync.Mutex
	closeQ := func(name string, c func(context.Context) error) {
		defer wg.Done()
		if err := c(ctx); err != nil {
			mu.Lock()
			errs = append(errs, fmt.Errorf("%s queue: %w", name, err))
			mu.Unlock()
		}
	}
	if in.writer != nil {
		wg.Add(1)
		go closeQ(QueueTelemetry, in.writer.Close)
	}
	if in.events != nil {
		wg.Add(1)
		go closeQ(QueueEvents, in.events.Close)
	}
	if in.invQ != nil {
		wg.Add(1)
		go closeQ(QueueInventory, in.invQ.Close)
	}
	wg.Wait()
	in.metrics.unregister()

	for _, b := range []struct {
		name  string
		close func() error
		open  bool
	}{{"tsdb", closer(in.tsdb), in.tsdb != nil}, {"search", closer(in.index), in.index != nil}, {"inventory", closer(in.inv), in.inv != nil}} {
		if !b.open {
			continue
		}
		if err := b.close(); err != nil {
			errs = append(errs, fmt.Errorf("closing %s: %w", b.name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("ingest: close: %w", err)
	}
	return nil
}

func closer(c interface{ Close() error }) func() error {
	if c == nil {
		return nil
	}
	return c.Close
}

// drain stops the subscriptions after they handled what they hold, until ctx is done.
func (in *Ingest) drain(ctx context.Context) {
	in.subMu.Lock()
	all := in.subs
	for kind, subs := range all {
		// Dropped is unavailable once a subscription is closed: keep the count.
		for _, s := range subs {
			if d, err := s.Dropped(); err == nil {
				in.droppedClosed[kind] += d
			}
		}
	}
	in.subs = map[string][]*nats.Subscription{}
	in.subMu.Unlock()
	for _, subs := range all {
		for _, s := range subs {
			done := s.StatusChanged(nats.SubscriptionClosed)
			if err := s.Drain(); err != nil {
				_ = s.Unsubscribe()
				continue
			}
			select {
			case <-done:
			case <-ctx.Done():
				_ = s.Unsubscribe()
			}
		}
	}
}
