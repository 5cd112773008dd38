package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Modes of the audit trail (the control plane's --audit-mode).
const (
	// ModeDurable answers an API call only once its record is stored in a JetStream stream;
	// the records are indexed into the search backend from the stream, in the background. No
	// record is lost to a slow search backend: they wait in the stream.
	ModeDurable = "durable"
	// ModeBounded queues records for the search backend without ever holding up a call; a
	// full queue drops them (counted).
	ModeBounded = "bounded"
)

// Journal defaults.
const (
	DefaultJournalStream = "AUDIT"
	DefaultJournalMaxAge = 7 * 24 * time.Hour
	// DefaultIndexWait is the longest the indexer waits for a batch to fill before it writes
	// what it has: with a search backend that keeps up, a record is searchable within about
	// this plus one index write (SearchDelay states the bound). A search index pays much of its
	// cost per write, so a batch a second, as the bounded mode writes, keeps it cheap.
	DefaultIndexWait = time.Second
	// SearchDelay is the stated bound on the time from the answer to an API call until the
	// audit search sees its record, in durable mode, while the search backend keeps up.
	SearchDelay = 5 * time.Second
)

// JournalConfig configures a Journal.
type JournalConfig struct {
	// JS is where the stream lives. Required.
	JS jetstream.JetStream
	// Sink is the search backend the records are indexed into. Required.
	Sink Sink
	// Stream names the stream (default DefaultJournalStream); its subject is "<stream>.records".
	Stream string
	// MaxAge is how long records stay in the stream after they are indexed (default
	// DefaultJournalMaxAge).
	MaxAge time.Duration
	// Replicas of the stream (default 1).
	Replicas int
	// BatchSize is the most records per index write (default 5000).
	BatchSize int
	// IndexWait is how long the indexer waits for a batch to fill (default DefaultIndexWait).
	IndexWait time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
}

// Validate checks the configuration.
func (c JournalConfig) Validate() error {
	switch {
	case c.JS == nil:
		return fmt.Errorf("%w: JS is required", ErrConfig)
	case c.Sink == nil:
		return fmt.Errorf("%w: Sink is required", ErrConfig)
	case c.MaxAge < 0 || c.Replicas < 0 || c.BatchSize < 0 || c.IndexWait < 0:
		return fmt.Errorf("%w: MaxAge, Replicas, BatchSize and IndexWait must not be negative", ErrConfig)
	}
	return nil
}

// Journal is the durable audit trail: Append stores a record in a JetStream stream (file
// storage, acknowledged; records appended together share a message) and returns; a durable
// consumer indexes the stream into the search backend in batches, acknowledging records only
// once written, so that a failed index write is retried rather than lost. Indexing is at least
// once: a batch whose acknowledgement was lost is indexed again.
type Journal struct {
	cfg     JournalConfig
	log     *slog.Logger
	subject string
	in      chan *appending
	stopped chan struct{} // closed by Close: no more appends
	cancel  context.CancelFunc
	done    chan struct{}
	writers sync.WaitGroup
	once    sync.Once

	appended, appendFailed, indexed, indexFailed atomic.Uint64
	seq                                          atomic.Uint64
	idPrefix                                     string
}

// OpenJournal creates (or binds) the stream and its indexing consumer and starts indexing.
func OpenJournal(ctx context.Context, cfg JournalConfig) (*Journal, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Stream == "" {
		cfg.Stream = DefaultJournalStream
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultJournalMaxAge
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 5000
	}
	if cfg.IndexWait == 0 {
		cfg.IndexWait = DefaultIndexWait
	}
	j := &Journal{cfg: cfg, log: cfg.Logger, subject: cfg.Stream + ".records", in: make(chan *appending, maxGroup),
		stopped: make(chan struct{}), done: make(chan struct{}), idPrefix: newIDPrefix()}
	if j.log == nil {
		j.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	stream, err := cfg.JS.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: cfg.Stream, Description: "dsnscale API audit records", Subjects: []string{j.subject},
		Storage: jetstream.FileStorage, MaxAge: cfg.MaxAge, Replicas: max(1, cfg.Replicas), Duplicates: 2 * time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("audit: journal stream %s: %w", cfg.Stream, err)
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: "indexer", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute,
		MaxAckPending: -1, Description: "indexes audit records into the search backend",
	})
	if err != nil {
		return nil, fmt.Errorf("audit: journal consumer: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	j.cancel = cancel
	go j.index(runCtx, cons)
	for range journalWriters {
		j.writers.Add(1)
		go func() {
			defer j.writers.Done()
			j.write(runCtx)
		}()
	}
	return j, nil
}

// Durable reports that Append returns only once the record is stored.
func (j *Journal) Durable() bool { return true }

// Append stores rec in the stream and returns once the stream has acknowledged it. A record
// without an ID is given one.
//
// Records appended at the same time are stored together (group commit): the writers take what
// is waiting, up to maxGroup records, and store it as one stream message, so that under load
// the cost of a store is shared by many calls, while a lone call waits one store.
func (j *Journal) Append(ctx context.Context, rec Record) error {
	if rec.ID == "" {
		rec.ID = j.idPrefix + "-" + strconv.FormatUint(j.seq.Add(1), 36)
	}
	rec = bounded(rec)
	// appendJSON, not encoding/json: every API call encodes a record here, and reflection
	// was a tenth of the server's CPU per secure GET.
	b := rec.appendJSON(make([]byte, 0, recordJSONSize))
	a := &appending{id: rec.ID, data: b, done: make(chan error, 1)}
	select {
	case j.in <- a:
	case <-ctx.Done():
		j.appendFailed.Add(1)
		return fmt.Errorf("audit: storing the record: %w", ctx.Err())
	case <-j.stopped:
		j.appendFailed.Add(1)
		return errors.New("audit: the journal is closed")
	}
	var err error
	select {
	case err = <-a.done:
	case <-ctx.Done():
		err = ctx.Err() // the store may still happen; the call is answered as failed
	}
	if err != nil {
		j.appendFailed.Add(1)
		return fmt.Errorf("audit: storing the record: %w", err)
	}
	j.appended.Add(1)
	return nil
}

// recordJSONSize is room for a typical record's JSON, so that encoding one allocates once.
const recordJSONSize = 320

// appending is a record waiting to be stored.
type appending struct {
	id   string
	data []byte
	done chan error
}

// Group commit limits.
//
// One writer: the records that arrive while it stores a group make the next group. Each stream
// message costs its publish, acknowledgement, store, delivery to the indexer and the indexer's
// acknowledgement, whatever it holds, so fewer, fuller messages cost less per record. With 32
// concurrent callers (BenchmarkJournalAppend) four writers stored 0.23 messages per record at
// 17 µs of CPU per record; one stores 0.067 at 13 µs, and takes records no slower, since a
// group of up to maxGroup records takes one store.
const (
	journalWriters = 1
	maxGroup       = 512
	maxGroupBytes  = 512 << 10
)

// write stores groups of waiting records until ctx ends. A group is one stream message: the
// records' JSON, one a line; its deduplication id is its first record's.
func (j *Journal) write(ctx context.Context) {
	var buf bytes.Buffer
	group := make([]*appending, 0, maxGroup)
	for {
		group = group[:0]
		select {
		case <-ctx.Done():
			return
		case a := <-j.in:
			group = append(group, a)
		}
		size := len(group[0].data)
	more:
		for len(group) < maxGroup && size < maxGroupBytes {
			select {
			case a := <-j.in:
				group = append(group, a)
				size += len(a.data)
			default:
				break more
			}
		}
		buf.Reset()
		for _, a := range group {
			buf.Write(a.data)
			buf.WriteByte('\n')
		}
		pctx, cancel := context.WithTimeout(ctx, appendTimeout)
		_, err := j.cfg.JS.Publish(pctx, j.subject, buf.Bytes(), jetstream.WithMsgID(group[0].id))
		cancel()
		for _, a := range group {
			a.done <- err
		}
	}
}

// index writes the stream's records to the sink until ctx ends.
func (j *Journal) index(ctx context.Context, cons jetstream.Consumer) {
	defer close(j.done)
	batch := make([]Record, 0, j.cfg.BatchSize)
	for ctx.Err() == nil {
		msgs, err := cons.Fetch(j.cfg.BatchSize, jetstream.FetchMaxWait(j.cfg.IndexWait))
		if err != nil {
			if ctx.Err() == nil {
				j.log.Warn("audit journal: fetching records", "err", err)
				sleep(ctx, time.Second)
			}
			continue
		}
		batch = batch[:0]
		var got []jetstream.Msg
		for m := range msgs.Messages() {
			got = append(got, m)
			for line := range bytes.Lines(m.Data()) {
				line = bytes.TrimSpace(line)
				if len(line) == 0 {
					continue
				}
				rec, err := decodeRecord(line)
				if err != nil {
					j.log.Error("audit journal: records that do not decode are skipped", "err", err)
					break
				}
				batch = append(batch, rec)
			}
		}
		if len(got) == 0 {
			continue
		}
		if len(batch) > 0 {
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := j.cfg.Sink.Write(wctx, batch)
			cancel()
			if err != nil {
				// Not acknowledged: the records are delivered again.
				j.indexFailed.Add(uint64(len(batch)))
				j.log.Error("audit journal: indexing failed; the records stay in the stream and are retried", "records", len(batch), "err", err)
				for _, m := range got {
					_ = m.NakWithDelay(time.Second)
				}
				sleep(ctx, time.Second)
				continue
			}
		}
		for _, m := range got {
			if err := m.Ack(); err != nil {
				j.log.Warn("audit journal: acknowledging an indexed record", "err", err)
			}
		}
		j.indexed.Add(uint64(len(batch)))
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Stats counts what the journal did: Recorded are records stored, Written those indexed,
// Failed the appends that failed (their calls were answered 503); Dropped is always 0.
func (j *Journal) Stats() Stats {
	return Stats{Recorded: j.appended.Load(), Written: j.indexed.Load(), Failed: j.appendFailed.Load()}
}

// IndexFailures counts records whose index write failed and is retried.
func (j *Journal) IndexFailures() uint64 { return j.indexFailed.Load() }

// Close stops indexing. Records not indexed yet stay in the stream and are indexed when the
// journal is opened again.
func (j *Journal) Close(ctx context.Context) error {
	j.once.Do(func() {
		close(j.stopped)
		j.cancel()
	})
	select {
	case <-j.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	j.writers.Wait()
	// Appends that were waiting for a writer get an answer.
	for {
		select {
		case a := <-j.in:
			a.done <- errors.New("audit: the journal is closed")
		default:
			return nil
		}
	}
}
