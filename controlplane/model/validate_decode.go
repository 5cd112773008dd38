package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
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

// checkShape walks the JSON in data against type t and reports every place where it does not fit:
// malformed JSON, a value of the wrong JSON type, an unknown or repeated field, trailing data.
func checkShape(data []byte, t reflect.Type, path string) *FieldErrors {
	w := &shapeWalker{dec: json.NewDecoder(bytes.NewReader(data)), errs: &FieldErrors{}}
	w.dec.UseNumber()
	tok, err := w.dec.Token()
	switch {
	case err == io.EOF:
		w.errs.AddMalformed(path, "empty input: want a JSON object")
		return w.errs
	case err != nil:
		w.syntax(path, err)
		return w.errs
	}
	if t.Kind() == reflect.Struct && t != rawMessageType && tok == nil {
		w.errs.AddMalformed(path, "must be a JSON object, got null")
		return w.errs
	}
	if err := w.value(tok, t, path); err != nil {
		w.syntax(path, err)
		return w.errs
	}
	if _, err := w.dec.Token(); err != io.EOF {
		w.errs.AddMalformed(path, "unexpected data after the JSON value")
	}
	return w.errs
}

type shapeWalker struct {
	dec  *json.Decoder
	errs *FieldErrors
}

// syntax records a JSON syntax or read error with its byte offset.
func (w *shapeWalker) syntax(path string, err error) {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		w.errs.AddMalformed(path, fmt.Sprintf("malformed JSON at byte %d: %s", se.Offset, se.Error()))
		return
	}
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		w.errs.AddMalformed(path, fmt.Sprintf("malformed JSON: unexpected end of input at byte %d", w.dec.InputOffset()))
		return
	}
	w.errs.AddMalformed(path, "malformed JSON: "+err.Error())
}

