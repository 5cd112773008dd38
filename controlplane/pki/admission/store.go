package admission

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// record is a token as stored: the token and the hash of its key.
type record struct {
	Token
	KeyHash string `json:"keyHash"`
}

// Store keeps bootstrap tokens in a JetStream key-value bucket (key "t.<id>"). Records expire
// from the bucket a day after the longest token could, counted from their last change. It is
// safe for concurrent use.
type Store struct {
	kv  jetstream.KeyValue
	now func() time.Time
	// queues hold this replica's updates of each token waiting to be written (see queue): a
	// storm of admissions with one multi-use token then queues here instead of failing
	// compare-and-swaps against itself. Replicas sharing the bucket still meet at the
	// compare-and-swap.
	queues sync.Map // id -> *queue
}

// OpenStore opens (creating if needed) the bucket; empty means DefaultBucket. now is the clock;
// nil means time.Now.
func OpenStore(ctx context.Context, js jetstream.JetStream, bucket string, now func() time.Time) (*Store, error) {
	if js == nil {
		return nil, fmt.Errorf("%w: JetStream is required", ErrUnavailable)
	}
	if bucket == "" {
		bucket = DefaultBucket
	}
	if now == nil {
		now = time.Now
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: bucket, History: 1, TTL: MaxTokenTTL + 24*time.Hour, Description: "dsnscale DSN bootstrap tokens",
	})
	if err != nil {
		return nil, fmt.Errorf("%w: opening bucket %s: %v", ErrUnavailable, bucket, err)
	}
	return &Store{kv: kv, now: now}, nil
}

func recordKey(id string) string { return "t." + id }

