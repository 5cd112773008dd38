package audit

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/blevesearch/segment"

	"github.com/dsnscale/dsnscale/search"
)

// Records reach the search backend in blocks: one document holds the records of a batch that
// share who and what (user, kind, verb, tenant and verdict) and lie within blockSpan of each
// other. Indexing a document costs the embedded index about a hundred microseconds whatever
// its size, more than serving an API call does; a block spreads that over its records. A
// block's fields are the ones the audit is searched by (exact for every record in it), its
// time its earliest record's, its message the distinct words of its records' summaries (so a
// text search finds every block that may hold a match), its data the records themselves.
// Search picks the matching records out of the matching blocks.
const (
	// blockSpan bounds the time between a block's earliest and latest record, so that a search
	// from time T need only look at blocks from T-blockSpan on.
	blockSpan = 10 * time.Second
	// blockRecords bounds the records of a block, and so the work of picking them out.
	blockRecords = 1000
)

// Field names of audit blocks.
const (
	fieldUser, fieldVerb, fieldKind, fieldTenant, fieldVerdict = "user", "verb", "kind", "tenant", "verdict"
)

// blockKey is what every record of a block shares.
type blockKey struct{ user, kind, verb, tenant, verdict string }

func keyOf(r Record) blockKey { return blockKey{r.User, r.Kind, r.Verb, r.Tenant, r.Verdict} }

// block is a block being filled.
type block struct {
	key     blockKey
	first   *Record  // its earliest record, which names it and dates it
	count   int      // its records
	encoded [][]byte // each record in JSON, encoded once
	words   map[string]bool
	msg     int // bytes of the message so far
	data    int // bytes of the data so far
	// severity is the gravest of the records': an error for a failed call, a warning for a
	// refused one.
	severity string
}

// blocker groups records into blocks. It keeps what one batch needs for the next (the words of
// summaries, and its buffers), so it serves one batch at a time.
type blocker struct {
	words  *wordCache
	cut    []Record  // the batch, cut to size
	sorted []*Record // sorted by reference: a record is a few hundred bytes
	arena  []byte    // the records' JSON, one after another
}

func newBlocker() *blocker { return &blocker{words: newWordCache()} }

// toBlocks groups records into blocks, in a way that depends only on the records, so that a
// retried batch makes the same documents (a block's ID is its first record's).
func (bl *blocker) toBlocks(records []Record) ([]search.Document, error) {
	words := bl.words
	cut := append(bl.cut[:0], records...)
	sorted := bl.sorted[:0]
	for i := range cut {
		cut[i] = bounded(cut[i])
		sorted = append(sorted, &cut[i])
	}
	bl.cut, bl.sorted = cut, sorted
	slices.SortStableFunc(sorted, func(a, b *Record) int { return a.Time.Compare(b.Time) })
	open := map[blockKey]*block{}
	arena := bl.arena[:0]
	defer func() { bl.arena = arena[:0] }()
	var docs []search.Document
	emit := func(b *block) {
		docs = append(docs, b.document())
		delete(open, b.key)
	}
	for _, p := range sorted {
		r := *p
		start := len(arena)
		arena = r.appendJSON(arena)
		enc := arena[start:len(arena):len(arena)]
		w := words.of(r)
		k := keyOf(r)
		if b := open[k]; b != nil && !b.fits(p, w, len(enc)) {
			emit(b)
		}
		b := open[k]
		if b == nil {
			b = &block{key: k, words: map[string]bool{}}
			open[k] = b
		}
		b.add(p, w, enc)
	}
	rest := make([]*block, 0, len(open))
	for _, b := range open {
		rest = append(rest, b)
	}
	slices.SortFunc(rest, func(a, b *block) int { return cmp.Compare(a.first.ID, b.first.ID) })
	for _, b := range rest {
		emit(b)
	}
	return docs, nil
}

// fits reports whether r (with its summary's words and encoded size) may join b.
func (b *block) fits(r *Record, words []string, size int) bool {
	if b.count >= blockRecords || r.Time.Sub(b.first.Time) > blockSpan {
		return false
	}
	msg := b.msg
	for _, w := range words {
		if !b.words[w] {
			msg += len(w) + 1
		}
	}
	// The data is a JSON array: a comma per record and the brackets.
	return msg <= search.MaxMessageBytes && b.data+size+b.count+2 <= search.MaxDataBytes
}

func (b *block) add(r *Record, words []string, enc []byte) {
	if b.count == 0 {
		b.first = r
	}
	b.count++
	b.encoded = append(b.encoded, enc)
	for _, w := range words {
		if !b.words[w] {
			b.words[w] = true
			b.msg += len(w) + 1
		}
	}
	b.data += len(enc)
	switch {
	case r.Status >= 500:
		b.severity = "error"
	case r.Verdict != VerdictAllowed && b.severity != "error":
		b.severity = "warning"
	case b.severity == "":
		b.severity = "info"
	}
}