// value checks one JSON value whose first token is tok. A returned error is a syntax error that
// ends the walk; shape errors are recorded and the walk goes on.
func (w *shapeWalker) value(tok json.Token, t reflect.Type, path string) error {
	if tok == nil { // null leaves any Go value as it is, as encoding/json does
		return nil
	}
	if t == rawMessageType {
		return w.skip(tok)
	}
	switch t.Kind() {
	case reflect.Pointer:
		return w.value(tok, t.Elem(), path)
	case reflect.Struct:
		if d, ok := tok.(json.Delim); ok && d == '{' {
			return w.object(t, path)
		}
		w.wrongType(path, "an object", tok)
		return w.skip(tok)
	case reflect.Map:
		if d, ok := tok.(json.Delim); ok && d == '{' {
			return w.mapValue(t, path)
		}
		w.wrongType(path, "an object", tok)
		return w.skip(tok)
	case reflect.Slice:
		if d, ok := tok.(json.Delim); ok && d == '[' {
			return w.array(t, path)
		}
		w.wrongType(path, "an array", tok)
		return w.skip(tok)
	case reflect.String:
		if _, ok := tok.(string); !ok {
			w.wrongType(path, "a string", tok)
		}
	case reflect.Bool:
		if _, ok := tok.(bool); !ok {
			w.wrongType(path, "a boolean", tok)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := tok.(json.Number)
		if !ok {
			w.wrongType(path, "an integer", tok)
			break
		}
		if _, err := strconv.ParseInt(string(n), 10, t.Bits()); err != nil {
			w.errs.AddMalformed(path, fmt.Sprintf("must be an integer that fits in %d bits, got %s", t.Bits(), n))
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := tok.(json.Number)
		if !ok {
			w.wrongType(path, "a non-negative integer", tok)
			break
		}
		if _, err := strconv.ParseUint(string(n), 10, t.Bits()); err != nil {
			w.errs.AddMalformed(path, fmt.Sprintf("must be a non-negative integer that fits in %d bits, got %s", t.Bits(), n))
		}
	case reflect.Float32, reflect.Float64:
		n, ok := tok.(json.Number)
		if !ok {
			w.wrongType(path, "a number", tok)
			break
		}
		if _, err := strconv.ParseFloat(string(n), t.Bits()); err != nil {
			w.errs.AddMalformed(path, fmt.Sprintf("must be a number that fits in float%d, got %s", t.Bits(), n))
		}
	case reflect.Interface:
		return w.skip(tok)
	default:
		return fmt.Errorf("model: no JSON shape rule for %s", t)
	}
	return w.skip(tok)
}

// object checks the members of a JSON object (after its '{') against struct type t.
func (w *shapeWalker) object(t reflect.Type, path string) error {
	fields := jsonFields(t)
	seen := make(map[string]bool, len(fields))
	for w.dec.More() {
		keyTok, err := w.dec.Token()
		if err != nil {
			return err
		}
		key, _ := keyTok.(string)
		tok, err := w.dec.Token()
		if err != nil {
			return err
		}
		fpath := JoinPath(path, key)
		if seen[key] {
			w.errs.AddMalformed(fpath, "duplicate field")
		}
		seen[key] = true
		ft, known := fields[key]
		if !known {
			w.errs.AddMalformed(fpath, "unknown field"+suggest(key, fields))
			if err := w.skip(tok); err != nil {
				return err
			}
			continue
		}
		if err := w.value(tok, ft, fpath); err != nil {
			return err
		}
	}
	_, err := w.dec.Token() // '}'
	return err
}

// mapValue checks the members of a JSON object (after its '{') against map type t.
func (w *shapeWalker) mapValue(t reflect.Type, path string) error {
	if t.Key().Kind() != reflect.String {
		return fmt.Errorf("model: no JSON shape rule for %s", t)
	}
	seen := map[string]bool{}
	for w.dec.More() {
		keyTok, err := w.dec.Token()
		if err != nil {
			return err
		}
		key, _ := keyTok.(string)
		tok, err := w.dec.Token()
		if err != nil {
			return err
		}
		kpath := keyPath(path, key)
		if seen[key] {
			w.errs.AddMalformed(kpath, "duplicate key")
		}
		seen[key] = true
		if err := w.value(tok, t.Elem(), kpath); err != nil {
			return err
		}
	}
	_, err := w.dec.Token()
	return err
}

// array checks the elements of a JSON array (after its '[') against slice type t.
func (w *shapeWalker) array(t reflect.Type, path string) error {
	for i := 0; w.dec.More(); i++ {
		tok, err := w.dec.Token()
		if err != nil {
			return err
		}
		if err := w.value(tok, t.Elem(), indexPath(path, i)); err != nil {
			return err
		}
	}
	_, err := w.dec.Token()
	return err
}

// skip consumes the rest of a value whose first token is tok.
func (w *shapeWalker) skip(tok json.Token) error {
	d, ok := tok.(json.Delim)
	if !ok || d == '}' || d == ']' {
		return nil
	}
	for depth := 1; depth > 0; {
		next, err := w.dec.Token()
		if err != nil {
			return err
		}
		if d, ok := next.(json.Delim); ok {
			if d == '{' || d == '[' {
				depth++
			} else {
				depth--
			}
		}
	}
	return nil
}

func (w *shapeWalker) wrongType(path, want string, tok json.Token) {
	w.errs.AddMalformed(path, fmt.Sprintf("must be %s, got %s", want, jsonTypeName(tok)))
}

func jsonTypeName(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		if v == '{' {
			return "an object"
		}
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return "null"
}

// jsonFields maps the JSON names of t's exported fields to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := make(map[string]reflect.Type, t.NumField())
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
		out[name] = f.Type
	}
	return out
}

// suggest names the known field that an unknown one differs from only by case, the usual slip.
func suggest(key string, fields map[string]reflect.Type) string {
	for name := range fields {
		if strings.EqualFold(name, key) {
			return fmt.Sprintf(" (did you mean %q? field names are case-sensitive)", name)
		}
	}
	return ""
}
