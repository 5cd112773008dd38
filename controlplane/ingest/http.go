package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dsnscale/dsnscale/inventory"
	"github.com/dsnscale/dsnscale/search"
	"github.com/dsnscale/dsnscale/tsdb"
)

// Paths of the query API, under the northbound API's /api/v1.
const (
	PathMetricsQuery     = "/api/v1/metrics/query"
	PathEvents           = "/api/v1/events"
	PathInventoryDSNs    = "/api/v1/inventory/dsns"
	PathInventoryDSN     = "/api/v1/inventory/dsns/{id}"
	PathInventorySummary = "/api/v1/inventory/summary"
)

// Routes are the ServeMux patterns the query API answers; Mount registers them.
var Routes = []string{PathMetricsQuery, PathEvents, PathInventoryDSNs, PathInventoryDSN, PathInventorySummary}

// Limits of the query API.
const (
	DefaultQueryRange  = time.Hour
	DefaultSeriesLimit = 1000
	MaxSeriesLimit     = 10000
	historyLimit       = 100
)

// Searcher finds documents; search.Index has it.
type Searcher interface {
	Search(ctx context.Context, q search.Query) (search.Result, error)
}

// InventoryReader reads the inventory; inventory.Inventory has it.
type InventoryReader interface {
	GetDSN(ctx context.Context, id string) (inventory.DSNRecord, error)
	ListDSNs(ctx context.Context, f inventory.Filter) (inventory.Page, error)
	Summarize(ctx context.Context) (inventory.Summary, error)
	AdmissionHistory(ctx context.Context, id string, limit int) ([]inventory.Admission, error)
	VersionHistory(ctx context.Context, id string) ([]inventory.VersionChange, error)
}

// HandlerConfig configures the query API. It is pure data; NewHandler checks it.
type HandlerConfig struct {
	TSDB      tsdb.Querier    // required
	Search    Searcher        // required
	Inventory InventoryReader // required
	// Now is the clock for default time ranges; nil is time.Now.
	Now func() time.Time
	// Logger logs failed queries; nil discards.
	Logger *slog.Logger
	// QueryTimeout bounds each query; 0 means DefaultQueryTimeout.
	QueryTimeout time.Duration
}

// Handler is the query API over this ingestion's backends (see NewHandler).
func (in *Ingest) Handler() http.Handler {
	h, _ := NewHandler(HandlerConfig{TSDB: in.tsdb, Search: in.index, Inventory: in.inv, Now: in.clock.Now,
		Logger: in.log, QueryTimeout: in.cfg.QueryTimeout})
	return h
}

// Mount registers h (from Handler or NewHandler) on mux for every path of Routes.
func Mount(mux *http.ServeMux, h http.Handler) {
	for _, p := range Routes {
		mux.Handle(p, h)
	}
}

type handler struct {
	cfg HandlerConfig
	mux *http.ServeMux
}

// NewHandler serves the query API; every route answers GET and HEAD, and errors as a JSON body
// {"code", "reason", "message", "field"}: 400 naming the parameter that is wrong, 404, 405, and
// 503 with Retry-After when a backend does not answer.
//
// GET /api/v1/metrics/query?match=SELECTOR&from=T&to=T&step=D&limit=N
//
//	match is a series selector (see ParseSelector), required. from and to are RFC 3339 times or
//	Unix seconds (default: the last hour); step is a duration ("15s", "1m30s") or seconds: with
//	one, each series has a point at from, from+step, ... (the last sample at or before it within
//	one step), without, its stored samples. limit caps the series (default 1000, at most
//	10000). The answer is Prometheus' range-query matrix:
//	{"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {labels},
//	"values": [[unix_seconds, "value"], ...]}]}, "truncated": bool}.
//
// GET /api/v1/events?q=TEXT&dsn=ID&type=T&severity=S&kind=event|log&field.NAME=V&from=T&to=T&limit=N
//
//	Events and log lines from DSNs, oldest first: every word of q in the message, and exact
//	values of the other filters (field.NAME for a field of the event). Answer {"items":
//	[documents], "total": n}, n counting all matches.
//
// GET /api/v1/inventory/dsns?labelSelector=k=v,k2=v2&state=S&site=S&softwareVersion=V&limit=N&continue=ID
//
//	DSNs of the inventory in id order, a page at a time: {"items": [records], "continue": ID},
//	continue empty on the last page.
//
// GET /api/v1/inventory/dsns/{id}: {"dsn": record, "admissions": [...], "versions": [...]}
// (the latest 100 admissions, oldest first). GET /api/v1/inventory/summary: counts by state and
// software version.
func NewHandler(cfg HandlerConfig) (http.Handler, error) {
	switch {
	case cfg.TSDB == nil:
		return nil, fmt.Errorf("%w: HandlerConfig.TSDB: required", ErrConfig)
	case cfg.Search == nil:
		return nil, fmt.Errorf("%w: HandlerConfig.Search: required", ErrConfig)
	case cfg.Inventory == nil:
		return nil, fmt.Errorf("%w: HandlerConfig.Inventory: required", ErrConfig)
	case cfg.QueryTimeout < 0:
		return nil, fmt.Errorf("%w: HandlerConfig.QueryTimeout: %v must not be negative", ErrConfig, cfg.QueryTimeout)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.QueryTimeout == 0 {
		cfg.QueryTimeout = DefaultQueryTimeout
	}
	h := &handler{cfg: cfg, mux: http.NewServeMux()}
	for path, fn := range map[string]func(context.Context, *http.Request) (any, error){
		PathMetricsQuery:     h.metricsQuery,
		PathEvents:           h.events,
		PathInventoryDSNs:    h.inventoryDSNs,
		PathInventoryDSN:     h.inventoryDSN,
		PathInventorySummary: h.inventorySummary,
	} {
		h.mux.Handle(path, h.route(path, fn))
	}
	return h.mux, nil
}

// route answers with fn's result as JSON, or its error.
func (h *handler) route(path string, fn func(context.Context, *http.Request) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				h.cfg.Logger.Error("query handler panicked", "path", path, "panic", p)
				writeError(w, &httpError{status: http.StatusInternalServerError, reason: "InternalError", message: "internal error"})
			}
		}()
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, &httpError{status: http.StatusMethodNotAllowed, reason: "MethodNotAllowed",
				message: fmt.Sprintf("method %s is not allowed on %s; it is read with GET", r.Method, path)})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), h.cfg.QueryTimeout)
		defer cancel()
		v, err := fn(ctx, r)
		if err != nil {
			he := toHTTPError(err)
			if he.status >= 500 {
				h.cfg.Logger.Warn("query failed", "path", r.URL.Path, "status", he.status, "err", err)
			}
			writeError(w, he)
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
}

