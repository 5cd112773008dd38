// Package strictyaml decodes YAML documents into Go structs strictly: unknown fields, duplicate
// keys and type mismatches are errors, and every error names the file, line, column and field
// path where it happened. It also remembers where each field was, so that semantic validation
// done after decoding can point at the same places.
package strictyaml

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// ErrInvalid is wrapped by every error this package reports.
var ErrInvalid = errors.New("invalid document")

// Error is one problem in a document, with its place.
type Error struct {
	File string
	Line int
	Col  int
	Path string
	Msg  string
}

// Error renders "file:line:col: path: msg".
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
	} else {
		b.WriteString("<input>")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Col)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *Error) Unwrap() error { return ErrInvalid }

// Pos is a place in a document.
type Pos struct{ Line, Col int }

// Doc remembers where each decoded field path was in its file.
type Doc struct {
	File string
	pos  map[string]Pos
}

// Pos returns the position of path, or of its nearest recorded parent.
func (d *Doc) Pos(path string) Pos {
	if d == nil {
		return Pos{}
	}
	for p := path; ; {
		if pos, ok := d.pos[p]; ok {
			return pos
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			return d.pos[""]
		}
		p = p[:i]
	}
}

// Errorf returns an *Error at path's position.
func (d *Doc) Errorf(path, format string, args ...any) *Error {
	pos := d.Pos(path)
	file := ""
	if d != nil {
		file = d.File
	}
	return &Error{File: file, Line: pos.Line, Col: pos.Col, Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Unmarshaler is implemented by types that decode themselves from a node (for shorthand forms).
// path is the field path of n; errors should come from d.NodeErrorf.
type Unmarshaler interface {
	UnmarshalStrict(d *Decoder, n *yaml.Node, path string) error
}

// Decoder walks a node tree into Go values, collecting errors.
type Decoder struct {
	doc  *Doc
	errs []error
}

const maxErrors = 20

// NodeErrorf records an error at node n.
func (d *Decoder) NodeErrorf(n *yaml.Node, path, format string, args ...any) {
	if len(d.errs) >= maxErrors {
		return
	}
	d.errs = append(d.errs, &Error{File: d.doc.File, Line: n.Line, Col: n.Column, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// Decode decodes the single YAML document in data into v (a pointer), strictly. file names the
// source in errors. It returns where each field was, for later validation errors.
func Decode(file string, data []byte, v any) (*Doc, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: file, Msg: "empty document"}
		}
		return nil, syntaxError(file, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &Error{File: file, Line: extra.Line, Col: extra.Column, Msg: "more than one YAML document"}
	} else if !errors.Is(err, io.EOF) {
		return nil, syntaxError(file, err)
	}
	return DecodeNode(file, &root, v)
}

// DecodeNode decodes an already parsed node (a document or any node) into v.
func DecodeNode(file string, n *yaml.Node, v any) (*Doc, error) {
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil, &Error{File: file, Msg: "empty document"}
		}
		n = n.Content[0]
	}
	d := &Decoder{doc: &Doc{File: file, pos: map[string]Pos{}}}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return nil, fmt.Errorf("strictyaml: Decode needs a non-nil pointer, got %T", v)
	}
	d.Value(n, "", rv.Elem())
	if len(d.errs) > 0 {
		return d.doc, errors.Join(d.errs...)
	}
	return d.doc, nil
}

func syntaxError(file string, err error) error {
	// yaml.v3 syntax errors read "yaml: line N: msg".
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if i := strings.Index(rest, ":"); i > 0 {
			if n, convErr := strconv.Atoi(rest[:i]); convErr == nil {
				line = n
				msg = strings.TrimSpace(rest[i+1:])
			}
		}
	}
	return &Error{File: file, Line: line, Col: 1, Msg: "YAML syntax: " + msg}
}

var durationType = reflect.TypeFor[time.Duration]()
var unmarshalerType = reflect.TypeFor[Unmarshaler]()

