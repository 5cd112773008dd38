// Package audit records every call to the northbound API: who, when, from where, what, the
// verdict and the role binding that allowed it. In durable mode (Journal) a call is answered
// only once its record is stored in a JetStream stream, from which the records are indexed into
// the search backend; in bounded mode (Recorder) records go through a bounded queue to a Sink
// without ever blocking a request (a full queue drops and counts). GET /api/v1/audit searches
// the search backend.
package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Verdicts: the access decision on a call.
const (
	VerdictAllowed         = "allowed"
	VerdictDenied          = "denied"          // authenticated, but no role binding allows it (403)
	VerdictUnauthenticated = "unauthenticated" // no valid token or credentials (401)
	VerdictLimited         = "limited"         // refused by a rate limit (429)
)

// Record is one API call.
type Record struct {
	// ID identifies the record; writing it twice stores it once.
	ID     string    `json:"id"`
	Time   time.Time `json:"time"`
	User   string    `json:"user,omitempty"`
	Source string    `json:"source,omitempty"`
	Method string    `json:"method"`
	Path   string    `json:"path"`
	Verb   string    `json:"verb,omitempty"`
	Kind   string    `json:"kind,omitempty"`
	Tenant string    `json:"tenant,omitempty"`
	Name   string    `json:"name,omitempty"`
	Status int       `json:"status"`
	// Verdict is one of the Verdict constants.
	Verdict string `json:"verdict"`
	// Binding is the role binding that allowed the call, when RBAC decided it.
	Binding string `json:"binding,omitempty"`
	// Reason says why a call was refused.
	Reason     string  `json:"reason,omitempty"`
	DurationMs float64 `json:"durationMs"`
}

// Sink stores records. Write is called from one goroutine at a time with batches in order; an
// error drops the batch (it is counted and logged). Write must not keep the slice: the Recorder
// reuses it.
type Sink interface {
	Write(ctx context.Context, records []Record) error
}

// ErrConfig marks an invalid RecorderConfig.
var ErrConfig = errors.New("audit: invalid config")

// RecorderConfig configures a Recorder.
type RecorderConfig struct {
	// Sink receives the records. Required.
	Sink Sink
	// Buffer is how many records may wait; more are dropped. 0 means 50000.
	Buffer int
	// BatchSize is the most records per Write; 0 means 5000. Large batches are what make the
	// audit cheap: a search index pays much of its cost per write (a segment to build and
	// later merge), little per record.
	BatchSize int
	// FlushEvery is the longest a record waits for its batch to fill; 0 means a second.
	FlushEvery time.Duration
	// WriteTimeout bounds one Write; 0 means 10 s.
	WriteTimeout time.Duration
	// Logger logs failed writes; nil discards.
	Logger *slog.Logger
}

// Validate checks the configuration.
func (c RecorderConfig) Validate() error {
	switch {
	case c.Sink == nil:
		return fmt.Errorf("%w: Sink is required", ErrConfig)
	case c.Buffer < 0 || c.BatchSize < 0 || c.FlushEvery < 0 || c.WriteTimeout < 0:
		return fmt.Errorf("%w: Buffer, BatchSize, FlushEvery and WriteTimeout must not be negative", ErrConfig)
	}
	return nil
}

// Stats count what a Recorder did.
type Stats struct {
	Recorded uint64 // accepted into the queue
	Dropped  uint64 // refused because the queue was full or the recorder closed
	Written  uint64 // written by the sink
	Failed   uint64 // lost in failed writes
}

// Recorder queues records and writes them to its sink in batches, in the background.
type Recorder struct {
	cfg RecorderConfig
	log *slog.Logger
	// The queue is a slice under a mutex rather than a channel: the writer takes a batch in
	// one step instead of receiving records one by one, which an API call would pay for.
	mu     sync.Mutex
	queue  []Record      // waiting records, at most cfg.Buffer
	spare  []Record      // the queue's next backing array, owned by the writer between takes
	full   chan struct{} // signalled when the queue holds a batch
	stop   chan struct{}
	done   chan struct{}
	closed atomic.Bool
	once   sync.Once

	recorded, dropped, written, failed atomic.Uint64
	seq                                atomic.Uint64
	idPrefix                           string
}

