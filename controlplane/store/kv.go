package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dsnscale/dsnscale/controlplane/model"
)

// Sentinel errors of the JetStream implementation, beside those of the Store interface.
var (
	// ErrInvalid reports a malformed request: a bad key, op, option or continue token.
	ErrInvalid = errors.New("invalid request")
	// ErrSlowWatcher ends a watch that fell more than Config.WatchBuffer events behind.
	ErrSlowWatcher = errors.New("watcher fell too far behind")
)

// Defaults for Config's zero values.
const (
	DefaultBucket           = "intent"
	DefaultWatchBuffer      = 4096
	DefaultMaxHistoryEvents = 100_000
	DefaultRequestTimeout   = 10 * time.Second
)

// MaxBatchOps is the most ops one Commit takes: the server's limit on an atomic batch.
const MaxBatchOps = 1000

// perKeyHistory is the bucket's per-key message limit. The store keeps every revision of a key
// until Compact drops it, so that the event log can be rebuilt from the stream after a restart;
// the limit only has to stay positive for KV clients to bind to the bucket.
const perKeyHistory = math.MaxInt32

var bucketRE = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// Config configures a KV store. The zero value of each field selects its default.
type Config struct {
	// Bucket is the JetStream KV bucket of the intent ("intent"). The compaction horizon lives in
	// a small companion bucket named Bucket+"-meta".
	Bucket string
	// WatchBuffer is how many events a watcher may fall behind the live head before it is ended
	// with ErrSlowWatcher (4096). Replaying history from an old revision does not count, only
	// events committed after the watch started.
	WatchBuffer int
	// MaxHistoryEvents bounds the in-memory event log (100,000 events). Older events are dropped,
	// which raises CompactedRevision as Compact would.
	MaxHistoryEvents int
	// RequestTimeout bounds each request to the server when ctx has no earlier deadline (10s).
	RequestTimeout time.Duration
	// Logger receives the store's logs; nil discards them.
	Logger *slog.Logger
	// Registerer, if set, gets the store's Prometheus metrics; Close unregisters them.
	Registerer prometheus.Registerer
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Bucket != "" && !bucketRE.MatchString(c.Bucket) {
		return fmt.Errorf("store: bucket %q: only letters, digits, '-' and '_' are allowed", c.Bucket)
	}
	if len(c.Bucket) > 200 {
		return fmt.Errorf("store: bucket %q is longer than 200 bytes", c.Bucket)
	}
	if c.WatchBuffer < 0 {
		return fmt.Errorf("store: watchBuffer %d is negative", c.WatchBuffer)
	}
	if c.MaxHistoryEvents < 0 {
		return fmt.Errorf("store: maxHistoryEvents %d is negative", c.MaxHistoryEvents)
	}
	if c.RequestTimeout < 0 {
		return fmt.Errorf("store: requestTimeout %s is negative", c.RequestTimeout)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Bucket == "" {
		c.Bucket = DefaultBucket
	}
	if c.WatchBuffer == 0 {
		c.WatchBuffer = DefaultWatchBuffer
	}
	if c.MaxHistoryEvents == 0 {
		c.MaxHistoryEvents = DefaultMaxHistoryEvents
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// KV is the Store on JetStream KV. It is the only writer of its bucket: it keeps the current
// state and recent history in memory, writes each Commit as one atomic batch and updates memory
// after the server acknowledged it. The server checks every message's expected last
// sequence as well, so a write that slipped in from elsewhere makes a batch fail whole; the
// store then reads the stream to learn what changed. Replicas of a clustered control plane each
// have a KV on the same bucket and Follow each other's writes.
type KV struct {
	cfg     Config
	log     *slog.Logger
	js      jetstream.JetStream
	stream  jetstream.Stream
	meta    jetstream.KeyValue
	prefix  string // subject prefix of keys: "$KV.<bucket>."
	metrics *metrics

	// mu serializes writers (Commit, Compact, reading the stream) and guards index and applied.
	mu      sync.Mutex
	index   map[string]*entry // by KV key; tombstones included until compacted
	applied Revision          // last stream sequence reflected in index
	closed  bool

	snap atomic.Pointer[snapshot]

	// logMu guards the event log, the horizons and the watcher set.
	logMu    sync.RWMutex
	events   []Event
	logFloor Revision // events at or below were dropped for space
	horizon  Revision // Compact dropped history at or below; persisted
	watchers map[*watcher]struct{}

	// following is set once Follow runs: other writers share the bucket.
	following atomic.Bool
	isClosed  atomic.Bool
	closing   chan struct{}
	wg        sync.WaitGroup
}

var _ Store = (*KV)(nil)

// entry is what the store knows of one key.
type entry struct {
	key   model.Key
	obj   *model.Object // nil after a delete (a tombstone)
	seq   Revision      // stream sequence of the key's last message, tombstone included
	first Revision      // lower bound of the key's oldest message still in the stream
}

// Open binds to the bucket (creating it with file storage if it does not exist), enables atomic
// batch publish on its stream, and rebuilds the current state and the event log from it.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*KV, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &KV{
		cfg:      cfg,
		log:      cfg.Logger.With("bucket", cfg.Bucket),
		js:       js,
		prefix:   "$KV." + cfg.Bucket + ".",
		index:    map[string]*entry{},
		watchers: map[*watcher]struct{}{},
		closing:  make(chan struct{}),
	}
	s.snap.Store(&snapshot{})
	if err := s.openStreams(ctx); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer, cfg.Bucket)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	start := time.Now()
	if _, err := s.catchUp(ctx, ""); err != nil {
		s.metrics.unregister()
		return nil, fmt.Errorf("store: rebuild from bucket %s: %w", cfg.Bucket, err)
	}
	s.log.Info("store opened", "revision", s.Revision(), "objects", s.snap.Load().Len(),
		"compacted", s.CompactedRevision(), "events", s.eventCount(), "took", time.Since(start))
	return s, nil
}

