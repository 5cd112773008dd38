// Package strictyaml decodes YAML into Go values strictly, through yaml.v3's node tree: unknown
// fields, duplicate keys and values of the wrong type are errors, and every error carries the file,
// line and field path it is about. The decoder remembers where each field path was, so that
// validation done after decoding can point at the same places.
package strictyaml

import (
	"encoding"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/dsnscale/dsnscale/internal/registry"
)

// ErrInvalid is matched by every *Error and Errors.
var ErrInvalid = errors.New("invalid document")

// Pos is a place in a file.
type Pos struct{ Line, Col int }

// Error is one problem with a document.
type Error struct {
	File string
	Line int
	Path string
	Msg  string
	// Sentinel, when set, is a package's own error that this one matches besides ErrInvalid
	// (trafficmap.ErrInvalid, say), so callers keep their errors.Is checks.
	Sentinel error
}

// Error renders "file:line: path: message". A problem found in a value built in code, with no
// file, renders as "path: message".
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Is makes every *Error match ErrInvalid, and its Sentinel if it has one.
func (e *Error) Is(target error) bool {
	return target == ErrInvalid || (e.Sentinel != nil && target == e.Sentinel)
}

// Errors is every problem found in a document, in file order.
type Errors []*Error

// Error renders one problem per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Is makes Errors match ErrInvalid.
func (es Errors) Is(target error) bool { return target == ErrInvalid }

// Unwrap lets errors.As find each *Error.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Unmarshaler is implemented by types that decode themselves from a node. They report problems
// through d and may call back into d.Decode for their parts.
type Unmarshaler interface {
	UnmarshalYAMLNode(d *Decoder, n *yaml.Node, path string)
}

// maxErrors bounds how many errors one document collects.
const maxErrors = 50

// maxVisits bounds how many values one decoder decodes: a file of MaxFileBytes holds at most
// about half a million, so only aliases of aliases (a "billion laughs") reach it. (A variable
// so that a test can reach it quickly.)
var maxVisits = 1 << 20

// Decoder decodes nodes of one file.
type Decoder struct {
	File string
	// Subst, when set, rewrites every scalar value (never a key) before it is decoded; an error
	// is reported at the scalar.
	Subst func(s string) (string, error)
	// Sentinel, when set, is matched by every problem the decoder reports (see Error.Sentinel).
	Sentinel error

	errs   Errors
	pos    map[string]Pos
	visits int
}

// Parse reads exactly one YAML document and returns its root node (the mapping, sequence or
// scalar inside the document node).
func Parse(file string, data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Errors{{File: file, Line: 1, Msg: "empty document"}}
		}
		return nil, Errors{parseError(file, err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := extra.Line
		if err != nil {
			return nil, Errors{parseError(file, err)}
		}
		return nil, Errors{{File: file, Line: line, Msg: "more than one YAML document"}}
	}
	if len(doc.Content) == 0 {
		return nil, Errors{{File: file, Line: 1, Msg: "empty document"}}
	}
	return doc.Content[0], nil
}

var lineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func parseError(file string, err error) *Error {
	msg := err.Error()
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: file, Line: line, Msg: m[2]}
	}
	return &Error{File: file, Msg: strings.TrimPrefix(msg, "yaml: ")}
}

// Err returns the problems found so far, sorted by line, or nil.
func (d *Decoder) Err() error {
	if len(d.errs) == 0 {
		return nil
	}
	out := append(Errors(nil), d.errs...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Line < out[j].Line })
	return out
}