// NewRecorder starts a Recorder; Close stops it.
func NewRecorder(cfg RecorderConfig) (*Recorder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Buffer == 0 {
		cfg.Buffer = 50000
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 5000
	}
	// A batch is at most what the queue holds; a larger one would never fill.
	cfg.BatchSize = min(cfg.BatchSize, cfg.Buffer)
	if cfg.FlushEvery == 0 {
		cfg.FlushEvery = time.Second
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	r := &Recorder{
		cfg: cfg, log: cfg.Logger, queue: make([]Record, 0, cfg.BatchSize), full: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{}), idPrefix: newIDPrefix(),
	}
	if r.log == nil {
		r.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	go r.run()
	return r, nil
}

// newIDPrefix is a random prefix for the ids of one process's records.
func newIDPrefix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Trail takes the record of every API call (Middleware).
type Trail interface {
	// Append takes a record. A durable trail returns once the record is stored, and an error
	// if it could not be; the middleware then holds the answer until Append returns.
	Append(ctx context.Context, rec Record) error
	// Durable reports whether Append stores the record before it returns.
	Durable() bool
	// Stats counts what the trail did.
	Stats() Stats
	// Close stops the trail, writing what it can until ctx ends.
	Close(ctx context.Context) error
}

var (
	_ Trail = (*Recorder)(nil)
	_ Trail = (*Journal)(nil)
)

// Append queues rec (Record); it never fails and never waits.
func (r *Recorder) Append(_ context.Context, rec Record) error {
	r.Record(rec)
	return nil
}

// Durable is false: a full queue drops records.
func (r *Recorder) Durable() bool { return false }

// Record queues rec without blocking; if the queue is full it is dropped and counted. A record
// without an ID is given one.
func (r *Recorder) Record(rec Record) {
	if r.closed.Load() {
		r.dropped.Add(1)
		return
	}
	if rec.ID == "" {
		rec.ID = r.idPrefix + "-" + strconv.FormatUint(r.seq.Add(1), 36)
	}
	rec = bounded(rec) // a full queue holds bounded records, whatever the requests carried
	r.mu.Lock()
	if len(r.queue) >= r.cfg.Buffer {
		r.mu.Unlock()
		r.dropped.Add(1)
		return
	}
	r.queue = append(r.queue, rec)
	n := len(r.queue)
	r.mu.Unlock()
	r.recorded.Add(1)
	if n == r.cfg.BatchSize {
		select {
		case r.full <- struct{}{}:
		default:
		}
	}
}

// take takes the queued records, or with whole set only as many as make whole batches (a small
// batch costs the search index nearly as much as a full one, so the rest waits for more or for
// its time).
func (r *Recorder) take(whole bool) []Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	q := r.queue
	n := len(q)
	if whole {
		n -= n % r.cfg.BatchSize
	}
	// The queue goes on in the spare slice, the one written before this, since its records are
	// written by now; the taken records become the spare once written.
	r.queue = append(r.spare[:0], q[n:]...)
	r.spare = q[:0]
	return q[:n]
}

// waiting is how many records are queued or being written.
func (r *Recorder) waiting() uint64 {
	return r.recorded.Load() - r.written.Load() - r.failed.Load()
}

// Stats returns the counters.
func (r *Recorder) Stats() Stats {
	return Stats{Recorded: r.recorded.Load(), Dropped: r.dropped.Load(), Written: r.written.Load(), Failed: r.failed.Load()}
}

// Close stops accepting records, writes those queued (until ctx ends) and stops.
func (r *Recorder) Close(ctx context.Context) error {
	r.once.Do(func() {
		r.closed.Store(true)
		close(r.stop)
	})
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *Recorder) run() {
	defer close(r.done)
	tick := time.NewTicker(r.cfg.FlushEvery)
	defer tick.Stop()
	flush := func(whole bool) {
		records := r.take(whole)
		for len(records) > 0 {
			n := min(len(records), r.cfg.BatchSize)
			r.write(records[:n])
			records = records[n:]
		}
	}
	for {
		select {
		case <-r.full:
			flush(true)
		case <-tick.C:
			flush(false)
		case <-r.stop:
			flush(false)
			return
		}
	}
}

// write writes one batch to the sink and counts the outcome.
func (r *Recorder) write(batch []Record) {
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.WriteTimeout)
	err := r.cfg.Sink.Write(ctx, batch)
	cancel()
	if err != nil {
		r.failed.Add(uint64(len(batch)))
		r.log.Error("audit records lost", "records", len(batch), "err", err)
		return
	}
	r.written.Add(uint64(len(batch)))
}