func (s *KV) openStreams(ctx context.Context) error {
	name := "KV_" + s.cfg.Bucket
	stream, err := s.js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = s.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      s.cfg.Bucket,
			Description: "dsnscale control-plane intent",
			History:     jetstream.KeyValueMaxHistory,
			Storage:     jetstream.FileStorage,
		})
		if err != nil && !errors.Is(err, jetstream.ErrBucketExists) {
			return fmt.Errorf("store: create bucket %s: %w", s.cfg.Bucket, err)
		}
		stream, err = s.js.Stream(ctx, name)
	}
	if err != nil {
		return fmt.Errorf("store: bind bucket %s: %w", s.cfg.Bucket, err)
	}
	sc := stream.CachedInfo().Config
	if !sc.AllowAtomicPublish || sc.MaxMsgsPerSubject != perKeyHistory {
		sc.AllowAtomicPublish = true
		sc.MaxMsgsPerSubject = perKeyHistory
		if stream, err = s.js.UpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("store: enable atomic publish on bucket %s: %w", s.cfg.Bucket, err)
		}
	}
	s.stream = stream

	s.meta, err = s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      s.cfg.Bucket + "-meta",
		Description: "dsnscale intent store bookkeeping",
		History:     1,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return fmt.Errorf("store: bucket %s-meta: %w", s.cfg.Bucket, err)
	}
	e, err := s.meta.Get(ctx, horizonKey)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		return fmt.Errorf("store: read compaction horizon: %w", err)
	default:
		h, perr := strconv.ParseUint(string(e.Value()), 10, 64)
		if perr != nil {
			return fmt.Errorf("store: compaction horizon %q in bucket %s-meta: %w", e.Value(), s.cfg.Bucket, perr)
		}
		s.horizon = h
	}
	return nil
}

// Get returns a copy of the current object at key, or ErrNotFound.
func (s *KV) Get(ctx context.Context, key model.Key) (*model.Object, error) {
	if s.isClosed.Load() {
		return nil, ErrClosed
	}
	o, ok := s.snap.Load().Get(key)
	if !ok {
		return nil, fmt.Errorf("%s: %w", key, ErrNotFound)
	}
	return cloneObject(o), nil
}

// List returns a page of copies of the objects of kind, in key order.
func (s *KV) List(ctx context.Context, kind model.Kind, opts ListOptions) (ListResult, error) {
	if s.isClosed.Load() {
		return ListResult{}, ErrClosed
	}
	if opts.Limit < 0 {
		return ListResult{}, fmt.Errorf("list %s: limit %d is negative: %w", kind, opts.Limit, ErrInvalid)
	}
	snap := s.snap.Load()
	lo, hi := snap.bounds(kind, opts.Tenant)
	if opts.Continue != "" {
		after, err := decodeContinue(opts.Continue, kind)
		if err != nil {
			return ListResult{}, fmt.Errorf("list %s: %w", kind, err)
		}
		for lo < hi && compareKeys(snap.objs[lo].Key(), after) <= 0 {
			lo++
		}
	}
	res := ListResult{Revision: snap.rev}
	for i := lo; i < hi; i++ {
		o := snap.objs[i]
		if !matchLabels(opts.Selector, o.Metadata.Labels) {
			continue
		}
		if opts.Limit > 0 && len(res.Items) == opts.Limit {
			res.Continue = encodeContinue(res.Items[len(res.Items)-1].Key())
			break
		}
		res.Items = append(res.Items, cloneObject(o))
	}
	return res, nil
}

func matchLabels(sel, labels map[string]string) bool {
	for k, v := range sel {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// Snapshot returns the current immutable view and its revision. It costs one atomic load. The
// view's objects are shared: callers must not modify them.
func (s *KV) Snapshot() (View, Revision) {
	snap := s.snap.Load()
	return snap, snap.rev
}

// Revision returns the revision of the last committed change.
func (s *KV) Revision() Revision { return s.snap.Load().rev }

// CompactedRevision is the revision at or below which history is gone: the horizon of the
// last Compact, or of events dropped from the in-memory log for space, whichever is later.
func (s *KV) CompactedRevision() Revision {
	s.logMu.RLock()
	defer s.logMu.RUnlock()
	return s.compactedLocked()
}

func (s *KV) compactedLocked() Revision { return max(s.horizon, s.logFloor) }

func (s *KV) eventCount() int {
	s.logMu.RLock()
	defer s.logMu.RUnlock()
	return len(s.events)
}

// Close ends all watches (with ErrClosed) and stops the store. It waits for a Commit in
// progress. It does not close the NATS connection.
func (s *KV) Close() error {
	if !s.isClosed.CompareAndSwap(false, true) {
		return nil
	}
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	// Watch registers under logMu after checking isClosed: passing through it here orders
	// every registration before the Wait below.
	s.logMu.Lock()
	s.logMu.Unlock() //nolint:staticcheck // an empty critical section is the point
	close(s.closing)
	s.wg.Wait()
	s.metrics.unregister()
	return nil
}

// requestContext bounds one server request by the configured timeout.
func (s *KV) requestContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.cfg.RequestTimeout)
}
