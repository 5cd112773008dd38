package search

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/elastic/go-elasticsearch/v8/esutil"
)

// Elastic is an Elasticsearch or OpenSearch cluster. Documents go to one index per UTC day,
// <prefix>-YYYY.MM.DD, created on first write from the index template <prefix> that Open
// installs; searches span <prefix>-*. Indexed documents become visible to searches after the
// index refresh interval (1s by default); Refresh makes them visible at once.
type Elastic struct {
	es     *elasticsearch.Client
	target Target
	opts   Options
	log    *slog.Logger

	mu     sync.RWMutex
	closed bool
}

var _ Index = (*Elastic)(nil)

// OpenElastic connects to the cluster t names, checks that it answers and installs the index
// template.
func OpenElastic(t Target, opts Options) (*Elastic, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.WithDefaults()
	var rt http.RoundTripper = http.DefaultTransport.(*http.Transport).Clone()
	if t.Flavor == FlavorOpenSearch {
		rt = openSearchTransport{rt}
	}
	es, err := elasticsearch.NewClient(elasticsearch.Config{
		Addresses:     []string{t.BaseURL},
		Username:      t.User,
		Password:      t.Password,
		APIKey:        t.APIKey,
		Transport:     rt,
		RetryOnStatus: []int{http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout},
		MaxRetries:    opts.MaxRetries,
		RetryBackoff: func(attempt int) time.Duration {
			return min(100*time.Millisecond<<min(attempt, 10), 10*time.Second)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadURL, t, err)
	}
	e := &Elastic{es: es, target: t, opts: opts, log: opts.Logger.With("search", t.String())}
	ctx, cancel := context.WithTimeout(context.Background(), opts.Timeout)
	defer cancel()
	res, err := es.Info(es.Info.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrUnreachable, t, err)
	}
	if err := e.check(res, "GET /"); err != nil {
		return nil, err
	}
	if err := e.putTemplate(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

// template is the index template: strict top-level fields, free-form fields.* as keywords.
func (e *Elastic) template() ([]byte, error) {
	return json.Marshal(map[string]any{
		"index_patterns": []string{e.target.Prefix + "-*"},
		"priority":       100,
		"template": map[string]any{
			"settings": map[string]any{
				"number_of_shards":   e.target.Shards,
				"number_of_replicas": e.target.Replicas,
			},
			"mappings": map[string]any{
				"dynamic": "strict",
				"dynamic_templates": []any{map[string]any{
					"fields_as_keywords": map[string]any{
						"path_match":         "fields.*",
						"match_mapping_type": "string",
						"mapping":            map[string]any{"type": "keyword"},
					},
				}},
				"properties": map[string]any{
					"id":       map[string]any{"type": "keyword"},
					"time":     map[string]any{"type": "date_nanos"},
					"kind":     map[string]any{"type": "keyword"},
					"dsn":      map[string]any{"type": "keyword"},
					"type":     map[string]any{"type": "keyword"},
					"severity": map[string]any{"type": "keyword"},
					"message":  map[string]any{"type": "text", "analyzer": "standard"},
					"fields":   map[string]any{"type": "object", "dynamic": true},
					// Kept in _source, never searched.
					"data": map[string]any{"type": "text", "index": false},
				},
			},
		},
	})
}

func (e *Elastic) putTemplate(ctx context.Context) error {
	body, err := e.template()
	if err != nil {
		return fmt.Errorf("%w: index template: %v", ErrBackend, err)
	}
	res, err := e.es.Indices.PutIndexTemplate(e.target.Prefix, bytes.NewReader(body), e.es.Indices.PutIndexTemplate.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("%w: %s: PUT /_index_template/%s: %w", ErrBackend, e.target, e.target.Prefix, err)
	}
	return e.check(res, "PUT /_index_template/"+e.target.Prefix)
}

// check turns a non-2xx response into an error and closes the body either way.
func (e *Elastic) check(res *esapi.Response, what string) error {
	defer res.Body.Close()
	if !res.IsError() {
		_, _ = io.Copy(io.Discard, res.Body)
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(res.Body, 2048))
	return fmt.Errorf("%w: %s: %s: HTTP %d: %s", ErrBackend, e.target, what, res.StatusCode, strings.TrimSpace(string(b)))
}

// indexName is the daily index a document at t goes to.
func (e *Elastic) indexName(t time.Time) string {
	return e.target.Prefix + "-" + t.UTC().Format("2006.01.02")
}

// Index implements Index through the bulk API.
func (e *Elastic) Index(ctx context.Context, docs ...Document) error {
	docs, err := prepare(docs)
	if err != nil {
		return err
	}
	if len(docs) == 0 {
		return nil
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, e.opts.Timeout)
	defer cancel()
	var (
		mu       sync.Mutex
		failures []string
		failed   int
	)
	bi, err := esutil.NewBulkIndexer(esutil.BulkIndexerConfig{
		Client:        e.es,
		NumWorkers:    1,
		FlushBytes:    5 << 20,
		FlushInterval: time.Hour, // flushed by Close below
		OnError: func(_ context.Context, err error) {
			mu.Lock()
			defer mu.Unlock()
			failures = append(failures, err.Error())
		},
	})
	if err != nil {
		return fmt.Errorf("%w: %s: bulk indexer: %w", ErrBackend, e.target, err)
	}
	onFailure := func(_ context.Context, item esutil.BulkIndexerItem, res esutil.BulkIndexerResponseItem, err error) {
		mu.Lock()
		defer mu.Unlock()
		failed++
		if len(failures) < 5 {
			if err != nil {
				failures = append(failures, fmt.Sprintf("%s: %v", item.DocumentID, err))
			} else {
				failures = append(failures, fmt.Sprintf("%s: %d %s: %s", item.DocumentID, res.Status, res.Error.Type, res.Error.Reason))
			}
		}
	}
	for _, d := range docs {
		body, err := json.Marshal(d)
		if err != nil {
			_ = bi.Close(ctx)
			return fmt.Errorf("%w: encoding document %q: %v", ErrInvalid, d.ID, err)
		}
		if err := bi.Add(ctx, esutil.BulkIndexerItem{
			Action:     "index",
			Index:      e.indexName(d.Time),
			DocumentID: d.ID,
			Body:       bytes.NewReader(body),
			OnFailure:  onFailure,
		}); err != nil {
			_ = bi.Close(ctx)
			return fmt.Errorf("%w: %s: bulk add: %w", ErrBackend, e.target, err)
		}
	}
	if err := bi.Close(ctx); err != nil {
		return fmt.Errorf("%w: %s: bulk flush: %w", ErrBackend, e.target, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if failed > 0 || len(failures) > 0 {
		return fmt.Errorf("%w: %s: %d of %d documents not indexed: %s", ErrBackend, e.target, max(failed, 1), len(docs), strings.Join(failures, "; "))
	}
	return nil
}

// searchIndices names the indices a query needs: the days it spans, or all of them.
func (e *Elastic) searchIndices(q Query) []string {
	if q.From.IsZero() || q.To.IsZero() || q.To.Sub(q.From) > 62*24*time.Hour {
		return []string{e.target.Prefix + "-*"}
	}
	var out []string
	for d := q.From.UTC().Truncate(24 * time.Hour); !d.After(q.To); d = d.Add(24 * time.Hour) {
		out = append(out, e.indexName(d))
	}
	return out
}

// searchBody renders q as an Elasticsearch query: every criterion a filter, sorted by time, id.
func searchBody(q Query) ([]byte, error) {
	var filters []any
	term := func(field, v string) {
		if v != "" {
			filters = append(filters, map[string]any{"term": map[string]any{field: v}})
		}
	}
	term("kind", string(q.Kind))
	term("dsn", q.DSN)
	term("type", q.Type)
	term("severity", q.Severity)
	for k, v := range q.Fields {
		term("fields."+k, v)
	}
	if !q.From.IsZero() || !q.To.IsZero() {
		r := map[string]any{"format": "strict_date_optional_time_nanos"}
		if !q.From.IsZero() {
			r["gte"] = q.From.UTC().Format(time.RFC3339Nano)
		}
		if !q.To.IsZero() {
			r["lte"] = q.To.UTC().Format(time.RFC3339Nano)
		}
		filters = append(filters, map[string]any{"range": map[string]any{"time": r}})
	}
	if q.Text != "" {
		filters = append(filters, map[string]any{"match": map[string]any{"message": map[string]any{"query": q.Text, "operator": "and"}}})
	}
	return json.Marshal(map[string]any{
		"size":             q.limit(),
		"track_total_hits": true,
		"sort":             []any{map[string]any{"time": "asc"}, map[string]any{"id": "asc"}},
		"query":            map[string]any{"bool": map[string]any{"filter": filters}},
	})
}

// Search implements Index.
func (e *Elastic) Search(ctx context.Context, q Query) (Result, error) {
	if err := q.Validate(); err != nil {
		return Result{}, err
	}
	body, err := searchBody(q)
	if err != nil {
		return Result{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return Result{}, ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, e.opts.Timeout)
	defer cancel()
	s := e.es.Search
	res, err := s(s.WithContext(ctx), s.WithIndex(e.searchIndices(q)...), s.WithBody(bytes.NewReader(body)),
		s.WithIgnoreUnavailable(true), s.WithAllowNoIndices(true))
	if err != nil {
		return Result{}, fmt.Errorf("%w: %s: search: %w", ErrBackend, e.target, err)
	}
	defer res.Body.Close()
	if res.IsError() {
		return Result{}, e.check(res, "search")
	}
	var out struct {
		Hits struct {
			Total struct {
				Value int `json:"value"`
			} `json:"total"`
			Hits []struct {
				Source Document `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		return Result{}, fmt.Errorf("%w: %s: decoding search response: %v", ErrBackend, e.target, err)
	}
	r := Result{Total: out.Hits.Total.Value, Hits: make([]Document, len(out.Hits.Hits))}
	for i, h := range out.Hits.Hits {
		h.Source.Time = h.Source.Time.UTC()
		r.Hits[i] = h.Source
	}
	return r, nil
}

// Refresh makes indexed documents visible to searches at once.
func (e *Elastic) Refresh(ctx context.Context) error {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return ErrClosed
	}
	r := e.es.Indices.Refresh
	res, err := r(r.WithContext(ctx), r.WithIndex(e.target.Prefix+"-*"), r.WithIgnoreUnavailable(true), r.WithAllowNoIndices(true))
	if err != nil {
		return fmt.Errorf("%w: %s: refresh: %w", ErrBackend, e.target, err)
	}
	return e.check(res, "refresh")
}

// Close releases the client.
func (e *Elastic) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	if err := e.es.Close(context.Background()); err != nil && !errors.Is(err, elasticsearch.ErrClosed) {
		return fmt.Errorf("%w: %s: close: %w", ErrBackend, e.target, err)
	}
	return nil
}

// openSearchTransport lets the Elasticsearch client talk to OpenSearch: it sends plain JSON
// media types instead of Elasticsearch's versioned ones, and marks responses with the product
// header the client insists on.
type openSearchTransport struct{ next http.RoundTripper }

func (t openSearchTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	for _, h := range []string{"Accept", "Content-Type"} {
		if v := req.Header.Get(h); strings.Contains(v, "compatible-with") {
			if strings.Contains(v, "x-ndjson") {
				req.Header.Set(h, "application/x-ndjson")
			} else {
				req.Header.Set(h, "application/json")
			}
		}
	}
	res, err := t.next.RoundTrip(req)
	if err == nil && res.Header.Get("X-Elastic-Product") == "" {
		res.Header.Set("X-Elastic-Product", "Elasticsearch")
	}
	return res, err
}