// Create makes a token from spec, recording createdBy. It returns the secret, which is shown
// only now, and the token.
func (s *Store) Create(ctx context.Context, spec Spec, createdBy string) (string, Token, error) {
	if err := spec.Validate(); err != nil {
		return "", Token{}, err
	}
	raw := make([]byte, idLen/2+keyLen)
	if _, err := rand.Read(raw); err != nil {
		return "", Token{}, fmt.Errorf("admission: token secret: %w", err)
	}
	id, key := hex.EncodeToString(raw[:idLen/2]), raw[idLen/2:]
	now := s.now().UTC()
	ttl := DefaultTokenTTL
	if spec.TTLSeconds > 0 {
		ttl = time.Duration(spec.TTLSeconds) * time.Second
	}
	uses := spec.Uses
	if uses == 0 {
		uses = 1
	}
	role := spec.Role
	if role == "" {
		role = RoleDSN
	}
	rec := record{Token: Token{
		ID: id, Role: role, Tenant: spec.Tenant, Labels: maps.Clone(spec.Labels), DSN: spec.DSN, Description: spec.Description,
		Uses: uses, CreatedAt: now, CreatedBy: createdBy, ExpiresAt: now.Add(ttl),
	}, KeyHash: hashKey(key)}
	data, err := json.Marshal(rec)
	if err != nil {
		return "", Token{}, fmt.Errorf("admission: encoding token: %w", err)
	}
	if _, err := s.kv.Create(ctx, recordKey(id), data); err != nil {
		return "", Token{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return formatSecret(id, key), rec.Token, nil
}

func (s *Store) get(ctx context.Context, id string) (record, uint64, error) {
	if len(id) != idLen || !isLowerHex(id) {
		return record{}, 0, fmt.Errorf("%w: token %q", ErrNotFound, id)
	}
	e, err := s.kv.Get(ctx, recordKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return record{}, 0, fmt.Errorf("%w: token %q", ErrNotFound, id)
	}
	if err != nil {
		return record{}, 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	var rec record
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return record{}, 0, fmt.Errorf("%w: stored token %s: %v", ErrUnavailable, id, err)
	}
	return rec, e.Revision(), nil
}

// Get returns the token id.
func (s *Store) Get(ctx context.Context, id string) (Token, error) {
	rec, _, err := s.get(ctx, id)
	return rec.Token, err
}

// List returns every token, newest first.
func (s *Store) List(ctx context.Context) ([]Token, error) {
	lister, err := s.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	var out []Token
	for key := range lister.Keys() {
		rec, _, err := s.get(ctx, key[len("t."):])
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, rec.Token)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.After(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// maxAttempts bounds the compare-and-swap retries of one update of a token.
const maxAttempts = 64

// maxBatch bounds the changes one write of a token's record carries.
const maxBatch = 256

// commitTimeout bounds one batch's reads and writes of the bucket: the batch is written on
// behalf of many requests, so no one request's context may cancel it.
const commitTimeout = 30 * time.Second

// change is one update of a token waiting to be written: fn sees the record as the changes
// before it in its batch left it.
type change struct {
	fn   func(*record) error
	done chan struct{} // closed when tok and err are set
	tok  Token
	err  error
}

// queue holds the changes waiting for one token's next write. While a write is under way the
// changes that arrive queue up, and the next write carries all of them at once (a group
// commit): a storm of admissions with one multi-use token then costs one compare-and-swap per
// batch, not one per admission, and each use is still written before it is granted.
type queue struct {
	mu      sync.Mutex
	pending []*change
	writing bool

	// last is the record as this replica last wrote it, at revision rev (0: none), read and
	// written by the one drain under way: the next batch starts from it rather than reading
	// the record again. The compare-and-swap still catches another writer's change.
	last record
	rev  uint64
}

// update applies fn to the record id with compare-and-swap, retrying when another writer got
// there first. fn sees the latest record and returns an error to stop. Concurrent updates of
// one token are written together (see queue), each applied in turn to the record as the ones
// before it left it, and each answered once the write that carries it has succeeded.
func (s *Store) update(ctx context.Context, id string, fn func(*record) error) (Token, error) {
	// Only tokens that exist get a queue, so that unknown ids presented to the public admission
	// route cannot grow the map. (A token with a queue is read again by its next write.)
	v, ok := s.queues.Load(id)
	if !ok {
		if _, _, err := s.get(ctx, id); err != nil {
			return Token{}, err
		}
		v, _ = s.queues.LoadOrStore(id, &queue{})
	}
	q := v.(*queue)
	c := &change{fn: fn, done: make(chan struct{})}
	q.mu.Lock()
	q.pending = append(q.pending, c)
	start := !q.writing
	q.writing = true
	q.mu.Unlock()
	if start {
		go s.drain(id, q)
	}
	select {
	case <-c.done:
		return c.tok, c.err
	case <-ctx.Done():
	}
	// A change still waiting is withdrawn; one already in a write is answered by it.
	q.mu.Lock()
	if i := slices.Index(q.pending, c); i >= 0 {
		q.pending = slices.Delete(q.pending, i, i+1)
		q.mu.Unlock()
		return Token{}, fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
	}
	q.mu.Unlock()
	<-c.done
	return c.tok, c.err
}

// drain writes the queued changes of token id, a batch at a time, until none are left.
func (s *Store) drain(id string, q *queue) {
	for {
		q.mu.Lock()
		n := min(len(q.pending), maxBatch)
		if n == 0 {
			q.writing = false
			q.mu.Unlock()
			return
		}
		batch := slices.Clone(q.pending[:n])
		q.pending = slices.Delete(q.pending, 0, n)
		q.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
		err := s.commit(ctx, id, q, batch)
		cancel()
		for _, c := range batch {
			if err != nil && c.err == nil {
				// Not written: a change the record refused keeps its refusal, the others
				// fail.
				c.tok, c.err = Token{}, err
			}
			close(c.done)
		}
	}
}

// commit applies batch to the record id and writes it with compare-and-swap, retrying when
// another writer got there first. It sets the answer of each change that fn refused or that
// the write carried; an error it returns is the answer of all of them.
func (s *Store) commit(ctx context.Context, id string, q *queue, batch []*change) error {
	for attempt := range maxAttempts {
		rec, rev := q.last, q.rev
		if rev == 0 {
			var err error
			if rec, rev, err = s.get(ctx, id); err != nil {
				return err
			}
		}
		changed := false
		for _, c := range batch {
			next := rec
			if c.err = c.fn(&next); c.err != nil {
				c.tok = Token{}
				continue
			}
			rec, c.tok, changed = next, next.Token, true
		}
		if !changed {
			return nil
		}
		data, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("admission: encoding token: %w", err)
		}
		next, err := s.kv.Update(ctx, recordKey(id), data, rev)
		if err == nil {
			q.last, q.rev = rec, next
			return nil
		}
		q.rev = 0 // read the record again
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		// Another writer (another replica) won; back off a little, with jitter, so that a storm on one
		// multi-use token does not spin.
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(attempt+1)*int64(time.Millisecond)))
		select {
		case <-time.After(time.Duration(n.Int64())):
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
		}
	}
	return fmt.Errorf("%w: token %s is contended; retry", ErrUnavailable, id)
}

// Consume spends one use of the token secret for DSN dsn. check, if not nil, sees the token
// before the use is spent and may refuse it. The token must be known, its key right, and it
// must not be revoked, expired, spent or meant for another DSN. It returns the token as it is
// after the use.
func (s *Store) Consume(ctx context.Context, secret, dsn string, check func(Token) error) (Token, error) {
	id, key, err := ParseSecret(secret)
	if err != nil {
		return Token{}, err
	}
	tok, err := s.update(ctx, id, func(rec *record) error {
		if subtle.ConstantTimeCompare([]byte(rec.KeyHash), []byte(hashKey(key))) != 1 {
			return ErrInvalidToken
		}
		now := s.now()
		switch rec.State(now) {
		case StateRevoked:
			return fmt.Errorf("%w: token %s", ErrRevoked, rec.ID)
		case StateExpired:
			return fmt.Errorf("%w: token %s expired at %s", ErrExpired, rec.ID, rec.ExpiresAt.Format(time.RFC3339))
		case StateExhausted:
			return fmt.Errorf("%w: token %s allowed %d admissions", ErrExhausted, rec.ID, rec.Uses)
		}
		if rec.DSN != "" && rec.DSN != dsn {
			return fmt.Errorf("%w: token %s admits %q only", ErrNotForDSN, rec.ID, rec.DSN)
		}
		if check != nil {
			if err := check(rec.Token); err != nil {
				return err
			}
		}
		t := now.UTC()
		rec.Used++
		rec.LastUsedBy, rec.LastUsedAt = dsn, &t
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return Token{}, ErrInvalidToken // an unknown id is as invalid as a wrong key
	}
	return tok, err
}

// Revoke revokes the token id at once; revoking a revoked token changes nothing.
func (s *Store) Revoke(ctx context.Context, id string) (Token, error) {
	return s.update(ctx, id, func(rec *record) error {
		if rec.RevokedAt == nil {
			t := s.now().UTC()
			rec.RevokedAt = &t
		}
		return nil
	})
}
