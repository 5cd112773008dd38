package search

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/custom"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/keyword"
	"github.com/blevesearch/bleve/v2/analysis/token/lowercase"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/unicode"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/search/query"
)

// textAnalyzer splits text into Unicode words and lowercases them, like Elasticsearch's standard
// analyzer; it keeps stop words so that both backends agree on what "every word" means.
const textAnalyzer = "dsnscale_text"

// Bleve is the embedded index: a bleve (scorch) index in a directory.
type Bleve struct {
	idx  bleve.Index
	path string

	mu     sync.RWMutex
	closed bool
}

var _ Index = (*Bleve)(nil)

// OpenBleve opens the bleve index in dir, creating it if there is none.
func OpenBleve(dir string) (*Bleve, error) {
	path := filepath.Join(dir, "search.bleve")
	idx, err := bleve.OpenUsing(path, bleveRuntime())
	if errors.Is(err, bleve.ErrorIndexPathDoesNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBackend, err)
		}
		m, merr := bleveMapping()
		if merr != nil {
			return nil, merr
		}
		idx, err = bleve.NewUsing(path, m, bleve.Config.DefaultIndexType, bleve.Config.DefaultKVStore, bleveRuntime())
	}
	if err != nil {
		return nil, fmt.Errorf("%w: opening bleve index %s: %w", ErrBackend, path, err)
	}
	return &Bleve{idx: idx, path: path}, nil
}

// bleveRuntime is the index's run-time configuration. Scorch's merge planner by default treats
// every segment under 2,000 documents as being of that size, so while an index holds few but
// heavy documents (an audit block carries up to a thousand records and as many distinct words)
// it merges the same growing segment again and again with each small new one. Sizing segments
// by their real document counts keeps merges logarithmic: measured on audit blocks, indexing
// and merging cost a third of what they did. Segments of thousands of documents are over the
// floor anyway and merge as before.
func bleveRuntime() map[string]any {
	// Merged over scorch's defaults.
	return map[string]any{"scorchMergePlanOptions": map[string]any{"FloorSegmentSize": 1}}
}

func bleveMapping() (*mapping.IndexMappingImpl, error) {
	im := bleve.NewIndexMapping()
	if err := im.AddCustomAnalyzer(textAnalyzer, map[string]any{
		"type":          custom.Name,
		"tokenizer":     unicode.Name,
		"token_filters": []any{lowercase.Name},
	}); err != nil {
		return nil, fmt.Errorf("%w: bleve analyzer: %w", ErrBackend, err)
	}
	im.StoreDynamic = false
	im.DocValuesDynamic = false
	im.IndexDynamic = true

	kw := func() *mapping.FieldMapping {
		f := bleve.NewKeywordFieldMapping()
		f.Store, f.IncludeInAll, f.IncludeTermVectors = false, false, false
		return f
	}
	doc := bleve.NewDocumentStaticMapping()
	for _, name := range []string{"kind", "dsn", "type", "severity"} {
		doc.AddFieldMappingsAt(name, kw())
	}
	tm := bleve.NewDateTimeFieldMapping()
	tm.Store, tm.IncludeInAll = false, false
	doc.AddFieldMappingsAt("time", tm)
	msg := bleve.NewTextFieldMapping()
	msg.Analyzer, msg.Store, msg.IncludeInAll, msg.IncludeTermVectors, msg.DocValues = textAnalyzer, false, false, false, false
	doc.AddFieldMappingsAt("message", msg)
	// The whole document, stored to be returned by searches, not indexed.
	src := bleve.NewTextFieldMapping()
	src.Index, src.Store, src.IncludeInAll, src.IncludeTermVectors, src.DocValues = false, true, false, false, false
	doc.AddFieldMappingsAt("source", src)
	// Free-form fields: any name, matched by exact value.
	fields := bleve.NewDocumentMapping()
	fields.Dynamic = true
	fields.DefaultAnalyzer = keyword.Name
	doc.AddSubDocumentMapping("fields", fields)
	// No composite _all field: every query names its field, and _all would double the work.
	doc.AddSubDocumentMapping("_all", bleve.NewDocumentDisabledMapping())
	im.DefaultMapping = doc
	return im, nil
}