func (b *block) document() search.Document {
	var data strings.Builder // builds the string in place: a block's data is up to a megabyte
	data.Grow(b.data + len(b.encoded) + 2)
	data.WriteByte('[')
	for i, enc := range b.encoded {
		if i > 0 {
			data.WriteByte(',')
		}
		data.Write(enc)
	}
	data.WriteByte(']')
	words := make([]string, 0, len(b.words))
	for w := range b.words {
		words = append(words, w)
	}
	slices.Sort(words)
	fields := map[string]string{}
	for k, v := range map[string]string{fieldUser: b.key.user, fieldKind: b.key.kind, fieldVerb: b.key.verb, fieldTenant: b.key.tenant, fieldVerdict: b.key.verdict} {
		if v != "" {
			fields[k] = v
		}
	}
	first := b.first
	return search.Document{
		ID: first.ID, Time: first.Time, Kind: search.KindAudit, Type: "api." + b.key.verdict, Severity: b.severity,
		Message: strings.Join(words, " "), Fields: fields, Data: data.String(),
	}
}

// fromBlock returns the records of a block document.
func fromBlock(d search.Document) ([]Record, error) {
	var records []Record
	if err := json.Unmarshal([]byte(d.Data), &records); err != nil {
		return nil, fmt.Errorf("%w: audit block %s: %v", search.ErrBackend, d.ID, err)
	}
	return records, nil
}

// wordCache holds the words of records' summaries. A record is found by the words of its
// summary: who, the call (method and path), its status and verdict, the binding that allowed it
// and why it was refused. Most calls repeat a summary seen shortly before (a client polling the
// same objects), and summaries share most parts (a user, a method, most segments of their
// paths), so the words of each distinct summary, and of each distinct part, are split once. The
// parts are split where a summary's words always break (between parts, and at the slashes of a
// path), so the words are those of the whole summary.
type wordCache struct {
	parts     map[string][]string
	summaries map[summary][]string
}

// summary is what a record's words are made of.
type summary struct {
	user, method, path, verdict, binding, reason string
	status                                       int
}

// maxCachedSummaries bounds a wordCache that is kept from batch to batch: past it, it starts
// afresh.
const maxCachedSummaries = 1 << 16

func newWordCache() *wordCache {
	return &wordCache{parts: map[string][]string{}, summaries: map[summary][]string{}}
}

func (c *wordCache) part(s string) []string {
	w, ok := c.parts[s]
	if !ok {
		w = newWords(s)
		c.parts[s] = w
	}
	return w
}

// of returns the distinct words of r's summary. The caller must not change them.
func (c *wordCache) of(r Record) []string {
	key := summary{r.User, r.Method, r.Path, r.Verdict, r.Binding, r.Reason, r.Status}
	if w, ok := c.summaries[key]; ok {
		return w
	}
	if len(c.summaries) >= maxCachedSummaries {
		clear(c.summaries)
		clear(c.parts)
	}
	user := r.User
	if user == "" {
		user = "anonymous"
	}
	parts := [][]string{c.part(user), c.part(r.Method), c.part(strconv.Itoa(r.Status)), c.part(r.Verdict)}
	for seg := range strings.SplitSeq(r.Path, "/") {
		parts = append(parts, c.part(seg))
	}
	if r.Binding != "" {
		parts = append(parts, c.part("by binding"), c.part(r.Binding))
	}
	if r.Reason != "" {
		parts = append(parts, c.part(r.Reason))
	}
	var words []string
	for _, p := range parts {
		for _, w := range p {
			if !slices.Contains(words, w) {
				words = append(words, w)
			}
		}
	}
	c.summaries[key] = words
	return words
}

// newWords splits text into its distinct lower-case words as the search backends do (Unicode
// word boundaries, UAX #29), so that the words of a record and of a query compare alike.
func newWords(text string) []string {
	seg := segment.NewWordSegmenterDirect([]byte(text))
	seen := map[string]bool{}
	var words []string
	for seg.Segment() {
		if seg.Type() == segment.None {
			continue
		}
		w := strings.ToLower(seg.Text())
		if !seen[w] {
			seen[w] = true
			words = append(words, w)
		}
	}
	return words
}

// bounded cuts a record's strings to search.MaxFieldValue bytes, so that no caller can make
// a record, or a block, unbounded.
func bounded(r Record) Record {
	for _, s := range []*string{&r.User, &r.Source, &r.Method, &r.Path, &r.Verb, &r.Kind, &r.Tenant, &r.Name, &r.Verdict, &r.Binding, &r.Reason} {
		if !shortASCII(*s) { // most are, and need no work
			*s = truncate(strings.ToValidUTF8(*s, "\uFFFD"), search.MaxFieldValue)
		}
	}
	return r
}

// shortASCII reports whether s is ASCII (and so valid UTF-8) of at most search.MaxFieldValue bytes.
func shortASCII(s string) bool {
	if len(s) > search.MaxFieldValue {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
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