// Value decodes n into v (settable), recording positions and errors under path.
func (d *Decoder) Value(n *yaml.Node, path string, v reflect.Value) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	d.doc.pos[path] = Pos{Line: n.Line, Col: n.Column}
	if v.CanAddr() && v.Addr().Type().Implements(unmarshalerType) {
		if err := v.Addr().Interface().(Unmarshaler).UnmarshalStrict(d, n, path); err != nil {
			d.NodeErrorf(n, path, "%v", err)
		}
		return
	}
	if v.Type() == durationType {
		d.duration(n, path, v)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if isNull(n) {
			v.SetZero()
			return
		}
		p := reflect.New(v.Type().Elem())
		d.Value(n, path, p.Elem())
		v.Set(p)
	case reflect.Struct:
		d.structValue(n, path, v)
	case reflect.Map:
		d.mapValue(n, path, v)
	case reflect.Slice:
		d.sliceValue(n, path, v)
	case reflect.String:
		if n.Kind != yaml.ScalarNode || isNull(n) {
			d.NodeErrorf(n, path, "want a string, got %s", describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		if n.Kind != yaml.ScalarNode || isNull(n) {
			d.NodeErrorf(n, path, "want %s, got %s", kindName(v.Kind()), describe(n))
			return
		}
		if err := n.Decode(v.Addr().Interface()); err != nil {
			d.NodeErrorf(n, path, "want %s, got %q", kindName(v.Kind()), n.Value)
		}
	default:
		d.NodeErrorf(n, path, "cannot decode into %s", v.Type())
	}
}

func (d *Decoder) duration(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		d.NodeErrorf(n, path, "want a duration such as 10s, got %s", describe(n))
		return
	}
	if n.Value == "0" {
		v.SetInt(0)
		return
	}
	dur, err := time.ParseDuration(n.Value)
	if err != nil {
		d.NodeErrorf(n, path, "want a duration such as 10s or 1m30s, got %q", n.Value)
		return
	}
	v.SetInt(int64(dur))
}

func (d *Decoder) structValue(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.NodeErrorf(n, path, "want a mapping, got %s", describe(n))
		return
	}
	fields := fieldsOf(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		name := k.Value
		sub := join(path, name)
		if seen[name] {
			d.NodeErrorf(k, sub, "duplicate field %q", name)
			continue
		}
		seen[name] = true
		idx, ok := fields[name]
		if !ok {
			d.NodeErrorf(k, sub, "unknown field %q (known: %s)", name, knownList(fields))
			continue
		}
		d.Value(val, sub, v.Field(idx))
	}
}

func (d *Decoder) mapValue(n *yaml.Node, path string, v reflect.Value) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.NodeErrorf(n, path, "want a mapping, got %s", describe(n))
		return
	}
	if v.Type().Key().Kind() != reflect.String {
		d.NodeErrorf(n, path, "cannot decode into %s", v.Type())
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMapWithSize(v.Type(), len(n.Content)/2))
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		sub := join(path, k.Value)
		if k.Kind != yaml.ScalarNode {
			d.NodeErrorf(k, path, "map keys must be scalars")
			continue
		}
		if seen[k.Value] {
			d.NodeErrorf(k, sub, "duplicate key %q", k.Value)
			continue
		}
		seen[k.Value] = true
		elem := reflect.New(v.Type().Elem()).Elem()
		d.Value(val, sub, elem)
		v.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), elem)
	}
}

func (d *Decoder) sliceValue(n *yaml.Node, path string, v reflect.Value) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.NodeErrorf(n, path, "want a list, got %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.Value(item, fmt.Sprintf("%s[%d]", path, i), s.Index(i))
	}
	v.Set(s)
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "nothing (null)"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "an unexpected node"
}

func kindName(k reflect.Kind) string {
	switch k {
	case reflect.Bool:
		return "a boolean"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	default:
		return "an integer"
	}
}

// fieldsOf maps yaml names to field indexes; a field without a yaml tag is skipped, so only
// fields meant for files are reachable.
func fieldsOf(t reflect.Type) map[string]int {
	out := map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		if tag == "" || tag == "-" || !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		out[name] = i
	}
	return out
}

func knownList(fields map[string]int) string {
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	sortStrings(names)
	return strings.Join(names, ", ")
}
