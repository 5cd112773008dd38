package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/dsnscale/dsnscale/controlplane/rbac"
	"github.com/dsnscale/dsnscale/search"
)

// Index is what the audit needs of a search backend: search.Index (bleve or Elasticsearch)
// has it.
type Index interface {
	Index(ctx context.Context, docs ...search.Document) error
	Search(ctx context.Context, q search.Query) (search.Result, error)
}

// Searcher finds records.
type Searcher interface {
	Search(ctx context.Context, q Query) (Result, error)
}

// Result is what a search found: the first records in time order and how many matched.
type Result struct {
	Items []Record `json:"items"`
	// Total is how many records matched; with Truncated, how many matched among those the
	// search read, a lower bound.
	Total int `json:"total"`
	// Truncated says that the search stopped reading once the first records were certain,
	// and more may match.
	Truncated bool `json:"truncated,omitempty"`
}

// SearchStore keeps records in a search index, as documents of kind search.KindAudit. It is a
// Sink and a Searcher.
type SearchStore struct {
	idx Index

	mu      sync.Mutex // serialises Write, whose blocker is kept from batch to batch
	blocker *blocker
}

var (
	_ Sink     = (*SearchStore)(nil)
	_ Searcher = (*SearchStore)(nil)
)

// NewSearchStore stores records in idx.
func NewSearchStore(idx Index) *SearchStore { return &SearchStore{idx: idx, blocker: newBlocker()} }

// Write implements Sink: the records go to the index in blocks.
func (s *SearchStore) Write(ctx context.Context, records []Record) error {
	s.mu.Lock()
	docs, err := s.blocker.toBlocks(records)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return s.idx.Index(ctx, docs...)
}

// Query selects records; every set criterion must hold.
type Query struct {
	User, Kind, Verb, Tenant, Verdict string
	// From and To bound the time, both inclusive; zero means unbounded.
	From, To time.Time
	// Text: every word must occur in the record's summary (user, method, path, status,
	// verdict, binding, reason).
	Text string
	// Limit is the most records returned; 0 means search.DefaultLimit.
	Limit int
}

// Reading blocks. A search reads the matching blocks in time order, a page at a time, only until
// the first Limit matching records are certain, and never more than maxBlocksRead: its work is
// bounded by what it returns, not by how much audit there is.
const (
	blocksPerPage = 64
	maxBlocksRead = 2048
)

// blocks is the search for the blocks that may hold records matching q, from the block time
// from on.
func blocks(q Query, from time.Time) search.Query {
	sq := search.Query{Kind: search.KindAudit, Text: q.Text, From: from, To: q.To, Limit: blocksPerPage, Fields: map[string]string{}}
	for k, v := range map[string]string{fieldUser: q.User, fieldKind: q.Kind, fieldVerb: q.Verb, fieldTenant: q.Tenant, fieldVerdict: q.Verdict} {
		if v != "" {
			sq.Fields[k] = v
		}
	}
	return sq
}

// firstBlockTime is the earliest time a block holding records from q.From on may have.
func firstBlockTime(q Query) time.Time {
	if q.From.IsZero() {
		return time.Time{}
	}
	if t := q.From.Add(-blockSpan); t.After(search.MinTime) {
		return t
	}
	return search.MinTime
}

