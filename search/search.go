// Package search indexes and queries the control plane's events, logs and audit records by text,
// fields and time range, behind one interface with two implementations:
//
//   - embedded: a bleve index in a directory;
//   - Elasticsearch or OpenSearch, through go-elasticsearch: bulk indexing, an index template,
//     one index per day.
//
// Open chooses one by URL. Both pass the conformance suite searchtest.Run. Indexing is
// synchronous and idempotent by document ID; callers that must never wait put a queue.Queue in
// front (see package tsdb/queue).
package search

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"time"
	"unicode/utf8"
)

// Sentinel errors. Errors returned by this package wrap one of them.
var (
	// ErrBadURL marks an index URL that cannot be used.
	ErrBadURL = errors.New("search: bad index URL")
	// ErrUnreachable marks a server that did not answer.
	ErrUnreachable = errors.New("search: server unreachable")
	// ErrInvalid marks a document, query or option that breaks the rules.
	ErrInvalid = errors.New("search: invalid input")
	// ErrBackend marks a failure reported by, or in talking to, the backend.
	ErrBackend = errors.New("search: backend error")
	// ErrClosed marks use of a closed Index.
	ErrClosed = errors.New("search: closed")
)

// Kind is what a document records.
type Kind string

// Document kinds.
const (
	KindEvent Kind = "event" // something that happened on a DSN or in the control plane
	KindLog   Kind = "log"   // a log line
	KindAudit Kind = "audit" // who changed what through the northbound API
)

// Severities a document may carry (the same as wire.Event's).
var Severities = []string{"debug", "info", "warning", "error"}

// Limits on documents and queries, shared by every implementation.
const (
	MaxIDBytes       = 512
	MaxMessageBytes  = 32 << 10
	MaxShortBytes    = 256 // DSN, Type
	MaxFields        = 64
	MaxFieldValue    = 1024
	MaxDataBytes     = 1 << 20
	DefaultLimit     = 100
	MaxLimit         = 10000
	MaxQueryTextSize = 1024
)

// Times outside this range cannot be indexed (bleve keeps nanoseconds since 1970 in an int64).
var (
	MinTime = time.Unix(0, 0).UTC()
	MaxTime = time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC)
)

var fieldKeyPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Document is one event, log line or audit record.
type Document struct {
	// ID identifies the document; indexing a document with an existing ID replaces it. Empty
	// means a random ID (and a retried write may then store the document twice).
	ID       string            `json:"id"`
	Time     time.Time         `json:"time"`
	Kind     Kind              `json:"kind"`
	DSN      string            `json:"dsn,omitempty"`
	Type     string            `json:"type,omitempty"`
	Severity string            `json:"severity,omitempty"`
	Message  string            `json:"message,omitempty"`
	Fields   map[string]string `json:"fields,omitempty"`
	// Data is kept with the document and returned with it, but not indexed: a payload, such as
	// the records of an audit block. At most MaxDataBytes.
	Data string `json:"data,omitempty"`
}

// Validate checks a document.
func (d Document) Validate() error {
	if len(d.ID) > MaxIDBytes || !utf8.ValidString(d.ID) {
		return fmt.Errorf("%w: document %q: id must be valid UTF-8 of at most %d bytes", ErrInvalid, d.ID, MaxIDBytes)
	}
	if d.Time.Before(MinTime) || !d.Time.Before(MaxTime) {
		return fmt.Errorf("%w: document %q: time %v: want 1970-01-01 to 2261-12-31", ErrInvalid, d.ID, d.Time)
	}
	if err := validKind(d.Kind); err != nil {
		return fmt.Errorf("%w: document %q: %w", ErrInvalid, d.ID, err)
	}
	for _, f := range []struct{ name, v string }{{"dsn", d.DSN}, {"type", d.Type}} {
		if len(f.v) > MaxShortBytes || !utf8.ValidString(f.v) {
			return fmt.Errorf("%w: document %q: %s must be valid UTF-8 of at most %d bytes", ErrInvalid, d.ID, f.name, MaxShortBytes)
		}
	}
	if err := validSeverity(d.Severity); err != nil {
		return fmt.Errorf("%w: document %q: %w", ErrInvalid, d.ID, err)
	}
	if len(d.Message) > MaxMessageBytes || !utf8.ValidString(d.Message) {
		return fmt.Errorf("%w: document %q: message must be valid UTF-8 of at most %d bytes", ErrInvalid, d.ID, MaxMessageBytes)
	}
	if len(d.Data) > MaxDataBytes || !utf8.ValidString(d.Data) {
		return fmt.Errorf("%w: document %q: data must be valid UTF-8 of at most %d bytes", ErrInvalid, d.ID, MaxDataBytes)
	}
	if len(d.Fields) > MaxFields {
		return fmt.Errorf("%w: document %q: %d fields: at most %d", ErrInvalid, d.ID, len(d.Fields), MaxFields)
	}
	for k, v := range d.Fields {
		if !fieldKeyPattern.MatchString(k) {
			return fmt.Errorf("%w: document %q: field name %q: want 1-64 of [A-Za-z0-9_-]", ErrInvalid, d.ID, k)
		}
		if v == "" || len(v) > MaxFieldValue || !utf8.ValidString(v) {
			return fmt.Errorf("%w: document %q: fields.%s: want non-empty UTF-8 of at most %d bytes", ErrInvalid, d.ID, k, MaxFieldValue)
		}
	}
	return nil
}

