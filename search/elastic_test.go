package search_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/search"
	"github.com/dsnscale/dsnscale/tsdb/queue"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		url  string
		want search.Target
		err  string
	}{
		{url: "http://127.0.0.1:9200", want: search.Target{Flavor: "elasticsearch", BaseURL: "http://127.0.0.1:9200", Prefix: "dsnscale-events", Shards: 1, Replicas: 1}},
		{url: "elasticsearch+https://u:p@es:9243/base/?index=ev&replicas=0&shards=3", want: search.Target{Flavor: "elasticsearch", BaseURL: "https://es:9243/base", User: "u", Password: "p", Prefix: "ev", Shards: 3, Replicas: 0}},
		{url: "opensearch://os:9200?api_key=k", want: search.Target{Flavor: "opensearch", BaseURL: "http://os:9200", APIKey: "k", Prefix: "dsnscale-events", Shards: 1, Replicas: 1}},
		{url: "es:9200", err: "no scheme"},
		{url: "solr://h:8983", err: `scheme "solr"`},
		{url: "http://h", err: "want host:port"},
		{url: "http://h:0", err: `port "0"`},
		{url: "http://h:9200?index=Events", err: `index "Events"`},
		{url: "http://h:9200?shards=0", err: `shards "0"`},
		{url: "http://h:9200?replicas=x", err: `replicas "x"`},
		{url: "http://h:9200?refresh=true", err: `unknown parameter "refresh"`},
		{url: "http://h:9200?api_key=s3cr3t&api_key=b", err: `parameter "api_key"`},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			got, err := search.ParseURL(tt.url)
			if tt.err != "" {
				require.ErrorIs(t, err, search.ErrBadURL)
				assert.Contains(t, err.Error(), tt.err)
				assert.NotContains(t, err.Error(), "s3cr3t")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestOpenErrors(t *testing.T) {
	_, err := search.Open("", "", search.Options{})
	require.ErrorIs(t, err, search.ErrBadURL)
	_, err = search.Open("", t.TempDir(), search.Options{Timeout: -1})
	require.ErrorIs(t, err, search.ErrInvalid)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	_, err = search.Open("http://"+addr, "", search.Options{Timeout: 2 * time.Second, MaxRetries: 1})
	require.ErrorIs(t, err, search.ErrUnreachable)
	assert.Contains(t, err.Error(), addr)
}

// fakeES answers the requests this package sends with canned responses; it checks what the
// client sends and how it reads answers, not Elasticsearch's behaviour (the conformance suite does
// that when DSNSCALE_ES_URL names a real server).
type fakeES struct {
	mu        sync.Mutex
	product   string
	infoCode  int
	template  map[string]any
	bulk      []string // "index id" of each bulk item
	failID    string   // a bulk item to reject
	search    []string // "path body"
	headers   []http.Header
	refreshes int
}

func (f *fakeES) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.headers = append(f.headers, r.Header.Clone())
	if f.product != "" {
		w.Header().Set("X-Elastic-Product", f.product)
	}
	w.Header().Set("Content-Type", "application/json")
	body, _ := io.ReadAll(r.Body)
	switch {
	case r.URL.Path == "/":
		if f.infoCode != 0 {
			w.WriteHeader(f.infoCode)
			_, _ = io.WriteString(w, `{"error":"security_exception"}`)
			return
		}
		_, _ = io.WriteString(w, `{"version":{"number":"8.19.0"}}`)
	case strings.HasPrefix(r.URL.Path, "/_index_template/"):
		_ = json.Unmarshal(body, &f.template)
		_, _ = io.WriteString(w, `{"acknowledged":true}`)
	case r.URL.Path == "/_bulk":
		var items []string
		sc := bufio.NewScanner(strings.NewReader(string(body)))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for i := 0; sc.Scan(); i++ {
			if i%2 == 1 {
				continue
			}
			var meta struct {
				Index struct {
					Index string `json:"_index"`
					ID    string `json:"_id"`
				} `json:"index"`
			}
			_ = json.Unmarshal(sc.Bytes(), &meta)
			f.bulk = append(f.bulk, meta.Index.Index+" "+meta.Index.ID)
			status := `{"index":{"_index":"` + meta.Index.Index + `","_id":"` + meta.Index.ID + `","status":201,"result":"created"}}`
			if meta.Index.ID == f.failID {
				status = `{"index":{"_index":"` + meta.Index.Index + `","_id":"` + meta.Index.ID + `","status":400,"error":{"type":"mapper_parsing_exception","reason":"bad"}}}`
			}
			items = append(items, status)
		}
		errors := f.failID != ""
		_, _ = io.WriteString(w, `{"took":1,"errors":`+map[bool]string{true: "true", false: "false"}[errors]+`,"items":[`+strings.Join(items, ",")+`]}`)
	case strings.HasSuffix(r.URL.Path, "/_search"):
		f.search = append(f.search, r.URL.Path+"?"+r.URL.RawQuery+" "+string(body))
		_, _ = io.WriteString(w, `{"hits":{"total":{"value":7},"hits":[{"_source":{"id":"x","time":"2024-03-01T23:00:00.000000001+01:00","kind":"event","message":"m","fields":{"a":"b"}}}]}}`)
	case strings.HasSuffix(r.URL.Path, "/_refresh"):
		f.refreshes++
		_, _ = io.WriteString(w, `{"_shards":{"total":1,"successful":1,"failed":0}}`)
	default:
		http.NotFound(w, r)
	}
}

func TestElasticRequests(t *testing.T) {
	f := &fakeES{product: "Elasticsearch"}
	srv := httptest.NewServer(f)
	defer srv.Close()
	idx, err := search.Open("elasticsearch://"+strings.TrimPrefix(srv.URL, "http://")+"?index=ev&replicas=0", "", search.Options{})
	require.NoError(t, err)
	defer idx.Close()

	f.mu.Lock()
	assert.Equal(t, []any{"ev-*"}, f.template["index_patterns"])
	props := f.template["template"].(map[string]any)["mappings"].(map[string]any)["properties"].(map[string]any)
	assert.Equal(t, "date_nanos", props["time"].(map[string]any)["type"])
	f.mu.Unlock()

	day1 := time.Date(2024, 3, 1, 23, 59, 59, 0, time.UTC)
	docs := []search.Document{
		{ID: "a", Time: day1, Kind: search.KindEvent},
		{ID: "b", Time: day1.Add(2 * time.Second), Kind: search.KindLog},
		{ID: "c", Time: day1.In(time.FixedZone("X", 5*3600)), Kind: search.KindAudit},
	}
	require.NoError(t, idx.Index(context.Background(), docs...))
	f.mu.Lock()
	assert.Equal(t, []string{"ev-2024.03.01 a", "ev-2024.03.02 b", "ev-2024.03.01 c"}, f.bulk, "one index per UTC day")
	f.mu.Unlock()

	f.failID = "b"
	err = idx.Index(context.Background(), docs...)
	require.ErrorIs(t, err, search.ErrBackend)
	assert.Contains(t, err.Error(), "1 of 3 documents not indexed")
	assert.Contains(t, err.Error(), "mapper_parsing_exception")

	r, err := idx.Search(context.Background(), search.Query{Text: "link down", Kind: search.KindEvent,
		Fields: map[string]string{"tenant": "acme"}, From: day1, To: day1.Add(26 * time.Hour), Limit: 5})
	require.NoError(t, err)
	assert.Equal(t, 7, r.Total)
	require.Len(t, r.Hits, 1)
	assert.Equal(t, time.Date(2024, 3, 1, 22, 0, 0, 1, time.UTC), r.Hits[0].Time, "times come back in UTC")
	f.mu.Lock()
	require.Len(t, f.search, 1)
	path, body, _ := strings.Cut(f.search[0], " ")
	assert.True(t, strings.HasPrefix(path, "/ev-2024.03.01,ev-2024.03.02,ev-2024.03.03/_search?"), path)
	assert.Contains(t, path, "ignore_unavailable=true")
	var sb map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &sb))
	assert.Equal(t, 5.0, sb["size"])
	assert.JSONEq(t, `[{"time":"asc"},{"id":"asc"}]`, mustJSON(sb["sort"]))
	assert.JSONEq(t, `{"bool":{"filter":[
		{"term":{"kind":"event"}},
		{"term":{"fields.tenant":"acme"}},
		{"range":{"time":{"format":"strict_date_optional_time_nanos","gte":"2024-03-01T23:59:59Z","lte":"2024-03-03T01:59:59Z"}}},
		{"match":{"message":{"operator":"and","query":"link down"}}}]}}`, mustJSON(sb["query"]))
	f.mu.Unlock()

	require.NoError(t, search.Refresh(context.Background(), idx))
	assert.Equal(t, 1, f.refreshes)
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestElasticRefusals(t *testing.T) {
	t.Run("not elasticsearch", func(t *testing.T) {
		srv := httptest.NewServer(&fakeES{})
		defer srv.Close()
		_, err := search.Open(srv.URL, "", search.Options{})
		require.ErrorIs(t, err, search.ErrUnreachable)
		assert.Contains(t, err.Error(), "not Elasticsearch")
	})
	t.Run("authentication", func(t *testing.T) {
		srv := httptest.NewServer(&fakeES{product: "Elasticsearch", infoCode: http.StatusUnauthorized})
		defer srv.Close()
		_, err := search.Open(srv.URL, "", search.Options{})
		require.ErrorIs(t, err, search.ErrBackend)
		assert.Contains(t, err.Error(), "HTTP 401")
	})
}