// Errorf reports a problem at node n, field path.
func (d *Decoder) Errorf(n *yaml.Node, path, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.add(&Error{File: d.File, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// ErrorAt reports a problem at a field path decoded earlier; a path that was never decoded (an
// absent field) is placed at its nearest decoded parent.
func (d *Decoder) ErrorAt(path, format string, args ...any) {
	d.add(&Error{File: d.File, Line: d.Pos(path).Line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// Add reports problems found elsewhere (by Parse, say) as the decoder's own.
func (d *Decoder) Add(err error) {
	var es Errors
	var e *Error
	switch {
	case errors.As(err, &es):
		for _, e := range es {
			d.add(e)
		}
	case errors.As(err, &e):
		d.add(e)
	case err != nil:
		d.add(&Error{File: d.File, Msg: err.Error()})
	}
}

func (d *Decoder) add(e *Error) {
	if e.Sentinel == nil {
		e.Sentinel = d.Sentinel
	}
	if len(d.errs) < maxErrors {
		d.errs = append(d.errs, e)
	}
}

// Pos returns where path was, or where its nearest decoded parent was.
func (d *Decoder) Pos(path string) Pos {
	for p := path; ; {
		if pos, ok := d.pos[p]; ok {
			return pos
		}
		if p == "" {
			return Pos{}
		}
		p = parent(p)
	}
}

// Has reports whether path was present in the document.
func (d *Decoder) Has(path string) bool {
	_, ok := d.pos[path]
	return ok
}

func parent(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

// Field joins a path and a field name.
func Field(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// Index joins a path and a list index.
func Index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

var plainKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

// Key joins a path and a map key, quoting keys that are not plain identifiers.
func Key(path, key string) string {
	if plainKey.MatchString(key) {
		return Field(path, key)
	}
	return path + "[" + strconv.Quote(key) + "]"
}

func (d *Decoder) mark(path string, n *yaml.Node) {
	if d.pos == nil {
		d.pos = map[string]Pos{}
	}
	d.pos[path] = Pos{Line: n.Line, Col: n.Column}
}

var (
	nodeType        = reflect.TypeOf(yaml.Node{})
	durationType    = reflect.TypeOf(time.Duration(0))
	unmarshalerType = reflect.TypeOf((*Unmarshaler)(nil)).Elem()
	textType        = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
)

// Decode decodes n into v (a non-nil pointer), reporting problems under path.
func (d *Decoder) Decode(n *yaml.Node, path string, v any) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		panic("strictyaml: Decode needs a non-nil pointer")
	}
	d.decode(n, path, rv.Elem())
}

func (d *Decoder) decode(n *yaml.Node, path string, v reflect.Value) {
	n = deref(n)
	if d.visits++; d.visits > maxVisits {
		if d.visits == maxVisits+1 {
			d.Errorf(n, path, "the document expands to more than %d values through aliases", maxVisits)
		}
		return
	}
	d.mark(path, n)
	if v.CanAddr() && v.Addr().Type().Implements(unmarshalerType) {
		v.Addr().Interface().(Unmarshaler).UnmarshalYAMLNode(d, n, path)
		return
	}
	if isNull(n) {
		return // absent: the zero value stays
	}
	if v.Type() == nodeType {
		// A yaml.Node field keeps its part of the document as written, to be decoded later.
		v.Set(reflect.ValueOf(*Clone(n)))
		return
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, path, v.Elem())
		return
	}
	if v.Type() != durationType && v.CanAddr() && v.Addr().Type().Implements(textType) {
		s, ok := d.Scalar(n, path)
		if !ok {
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			d.Errorf(n, path, "%s", cleanTextError(err))
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, path, v)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.Errorf(n, path, "want a list, got %s", describe(n))
			return
		}
		out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, Index(path, i), out.Index(i))
		}
		v.Set(out)
	case reflect.Map:
		d.decodeMap(n, path, v)
	default:
		d.decodeScalar(n, path, v)
	}
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// Scalar returns the text of a scalar node after substitution; it reports a problem and returns
// false for anything else.
func (d *Decoder) Scalar(n *yaml.Node, path string) (string, bool) {
	n = deref(n)
	if n.Kind != yaml.ScalarNode {
		d.Errorf(n, path, "want a single value, got %s", describe(n))
		return "", false
	}
	s := n.Value
	if d.Subst != nil {
		var err error
		if s, err = d.Subst(s); err != nil {
			d.Errorf(n, path, "%v", err)
			return "", false
		}
	}
	return s, true
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "nothing"
}

func cleanTextError(err error) string {
	msg := err.Error()
	// Packages prefix their sentinel ("invalid executor config: rate ..."); the path already says
	// where, so keep only what was wrong.
	if i := strings.Index(msg, ": "); i >= 0 && strings.HasPrefix(msg, "invalid") {
		return msg[i+2:]
	}
	return msg
}

func (d *Decoder) decodeScalar(n *yaml.Node, path string, v reflect.Value) {
	s, ok := d.Scalar(n, path)
	if !ok {
		return
	}
	if v.Type() == durationType {
		dur, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			d.Errorf(n, path, "%q is not a duration (such as 30s or 1m30s)", s)
			return
		}
		v.SetInt(int64(dur))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		switch s {
		case "true":
			v.SetBool(true)
		case "false":
			v.SetBool(false)
		default:
			d.Errorf(n, path, "%q is not true or false", s)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, err := strconv.ParseInt(strings.TrimSpace(s), 10, v.Type().Bits())
		if err != nil {
			d.Errorf(n, path, "%q is not an integer", s)
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		u, err := strconv.ParseUint(strings.TrimSpace(s), 10, v.Type().Bits())
		if err != nil {
			d.Errorf(n, path, "%q is not a non-negative integer", s)
			return
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(strings.TrimSpace(s), v.Type().Bits())
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			d.Errorf(n, path, "%q is not a number", s)
			return
		}
		v.SetFloat(f)
	default:
		d.Errorf(n, path, "cannot decode into %s", v.Type())
	}
}

// fields maps YAML names to struct field indexes, in declaration order.
func fields(t reflect.Type) (names []string, index map[string]int) {
	index = map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name[:1]) + f.Name[1:]
		}
		names = append(names, name)
		index[name] = i
	}
	return names, index
}

func (d *Decoder) decodeStruct(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.Errorf(n, path, "want a mapping, got %s", describe(n))
		return
	}
	names, index := fields(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key := k.Value
		fp := Field(path, key)
		if seen[key] {
			d.Errorf(k, fp, "duplicate field")
			continue
		}
		seen[key] = true
		fi, ok := index[key]
		if !ok {
			d.Errorf(k, fp, "unknown field%s", registry.Suggest(key, names))
			continue
		}
		d.decode(val, fp, v.Field(fi))
	}
}

