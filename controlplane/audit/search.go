package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
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
	Total int      `json:"total"`
}

// SearchStore keeps records in a search index, as documents of kind search.KindAudit. It is a
// Sink and a Searcher.
type SearchStore struct {
	idx Index
}

var (
	_ Sink     = (*SearchStore)(nil)
	_ Searcher = (*SearchStore)(nil)
)

// NewSearchStore stores records in idx.
func NewSearchStore(idx Index) *SearchStore { return &SearchStore{idx: idx} }

// Write implements Sink.
func (s *SearchStore) Write(ctx context.Context, records []Record) error {
	docs := make([]search.Document, len(records))
	for i, r := range records {
		docs[i] = toDocument(r)
	}
	return s.idx.Index(ctx, docs...)
}

// Field names of audit documents.
const (
	fieldUser, fieldSource, fieldMethod, fieldPath = "user", "source", "method", "path"
	fieldVerb, fieldKind, fieldTenant, fieldName   = "verb", "kind", "tenant", "name"
	fieldStatus, fieldVerdict, fieldBinding        = "status", "verdict", "binding"
	fieldReason, fieldDuration                     = "reason", "durationMs"
)

func toDocument(r Record) search.Document {
	fields := map[string]string{}
	set := func(k, v string) {
		if v == "" {
			return
		}
		fields[k] = truncate(v, search.MaxFieldValue)
	}
	set(fieldUser, r.User)
	set(fieldSource, r.Source)
	set(fieldMethod, r.Method)
	set(fieldPath, r.Path)
	set(fieldVerb, r.Verb)
	set(fieldKind, r.Kind)
	set(fieldTenant, r.Tenant)
	set(fieldName, r.Name)
	set(fieldStatus, strconv.Itoa(r.Status))
	set(fieldVerdict, r.Verdict)
	set(fieldBinding, r.Binding)
	set(fieldReason, r.Reason)
	set(fieldDuration, strconv.FormatFloat(r.DurationMs, 'f', -1, 64))
	severity := "info"
	switch {
	case r.Status >= 500:
		severity = "error"
	case r.Verdict != VerdictAllowed:
		severity = "warning"
	}
	user := r.User
	if user == "" {
		user = "anonymous"
	}
	msg := fmt.Sprintf("%s %s %s %d %s", user, r.Method, r.Path, r.Status, r.Verdict)
	if r.Binding != "" {
		msg += " by binding " + r.Binding
	}
	if r.Reason != "" {
		msg += ": " + r.Reason
	}
	return search.Document{
		ID: r.ID, Time: r.Time, Kind: search.KindAudit, Type: "api." + r.Verdict, Severity: severity,
		Message: truncate(msg, search.MaxMessageBytes), Fields: fields,
	}
}

func fromDocument(d search.Document) Record {
	f := d.Fields
	status, _ := strconv.Atoi(f[fieldStatus])
	dur, _ := strconv.ParseFloat(f[fieldDuration], 64)
	return Record{
		ID: d.ID, Time: d.Time, User: f[fieldUser], Source: f[fieldSource], Method: f[fieldMethod], Path: f[fieldPath],
		Verb: f[fieldVerb], Kind: f[fieldKind], Tenant: f[fieldTenant], Name: f[fieldName], Status: status,
		Verdict: f[fieldVerdict], Binding: f[fieldBinding], Reason: f[fieldReason], DurationMs: dur,
	}
}

// truncate cuts s to at most n bytes without splitting a character.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
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

// query is the search backend's form of q.
func (s *SearchStore) query(q Query) search.Query {
	sq := search.Query{Kind: search.KindAudit, Text: q.Text, From: q.From, To: q.To, Limit: q.Limit, Fields: map[string]string{}}
	for k, v := range map[string]string{fieldUser: q.User, fieldKind: q.Kind, fieldVerb: q.Verb, fieldTenant: q.Tenant, fieldVerdict: q.Verdict} {
		if v != "" {
			sq.Fields[k] = v
		}
	}
	return sq
}

// Search implements Searcher.
func (s *SearchStore) Search(ctx context.Context, q Query) (Result, error) {
	res, err := s.idx.Search(ctx, s.query(q))
	if err != nil {
		return Result{}, err
	}
	out := Result{Items: make([]Record, len(res.Hits)), Total: res.Total}
	for i, d := range res.Hits {
		out.Items[i] = fromDocument(d)
	}
	return out, nil
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
