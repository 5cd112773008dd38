package model

import (
	"encoding/json"
	"fmt"
	"strings"
)

// The lexical half of the shape walker: it moves over objects, arrays, strings, numbers and
// literals, checking JSON syntax as encoding/json does.

// members walks the members of the object at pos, calling fn with pos at each member's value.
func (w *shapeWalker) members(fn func(key string) error) error {
	if w.depth++; w.depth > maxDepth {
		return w.fail("nested too deeply")
	}
	defer func() { w.depth-- }()
	w.pos++ // '{'
	w.skipSpace()
	if w.pos < len(w.data) && w.data[w.pos] == '}' {
		w.pos++
		return nil
	}
	for {
		w.skipSpace()
		if w.pos >= len(w.data) || w.data[w.pos] != '"' {
			return w.unexpected("looking for the beginning of an object key")
		}
		raw, escaped, err := w.str()
		if err != nil {
			return err
		}
		key := string(raw)
		if escaped {
			if err := json.Unmarshal(w.data[w.pos-len(raw)-2:w.pos], &key); err != nil {
				return w.fail("object key: " + err.Error())
			}
		}
		w.skipSpace()
		if w.pos >= len(w.data) || w.data[w.pos] != ':' {
			return w.unexpected("after an object key")
		}
		w.pos++
		if err := fn(key); err != nil {
			return err
		}
		w.skipSpace()
		if w.pos >= len(w.data) {
			return w.unexpected("after an object member")
		}
		switch w.data[w.pos] {
		case ',':
			w.pos++
		case '}':
			w.pos++
			return nil
		default:
			return w.unexpected("after an object member")
		}
	}
}

func (w *shapeWalker) elements(fn func(i int) error) error {
	if w.depth++; w.depth > maxDepth {
		return w.fail("nested too deeply")
	}
	defer func() { w.depth-- }()
	w.pos++ // '['
	w.skipSpace()
	if w.pos < len(w.data) && w.data[w.pos] == ']' {
		w.pos++
		return nil
	}
	for i := 0; ; i++ {
		if err := fn(i); err != nil {
			return err
		}
		w.skipSpace()
		if w.pos >= len(w.data) {
			return w.unexpected("after an array element")
		}
		switch w.data[w.pos] {
		case ',':
			w.pos++
		case ']':
			w.pos++
			return nil
		default:
			return w.unexpected("after an array element")
		}
	}
}

// skipValue checks the syntax of the value at pos and moves past it.
func (w *shapeWalker) skipValue() error {
	w.skipSpace()
	switch w.jsonKind() {
	case "an object":
		return w.members(func(string) error { return w.skipValue() })
	case "an array":
		return w.elements(func(int) error { return w.skipValue() })
	case "a string":
		_, _, err := w.str()
		return err
	case "a number":
		_, err := w.number()
		return err
	case "a boolean":
		if w.data[w.pos] == 't' {
			return w.literal("true")
		}
		return w.literal("false")
	case "null":
		return w.literal("null")
	}
	return w.unexpected("looking for the beginning of a value")
}

func (w *shapeWalker) literal(lit string) error {
	if !strings.HasPrefix(string(w.data[w.pos:min(len(w.data), w.pos+len(lit))]), lit) {
		return w.fail(fmt.Sprintf("invalid literal, want %s", lit))
	}
	w.pos += len(lit)
	return nil
}

// str scans the string at pos (at its opening quote) and returns its raw content.
func (w *shapeWalker) str() (raw []byte, escaped bool, err error) {
	start := w.pos + 1
	for i := start; i < len(w.data); i++ {
		switch c := w.data[i]; {
		case c == '"':
			w.pos = i + 1
			return w.data[start:i], escaped, nil
		case c == '\\':
			escaped = true
			if i+1 >= len(w.data) {
				w.pos = i
				return nil, false, w.fail("unexpected end of input in a string escape")
			}
			switch w.data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if i+5 >= len(w.data) || !isHex4(w.data[i+2:i+6]) {
					w.pos = i
					return nil, false, w.fail(`invalid \u escape in a string`)
				}
				i += 5
			default:
				w.pos = i
				return nil, false, w.fail(fmt.Sprintf("invalid escape %q in a string", w.data[i+1]))
			}
		case c < 0x20:
			w.pos = i
			return nil, false, w.fail("control character in a string")
		}
	}
	w.pos = len(w.data)
	return nil, false, w.fail("unexpected end of input in a string")
}

func isHex4(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// number scans the JSON number at pos and returns its text.
func (w *shapeWalker) number() (string, error) {
	start, d := w.pos, w.data
	i := start
	if i < len(d) && d[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
			n++
		}
		return n
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case digits() == 0:
		w.pos = i
		return "", w.unexpected("in a number")
	}
	if i < len(d) && d[i] == '.' {
		i++
		if digits() == 0 {
			w.pos = i
			return "", w.unexpected("after a decimal point")
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if digits() == 0 {
			w.pos = i
			return "", w.unexpected("in an exponent")
		}
	}
	w.pos = i
	return string(d[start:i]), nil
}
