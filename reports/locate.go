package reports

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"
)

var timeType = reflect.TypeOf(time.Time{})

// locateProblem walks JSON data against the Go type root and returns the field path and byte
// offset of the first key root does not have, or of the first time that does not parse: the
// two errors encoding/json reports without a position.
func locateProblem(data []byte, root reflect.Type) (path string, off int64, problem string, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var stack []*frame
	next, nextPath := root, ""
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", 0, "", false
		}
		end := dec.InputOffset()
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.obj && top.wantKey {
			if d, isDelim := tok.(json.Delim); isDelim && d == '}' {
				stack = stack[:len(stack)-1]
				valueDone(stack)
				continue
			}
			key, _ := tok.(string)
			quoted, _ := json.Marshal(key)
			start := end - int64(len(quoted))
			ft, known := fieldType(top.t, key)
			p := joinPath(top.path, key)
			if !known {
				return p, start, fmt.Sprintf("unknown field %q", key), true
			}
			top.wantKey = false
			next, nextPath = ft, p
			continue
		}
		if top != nil && !top.obj {
			if d, isDelim := tok.(json.Delim); !isDelim || d != ']' {
				next, nextPath = elemType(top.t), fmt.Sprintf("%s[%d]", top.path, top.index)
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{obj: true, t: deref(next), wantKey: true, path: nextPath})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{t: deref(next), path: nextPath})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		default:
			if s, isString := tok.(string); isString && deref(next) == timeType {
				if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
					quoted, _ := json.Marshal(s)
					return nextPath, end - int64(len(quoted)), fmt.Sprintf("%q is not an RFC 3339 time", s), true
				}
			}
		}
		valueDone(stack)
		if len(stack) == 0 {
			return "", 0, "", false
		}
	}
}

// frame is an object or array being walked.
type frame struct {
	obj     bool
	t       reflect.Type
	wantKey bool
	index   int
	path    string
}

// valueDone moves the innermost container past the value just read.
func valueDone(stack []*frame) {
	if len(stack) == 0 {
		return
	}
	f := stack[len(stack)-1]
	if f.obj {
		f.wantKey = true
	} else {
		f.index++
	}
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func deref(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func elemType(t reflect.Type) reflect.Type {
	if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
		return t.Elem()
	}
	return nil
}

// fieldType returns the type of key in t as encoding/json would match it (case-insensitively),
// and whether t has it. Maps and untyped values take any key.
func fieldType(t reflect.Type, key string) (reflect.Type, bool) {
	if t == nil {
		return nil, true
	}
	switch t.Kind() {
	case reflect.Map:
		return t.Elem(), true
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if strings.EqualFold(name, key) {
				return f.Type, true
			}
		}
		return nil, false
	}
	return nil, true
}