// httpError is an error with its HTTP answer.
type httpError struct {
	status  int
	reason  string
	field   string
	message string
	cause   error
}

func (e *httpError) Error() string {
	if e.field != "" {
		return fmt.Sprintf("%d %s: %s: %s", e.status, e.reason, e.field, e.message)
	}
	return fmt.Sprintf("%d %s: %s", e.status, e.reason, e.message)
}

func (e *httpError) Unwrap() error { return e.cause }

// badParam is a 400 about one query parameter.
func badParam(field, format string, args ...any) *httpError {
	return &httpError{status: http.StatusBadRequest, reason: "BadRequest", field: field, message: fmt.Sprintf(format, args...)}
}

// backendError maps a backend's error: its invalid-input errors are the request's fault (400 on
// field), a missing record is 404, anything else means the backend is not answering (503).
func backendError(backend, field string, err error) error {
	switch {
	case errors.Is(err, tsdb.ErrInvalid), errors.Is(err, search.ErrInvalid), errors.Is(err, inventory.ErrInvalid):
		return badParam(field, "%v", err)
	case errors.Is(err, inventory.ErrNotFound):
		return &httpError{status: http.StatusNotFound, reason: "NotFound", message: err.Error(), cause: err}
	case errors.Is(err, context.Canceled):
		return &httpError{status: 499, reason: "ClientClosedRequest", message: "client closed the request", cause: err}
	}
	return &httpError{status: http.StatusServiceUnavailable, reason: "ServiceUnavailable",
		message: fmt.Sprintf("the %s backend is unavailable: %v", backend, err), cause: err}
}

func toHTTPError(err error) *httpError {
	var he *httpError
	if errors.As(err, &he) {
		return he
	}
	return &httpError{status: http.StatusInternalServerError, reason: "InternalError", message: err.Error(), cause: err}
}

type errorBody struct {
	Code    int    `json:"code"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func writeError(w http.ResponseWriter, e *httpError) {
	if e.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, e.status, errorBody{Code: e.status, Reason: e.reason, Message: e.message, Field: e.field})
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

// params are a request's query parameters, checked against the ones a route accepts.
type params struct{ url.Values }

// parseParams rejects unknown and repeated parameters, so that a typo is an error rather than a
// filter silently ignored. Names with one of prefixes are accepted too.
func parseParams(r *http.Request, known []string, prefixes ...string) (params, error) {
	vals, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return params{}, badParam("", "malformed query string: %v", err)
	}
	for name, vs := range vals {
		ok := slices.Contains(known, name)
		for _, p := range prefixes {
			ok = ok || strings.HasPrefix(name, p)
		}
		if !ok {
			want := strings.Join(known, ", ")
			for _, p := range prefixes {
				want += ", " + p + "NAME"
			}
			return params{}, badParam(name, "unknown query parameter %q; this route accepts %s", name, want)
		}
		if len(vs) > 1 {
			return params{}, badParam(name, "given %d times; give it once", len(vs))
		}
	}
	return params{vals}, nil
}

// time reads a time parameter: RFC 3339 or Unix seconds. Absent gives def.
func (p params) time(name string, def time.Time) (time.Time, error) {
	s := p.Get(name)
	if s == "" {
		return def, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 9e12 {
		return time.Time{}, badParam(name, "%q is neither an RFC 3339 time (2025-01-02T15:04:05Z) nor Unix seconds", s)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(math.Round(frac*1e9))), nil
}

// duration reads a duration parameter: a Go duration ("1m30s") or seconds.
func (p params) duration(name string) (time.Duration, error) {
	s := p.Get(name)
	if s == "" {
		return 0, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return 0, badParam(name, "%q is negative", s)
		}
		return d, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > float64(math.MaxInt64/int64(time.Second)) {
		return 0, badParam(name, "%q is neither a duration (15s, 1m30s) nor a number of seconds", s)
	}
	return time.Duration(f * float64(time.Second)), nil
}

// int reads an integer parameter in [lo, hi]. Absent gives def.
func (p params) int(name string, def, lo, hi int) (int, error) {
	s := p.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, badParam(name, "%q: want an integer from %d to %d", s, lo, hi)
	}
	return n, nil
}