// Index implements Index.
func (b *Bleve) Index(ctx context.Context, docs ...Document) error {
	docs, err := prepare(docs)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return ErrClosed
	}
	batch := b.idx.NewBatch()
	for _, d := range docs {
		src, err := encodeSource(d)
		if err != nil {
			return fmt.Errorf("%w: encoding document %q: %v", ErrInvalid, d.ID, err)
		}
		fields := make(map[string]any, len(d.Fields))
		for k, v := range d.Fields {
			fields[k] = v
		}
		if err := batch.Index(d.ID, map[string]any{
			"kind": string(d.Kind), "dsn": d.DSN, "type": d.Type, "severity": d.Severity,
			"time": d.Time, "message": d.Message, "fields": fields, "source": string(src),
		}); err != nil {
			return fmt.Errorf("%w: indexing document %q: %w", ErrBackend, d.ID, err)
		}
	}
	if err := b.idx.Batch(batch); err != nil {
		return fmt.Errorf("%w: writing %d documents to %s: %w", ErrBackend, len(docs), b.path, err)
	}
	return nil
}

// Search implements Index.
func (b *Bleve) Search(ctx context.Context, q Query) (Result, error) {
	if err := q.Validate(); err != nil {
		return Result{}, err
	}
	var conj []query.Query
	if q.Text != "" {
		mq := bleve.NewMatchQuery(q.Text)
		mq.SetField("message")
		mq.Analyzer = textAnalyzer
		mq.SetOperator(query.MatchQueryOperatorAnd)
		conj = append(conj, mq)
	}
	term := func(field, v string) {
		if v != "" {
			tq := bleve.NewTermQuery(v)
			tq.SetField(field)
			conj = append(conj, tq)
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
		yes := true
		rq := bleve.NewDateRangeInclusiveQuery(q.From, q.To, &yes, &yes)
		rq.SetField("time")
		conj = append(conj, rq)
	}
	var top query.Query = bleve.NewMatchAllQuery()
	if len(conj) > 0 {
		top = bleve.NewConjunctionQuery(conj...)
	}
	req := bleve.NewSearchRequestOptions(top, q.limit(), 0, false)
	req.SortBy([]string{"time", "_id"})
	req.Fields = []string{"source"}

	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return Result{}, ErrClosed
	}
	res, err := b.idx.SearchInContext(ctx, req)
	if err != nil {
		return Result{}, fmt.Errorf("%w: searching %s: %w", ErrBackend, b.path, err)
	}
	out := Result{Total: int(res.Total), Hits: make([]Document, 0, len(res.Hits))}
	for _, h := range res.Hits {
		src, ok := h.Fields["source"].(string)
		if !ok {
			return Result{}, fmt.Errorf("%w: %s: document %q has no stored source", ErrBackend, b.path, h.ID)
		}
		d, err := decodeSource(src)
		if err != nil {
			return Result{}, fmt.Errorf("%w: %s: document %q: %v", ErrBackend, b.path, h.ID, err)
		}
		out.Hits = append(out.Hits, d)
	}
	return out, nil
}

// Close closes the index.
func (b *Bleve) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	if err := b.idx.Close(); err != nil {
		return fmt.Errorf("%w: closing %s: %w", ErrBackend, b.path, err)
	}
	return nil
}

// A document's stored source is its JSON without Data, then, when it has data, a newline and
// the data as it is. Data can be large (an audit block's is a thousand records of JSON), and
// as a JSON string it would be escaped when stored and unescaped when read. encoding/json
// writes no raw newline, so the first one ends the document. A source without one (as stored
// before data existed) is the whole document.
func encodeSource(d Document) (string, error) {
	data := d.Data
	d.Data = ""
	b, err := json.Marshal(d)
	if err != nil || data == "" {
		return string(b), err
	}
	var sb strings.Builder
	sb.Grow(len(b) + 1 + len(data))
	sb.Write(b)
	sb.WriteByte('\n')
	sb.WriteString(data)
	return sb.String(), nil
}

func decodeSource(src string) (Document, error) {
	doc, data, _ := strings.Cut(src, "\n")
	var d Document
	if err := json.Unmarshal([]byte(doc), &d); err != nil {
		return Document{}, err
	}
	if data != "" {
		d.Data = data
	}
	return d, nil
}