// matches reports whether r meets q, whose text is split into words.
func (q Query) matches(r Record, words []string, cache *wordCache) bool {
	for _, c := range []struct{ want, have string }{{q.User, r.User}, {q.Kind, r.Kind}, {q.Verb, r.Verb}, {q.Tenant, r.Tenant}, {q.Verdict, r.Verdict}} {
		if c.want != "" && c.want != c.have {
			return false
		}
	}
	if (!q.From.IsZero() && r.Time.Before(q.From)) || (!q.To.IsZero() && r.Time.After(q.To)) {
		return false
	}
	if len(words) == 0 {
		return true
	}
	have := cache.of(r)
	for _, w := range words {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// Search implements Searcher: it reads the blocks that may hold matches, in time order, and
// picks the records that do out of them. It stops once the first Limit matches are certain: no
// unread block can hold an earlier one, since a block's records are no earlier than its time.
// Total then counts the matches in the blocks read, and Truncated says that more blocks
// matched.
func (s *SearchStore) Search(ctx context.Context, q Query) (Result, error) {
	limit := q.Limit
	if limit == 0 {
		limit = search.DefaultLimit
	}
	words, cache := newWords(q.Text), newWordCache()
	var found []Record
	seen := map[string]bool{}
	from := firstBlockTime(q)
	read, more := 0, true
	for more {
		res, err := s.idx.Search(ctx, blocks(q, from))
		if err != nil {
			return Result{}, err
		}
		fresh := 0
		for _, d := range res.Hits {
			if seen[d.ID] { // pages overlap where blocks share a time
				continue
			}
			seen[d.ID] = true
			fresh++
			records, err := fromBlock(d)
			if err != nil {
				return Result{}, err
			}
			for _, r := range records {
				if q.matches(r, words, cache) {
					found = append(found, r)
				}
			}
			from = d.Time
		}
		read += fresh
		more = res.Total > len(res.Hits)
		slices.SortStableFunc(found, func(a, b Record) int { return a.Time.Compare(b.Time) })
		settled := len(found) >= limit && from.After(found[limit-1].Time)
		if settled || fresh == 0 || read >= maxBlocksRead {
			break
		}
	}
	return Result{Items: found[:min(limit, len(found))], Total: len(found), Truncated: more}, nil
}

// Query parameters of GET /api/v1/audit.
var queryParams = []string{"user", "kind", "verb", "tenant", "verdict", "from", "to", "text", "q", "limit"}

// FieldError is a bad query parameter.
type FieldError struct {
	Field, Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// ParseQuery reads the query parameters of GET /api/v1/audit: user, kind, verb, tenant, verdict
// (exact values), from and to (RFC 3339), text (or q, as the other search routes call it),
// limit (1 to search.MaxLimit). Errors are a *FieldError naming the parameter.
func ParseQuery(v url.Values) (Query, error) {
	for k, vals := range v {
		known := false
		for _, p := range queryParams {
			known = known || k == p
		}
		switch {
		case !known:
			field := k
			if field == "" {
				field = `""`
			}
			return Query{}, &FieldError{field, fmt.Sprintf("unknown parameter; want one of %s", strings.Join(queryParams, ", "))}
		case len(vals) > 1:
			return Query{}, &FieldError{k, "given more than once"}
		}
	}
	if v.Has("text") && v.Has("q") {
		return Query{}, &FieldError{"q", "q and text are the same parameter: give one"}
	}
	text := v.Get("text")
	if v.Has("q") {
		text = v.Get("q")
	}
	q := Query{User: v.Get("user"), Kind: v.Get("kind"), Verb: v.Get("verb"), Tenant: v.Get("tenant"), Verdict: v.Get("verdict"), Text: text}
	for name, val := range map[string]string{"user": q.User, "kind": q.Kind, "verb": q.Verb, "tenant": q.Tenant, "verdict": q.Verdict} {
		if len(val) > search.MaxFieldValue || !utf8.ValidString(val) {
			return Query{}, &FieldError{name, fmt.Sprintf("want valid UTF-8 of at most %d bytes", search.MaxFieldValue)}
		}
	}
	if q.Verb != "" && !validVerb(q.Verb) {
		return Query{}, &FieldError{"verb", fmt.Sprintf("%q is not a verb: want one of %v", q.Verb, rbac.Verbs)}
	}
	switch q.Verdict {
	case "", VerdictAllowed, VerdictDenied, VerdictUnauthenticated, VerdictLimited:
	default:
		return Query{}, &FieldError{"verdict", fmt.Sprintf("%q: want allowed, denied, unauthenticated or limited", q.Verdict)}
	}
	if len(q.Text) > search.MaxQueryTextSize || !utf8.ValidString(q.Text) {
		return Query{}, &FieldError{"text", fmt.Sprintf("want valid UTF-8 of at most %d bytes", search.MaxQueryTextSize)}
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &q.From}, {"to", &q.To}} {
		if s := v.Get(p.name); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return Query{}, &FieldError{p.name, fmt.Sprintf("%q is not an RFC 3339 time", s)}
			}
			if t.Before(search.MinTime) || !t.Before(search.MaxTime) {
				return Query{}, &FieldError{p.name, "want a time from 1970 to 2261"}
			}
			*p.dst = t
		}
	}
	if !q.From.IsZero() && !q.To.IsZero() && q.To.Before(q.From) {
		return Query{}, &FieldError{"to", "is before from"}
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > search.MaxLimit {
			return Query{}, &FieldError{"limit", fmt.Sprintf("%q: want 1 to %d", s, search.MaxLimit)}
		}
		q.Limit = n
	}
	return q, nil
}

func validVerb(v string) bool {
	for _, ok := range rbac.Verbs {
		if string(ok) == v {
			return true
		}
	}
	return false
}

// Handler serves GET /api/v1/audit: the query parameters of ParseQuery in, {"items": [Record...],
// "total": n} out, records in time order.
func Handler(s Searcher) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "", "the audit log is read with GET")
			return
		}
		q, err := ParseQuery(r.URL.Query())
		if err != nil {
			var fe *FieldError
			errors.As(err, &fe)
			writeError(w, http.StatusBadRequest, "BadRequest", fe.Field, fe.Message)
			return
		}
		res, err := s.Search(r.Context(), q)
		if err != nil {
			if errors.Is(err, search.ErrInvalid) {
				writeError(w, http.StatusBadRequest, "BadRequest", "", err.Error())
				return
			}
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "", "the audit store is unavailable: "+err.Error())
			return
		}
		if res.Items == nil {
			res.Items = []Record{}
		}
		writeJSON(w, http.StatusOK, res)
	})
}

type errorBody struct {
	Code    int    `json:"code"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func writeError(w http.ResponseWriter, status int, reason, field, message string) {
	writeJSON(w, status, errorBody{Code: status, Reason: reason, Message: message, Field: field})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(errorBody{Code: status, Reason: "InternalError", Message: "encoding the answer: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