func (d *Decoder) decodeMap(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.Errorf(n, path, "want a mapping, got %s", describe(n))
		return
	}
	if v.Type().Key().Kind() != reflect.String {
		panic("strictyaml: maps need string keys")
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		kp := Key(path, k.Value)
		if k.Kind != yaml.ScalarNode {
			d.Errorf(k, path, "keys must be single values")
			continue
		}
		if seen[k.Value] {
			d.Errorf(k, kp, "duplicate key")
			continue
		}
		seen[k.Value] = true
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(val, kp, elem)
		v.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), elem)
	}
}

// Pairs returns the key and value nodes of a mapping in file order, reporting duplicates and
// non-scalar keys; it reports a problem and returns nil for anything but a mapping.
func (d *Decoder) Pairs(n *yaml.Node, path string) [][2]*yaml.Node {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		d.Errorf(n, path, "want a mapping, got %s", describe(n))
		return nil
	}
	d.mark(path, n)
	var out [][2]*yaml.Node
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.Errorf(k, path, "keys must be single values")
			continue
		}
		if seen[k.Value] {
			d.Errorf(k, Key(path, k.Value), "duplicate key")
			continue
		}
		seen[k.Value] = true
		out = append(out, [2]*yaml.Node{k, val})
	}
	return out
}

// Mark records that path is at node n (for values a custom Unmarshaler decodes by hand).
func (d *Decoder) Mark(path string, n *yaml.Node) { d.mark(path, n) }

// Walk calls fn for every scalar value node under n (map keys excluded), with its path.
func Walk(n *yaml.Node, path string, fn func(n *yaml.Node, path string)) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			Walk(c, path, fn)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			Walk(n.Content[i+1], Key(path, n.Content[i].Value), fn)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			Walk(c, Index(path, i), fn)
		}
	case yaml.ScalarNode:
		fn(n, path)
	}
}