func TestOpenSearchCompatibility(t *testing.T) {
	f := &fakeES{} // OpenSearch sends no X-Elastic-Product header
	srv := httptest.NewServer(f)
	defer srv.Close()
	idx, err := search.Open("opensearch://"+strings.TrimPrefix(srv.URL, "http://"), "", search.Options{})
	require.NoError(t, err)
	defer idx.Close()
	require.NoError(t, idx.Index(context.Background(), search.Document{ID: "a", Time: time.Unix(1, 0), Kind: search.KindLog}))
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, h := range f.headers {
		for _, name := range []string{"Accept", "Content-Type"} {
			assert.NotContains(t, h.Get(name), "compatible-with", "OpenSearch refuses Elasticsearch's versioned media types")
		}
	}
}

func TestSinkThroughAQueue(t *testing.T) {
	idx, err := search.Open("", t.TempDir(), search.Options{})
	require.NoError(t, err)
	defer idx.Close()
	q, err := queue.New(queue.Config{Name: "events", BatchSize: 2, FlushInterval: time.Hour}, search.Sink(idx))
	require.NoError(t, err)
	at := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	q.Offer(search.Document{ID: "a", Time: at, Kind: search.KindEvent}, search.Document{ID: "b", Time: at, Kind: search.KindEvent})
	q.Offer(search.Document{ID: "c", Time: at, Kind: "bogus"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, q.Close(ctx))
	r, err := idx.Search(ctx, search.Query{})
	require.NoError(t, err)
	assert.Equal(t, 2, r.Total)
	s := q.Stats()
	assert.Equal(t, 1, s.Dropped[queue.ReasonFailed])
	assert.Equal(t, uint64(1), s.Errors, "an invalid document is not retried")
}
