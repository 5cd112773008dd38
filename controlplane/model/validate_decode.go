package model

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
)

// DecodeObject decodes one object from JSON strictly: the input must be exactly one JSON object
// whose envelope fields have the right JSON types, with no unknown or duplicate fields (names are
// case-sensitive). It checks the shape of the envelope only; Validate checks the spec, the status
// and the values. Errors are a *FieldErrors whose errors are all malformed-input errors.
func DecodeObject(data []byte) (*Object, error) {
	var obj Object
	if err := DecodeStrict(data, &obj, ""); err != nil {
		return nil, err
	}
	return &obj, nil
}

// DecodeStrict decodes the JSON value in data into v (a pointer) with the same strictness as
// DecodeObject, reporting errors with field paths under path. Fields of type json.RawMessage
// accept any JSON value.
func DecodeStrict(data []byte, v any, path string) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("model: DecodeStrict needs a non-nil pointer, got %T", v)
	}
	if errs := checkShape(data, rv.Elem().Type(), path); errs.Len() > 0 {
		return errs
	}
	if err := json.Unmarshal(data, v); err != nil {
		// The shape check accepts only what Unmarshal can decode; this is a safety net.
		var errs FieldErrors
		errs.AddMalformed(path, err.Error())
		return &errs
	}
	return nil
}

var rawMessageType = reflect.TypeFor[json.RawMessage]()

// maxDepth bounds nesting, as encoding/json does, so that hostile input cannot exhaust the stack.
const maxDepth = 10000

// checkShape walks the JSON in data against type t and reports every place where it does not fit:
// malformed JSON, a value of the wrong JSON type, an unknown or repeated field, trailing data.
// It is a small scanner of its own: encoding/json's token API costs an allocation per token,
// which made validation the most expensive step of a write.
func checkShape(data []byte, t reflect.Type, path string) *FieldErrors {
	w := &shapeWalker{data: data, errs: &FieldErrors{}, path: append(make([]byte, 0, 64), path...)}
	w.skipSpace()
	if w.pos == len(data) {
		w.errs.AddMalformed(path, "empty input: want a JSON object")
		return w.errs
	}
	if t.Kind() == reflect.Struct && t != rawMessageType && data[w.pos] == 'n' {
		if err := w.literal("null"); err != nil {
			w.syntax(path, err)
			return w.errs
		}
		w.errs.AddMalformed(path, "must be a JSON object, got null")
		return w.errs
	}
	if err := w.value(t); err != nil {
		w.syntax(path, err)
		return w.errs
	}
	w.skipSpace()
	if w.pos != len(data) {
		w.errs.AddMalformed(path, fmt.Sprintf("unexpected data after the JSON value at byte %d", w.pos))
	}
	return w.errs
}

type shapeWalker struct {
	data  []byte
	pos   int
	depth int
	errs  *FieldErrors
	// path is the field path of the value being walked, rendered to a string only for an error.
	path []byte
}

// pathString is the current field path.
func (w *shapeWalker) pathString() string { return string(w.path) }

// malformed records a shape error at the current path.
func (w *shapeWalker) malformed(msg string) { w.errs.AddMalformed(w.pathString(), msg) }

// syntaxError is malformed JSON; it ends the walk.
type syntaxError struct {
	off int
	msg string
}

func (e *syntaxError) Error() string {
	return fmt.Sprintf("malformed JSON at byte %d: %s", e.off, e.msg)
}

func (w *shapeWalker) syntax(path string, err error) { w.errs.AddMalformed(path, err.Error()) }

func (w *shapeWalker) fail(msg string) error { return &syntaxError{off: w.pos, msg: msg} }

func (w *shapeWalker) unexpected(context string) error {
	if w.pos >= len(w.data) {
		return w.fail("unexpected end of input " + context)
	}
	return w.fail(fmt.Sprintf("invalid character %q %s", w.data[w.pos], context))
}

func (w *shapeWalker) skipSpace() {
	for w.pos < len(w.data) {
		switch w.data[w.pos] {
		case ' ', '\t', '\n', '\r':
			w.pos++
		default:
			return
		}
	}
}

// jsonKind names the kind of the value starting at pos, for messages; "" if none can start there.
func (w *shapeWalker) jsonKind() string {
	if w.pos >= len(w.data) {
		return ""
	}
	switch c := w.data[w.pos]; {
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == '"':
		return "a string"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	case c == '-' || c >= '0' && c <= '9':
		return "a number"
	}
	return ""
}