func validKind(k Kind) error {
	switch k {
	case KindEvent, KindLog, KindAudit:
		return nil
	}
	return fmt.Errorf("kind %q: want event, log or audit", k)
}

func validSeverity(s string) error {
	if s == "" {
		return nil
	}
	for _, v := range Severities {
		if s == v {
			return nil
		}
	}
	return fmt.Errorf("severity %q: want debug, info, warning or error", s)
}

// Query selects documents. Every set criterion must hold.
type Query struct {
	// Text: every word of it must occur in the message (case-insensitive; words as split by the
	// Unicode text segmentation rules).
	Text string
	// Kind, DSN, Type, Severity: exact values, when set.
	Kind     Kind
	DSN      string
	Type     string
	Severity string
	// Fields: each named field must have exactly the given value.
	Fields map[string]string
	// From and To bound the time, both inclusive; zero means unbounded.
	From, To time.Time
	// Limit is the most hits returned; 0 means DefaultLimit.
	Limit int
}

// Validate checks the query.
func (q Query) Validate() error {
	if len(q.Text) > MaxQueryTextSize || !utf8.ValidString(q.Text) {
		return fmt.Errorf("%w: query text must be valid UTF-8 of at most %d bytes", ErrInvalid, MaxQueryTextSize)
	}
	if q.Kind != "" {
		if err := validKind(q.Kind); err != nil {
			return fmt.Errorf("%w: query %w", ErrInvalid, err)
		}
	}
	if err := validSeverity(q.Severity); err != nil {
		return fmt.Errorf("%w: query %w", ErrInvalid, err)
	}
	for k, v := range q.Fields {
		if !fieldKeyPattern.MatchString(k) {
			return fmt.Errorf("%w: query field name %q: want 1-64 of [A-Za-z0-9_-]", ErrInvalid, k)
		}
		if v == "" {
			return fmt.Errorf("%w: query fields.%s: empty value", ErrInvalid, k)
		}
	}
	if !q.From.IsZero() && !q.To.IsZero() && q.To.Before(q.From) {
		return fmt.Errorf("%w: query to (%v) is before from (%v)", ErrInvalid, q.To, q.From)
	}
	for _, t := range []time.Time{q.From, q.To} {
		if !t.IsZero() && (t.Before(MinTime) || !t.Before(MaxTime)) {
			return fmt.Errorf("%w: query time %v: want 1970-01-01 to 2261-12-31", ErrInvalid, t)
		}
	}
	if q.Limit < 0 || q.Limit > MaxLimit {
		return fmt.Errorf("%w: query limit %d: want 0..%d", ErrInvalid, q.Limit, MaxLimit)
	}
	return nil
}

func (q Query) limit() int {
	if q.Limit == 0 {
		return DefaultLimit
	}
	return q.Limit
}

// Result is what a search found.
type Result struct {
	// Hits are the first Limit matching documents in time order (ties by ID).
	Hits []Document
	// Total counts all matching documents.
	Total int
}

// Index stores and searches documents. It is safe for concurrent use.
type Index interface {
	// Index stores docs, replacing documents with the same IDs. Invalid documents fail the
	// whole call before anything is written.
	Index(ctx context.Context, docs ...Document) error
	// Search returns the documents matching q.
	Search(ctx context.Context, q Query) (Result, error)
	// Close releases the index.
	Close() error
}

// Refresher is implemented by indexes whose writes reach searches only after a delay.
type Refresher interface {
	// Refresh makes every indexed document visible to searches.
	Refresh(ctx context.Context) error
}

// Refresh makes idx's writes visible to searches, if idx needs that (see Refresher).
func Refresh(ctx context.Context, idx Index) error {
	if r, ok := idx.(Refresher); ok {
		return r.Refresh(ctx)
	}
	return nil
}

// prepare validates docs and fills in missing IDs, returning a copy.
func prepare(docs []Document) ([]Document, error) {
	out := make([]Document, len(docs))
	for i, d := range docs {
		if d.ID == "" {
			d.ID = NewID()
		}
		d.Time = d.Time.UTC()
		if err := d.Validate(); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		out[i] = d
	}
	return out, nil
}

// NewID returns a random document ID.
func NewID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