// value checks the value at pos against t. Shape errors are recorded and the walk goes on; a
// returned error is a syntax error that ends it.
func (w *shapeWalker) value(t reflect.Type) error {
	w.skipSpace()
	got := w.jsonKind()
	if got == "" {
		return w.unexpected("looking for the beginning of a value")
	}
	if got == "null" { // null leaves any Go value as it is, as encoding/json does
		return w.literal("null")
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == rawMessageType || t.Kind() == reflect.Interface {
		return w.skipValue()
	}
	if t == portsType && got == "an array" {
		return w.intOrStringArray()
	}
	want := ""
	switch t.Kind() {
	case reflect.Struct:
		if got == "an object" {
			return w.object(t)
		}
		want = "an object"
	case reflect.Map:
		if got == "an object" && t.Key().Kind() == reflect.String {
			return w.mapValue(t)
		}
		want = "an object"
	case reflect.Slice:
		if got == "an array" {
			return w.array(t)
		}
		want = "an array"
	case reflect.String:
		if got == "a string" {
			_, _, err := w.str()
			return err
		}
		want = "a string"
	case reflect.Bool:
		if got == "a boolean" {
			return w.skipValue()
		}
		want = "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if got == "a number" {
			n, err := w.number()
			if err == nil {
				if _, perr := strconv.ParseInt(n, 10, t.Bits()); perr != nil {
					w.malformed(fmt.Sprintf("must be an integer that fits in %d bits, got %s", t.Bits(), n))
				}
			}
			return err
		}
		want = "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if got == "a number" {
			n, err := w.number()
			if err == nil {
				if _, perr := strconv.ParseUint(n, 10, t.Bits()); perr != nil {
					w.malformed(fmt.Sprintf("must be a non-negative integer that fits in %d bits, got %s", t.Bits(), n))
				}
			}
			return err
		}
		want = "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		if got == "a number" {
			n, err := w.number()
			if err == nil {
				if _, perr := strconv.ParseFloat(n, t.Bits()); perr != nil {
					w.malformed(fmt.Sprintf("must be a number that fits in float%d, got %s", t.Bits(), n))
				}
			}
			return err
		}
		want = "a number"
	default:
		return fmt.Errorf("model: no JSON shape rule for %s", t)
	}
	w.malformed(fmt.Sprintf("must be %s, got %s", want, got))
	return w.skipValue()
}

// object checks a JSON object at pos against struct type t.
func (w *shapeWalker) object(t reflect.Type) error {
	fields := jsonFields(t)
	var seen uint64 // bit i: field i was present (structs here have fewer than 64 fields)
	return w.members(func(key string) error {
		n := len(w.path)
		if n > 0 {
			w.path = append(w.path, '.')
		}
		w.path = append(w.path, key...)
		defer func() { w.path = w.path[:n] }()
		f, known := fields.byName[key]
		if !known {
			w.malformed("unknown field" + fields.suggest(key))
			return w.skipValue()
		}
		if f.index < 64 {
			if seen&(1<<f.index) != 0 {
				w.malformed("duplicate field")
			}
			seen |= 1 << f.index
		}
		return w.value(f.typ)
	})
}

// mapValue checks a JSON object at pos against map type t.
func (w *shapeWalker) mapValue(t reflect.Type) error {
	var keys []string
	var seen map[string]bool
	elem := t.Elem()
	return w.members(func(key string) error {
		n := len(w.path)
		w.path = append(w.path, '[')
		w.path = strconv.AppendQuote(w.path, key)
		w.path = append(w.path, ']')
		defer func() { w.path = w.path[:n] }()
		dup := false
		if seen == nil && len(keys) < 16 { // small maps: a slice beats a map
			for _, k := range keys {
				dup = dup || k == key
			}
			keys = append(keys, key)
		} else {
			if seen == nil {
				seen = make(map[string]bool, 2*len(keys))
				for _, k := range keys {
					seen[k] = true
				}
			}
			dup = seen[key]
			seen[key] = true
		}
		if dup {
			w.malformed("duplicate key")
		}
		return w.value(elem)
	})
}

// array checks the JSON array at pos against slice type t.
var portsType = reflect.TypeFor[Ports]()

// intOrStringArray walks an array whose entries may be integers or strings (Ports).
func (w *shapeWalker) intOrStringArray() error {
	return w.elements(func(i int) error {
		n := len(w.path)
		w.path = append(w.path, '[')
		w.path = strconv.AppendInt(w.path, int64(i), 10)
		w.path = append(w.path, ']')
		defer func() { w.path = w.path[:n] }()
		w.skipSpace()
		switch got := w.jsonKind(); got {
		case "a string":
			_, _, err := w.str()
			return err
		case "a number":
			num, err := w.number()
			if err == nil {
				if _, perr := strconv.ParseInt(num, 10, 64); perr != nil {
					w.malformed(fmt.Sprintf("must be an integer or a string, got %s", num))
				}
			}
			return err
		case "":
			return w.unexpected("looking for the beginning of a value")
		default:
			w.malformed("must be an integer or a string, got " + got)
			return w.skipValue()
		}
	})
}

func (w *shapeWalker) array(t reflect.Type) error {
	elem := t.Elem()
	return w.elements(func(i int) error {
		n := len(w.path)
		w.path = append(w.path, '[')
		w.path = strconv.AppendInt(w.path, int64(i), 10)
		w.path = append(w.path, ']')
		err := w.value(elem)
		w.path = w.path[:n]
		return err
	})
}

// structFields is what the walker needs of a struct type: its fields by JSON name.
type structFields struct {
	byName map[string]structField
}

type structField struct {
	index int
	typ   reflect.Type
}

var fieldCache sync.Map // reflect.Type -> *structFields

// jsonFields returns the JSON fields of struct type t.
func jsonFields(t reflect.Type) *structFields {
	if f, ok := fieldCache.Load(t); ok {
		return f.(*structFields)
	}
	sf := &structFields{byName: make(map[string]structField, t.NumField())}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name := f.Name
		if tag, ok := f.Tag.Lookup("json"); ok {
			tagName, _, _ := strings.Cut(tag, ",")
			if tagName == "-" {
				continue
			}
			if tagName != "" {
				name = tagName
			}
		}
		sf.byName[name] = structField{index: i, typ: f.Type}
	}
	fieldCache.Store(t, sf)
	return sf
}

// suggest names the known field that an unknown one differs from only by case, the usual slip.
func (sf *structFields) suggest(key string) string {
	for name := range sf.byName {
		if strings.EqualFold(name, key) {
			return fmt.Sprintf(" (did you mean %q? field names are case-sensitive)", name)
		}
	}
	return ""
}
