package audit

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// decodeRecord reads one record's JSON as json.Unmarshal does into a zero Record. The
// journal's records are what appendJSON wrote, which parseJSON reads without reflection
// (decoding was half of what indexing a record cost); anything else goes through encoding/json.
func decodeRecord(b []byte) (Record, error) {
	var r Record
	if r.parseJSON(b) {
		return r, nil
	}
	r = Record{}
	err := json.Unmarshal(b, &r)
	return r, err
}

// parseJSON reads an object of Record's fields, as appendJSON writes them: exact field names,
// no white space, strings without escapes, control characters or invalid UTF-8. It reports
// false, leaving r partly set, for anything else, which encoding/json then decides.
func (r *Record) parseJSON(b []byte) bool {
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return false
	}
	b = b[1 : len(b)-1]
	for len(b) > 0 {
		name, rest, ok := plainString(b)
		if !ok || len(rest) == 0 || rest[0] != ':' {
			return false
		}
		b = rest[1:]
		var value []byte
		if len(b) > 0 && b[0] == '"' {
			var s string
			if s, rest, ok = plainString(b); !ok {
				return false
			}
			value, b = b[:len(b)-len(rest)], rest
			if !r.setString(name, s, value) {
				return false
			}
		} else {
			i := bytes.IndexByte(b, ',')
			if i < 0 {
				i = len(b)
			}
			value, b = b[:i], b[i:]
			if !r.setNumber(name, value) {
				return false
			}
		}
		if len(b) > 0 {
			if b[0] != ',' || len(b) == 1 {
				return false
			}
			b = b[1:]
		}
	}
	return true
}

func (r *Record) setString(name, s string, quoted []byte) bool {
	switch name {
	case "id":
		r.ID = s
	case "time":
		return r.Time.UnmarshalJSON(quoted) == nil
	case "user":
		r.User = s
	case "source":
		r.Source = s
	case "method":
		r.Method = s
	case "path":
		r.Path = s
	case "verb":
		r.Verb = s
	case "kind":
		r.Kind = s
	case "tenant":
		r.Tenant = s
	case "name":
		r.Name = s
	case "verdict":
		r.Verdict = s
	case "binding":
		r.Binding = s
	case "reason":
		r.Reason = s
	default:
		return false
	}
	return true
}

func (r *Record) setNumber(name string, v []byte) bool {
	if !jsonNumber(v) {
		return false
	}
	switch name {
	case "status":
		n, err := strconv.ParseInt(string(v), 10, strconv.IntSize)
		if err != nil {
			return false
		}
		r.Status = int(n)
	case "durationMs":
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			return false
		}
		r.DurationMs = f
	default:
		return false
	}
	return true
}

// plainString reads a JSON string at the start of b that needs no unescaping: its bytes are
// its value.
func plainString(b []byte) (s string, rest []byte, ok bool) {
	if len(b) == 0 || b[0] != '"' {
		return "", nil, false
	}
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			if !utf8.Valid(b[1:i]) {
				return "", nil, false
			}
			return string(b[1:i]), b[i+1:], true
		case c == '\\' || c < 0x20:
			return "", nil, false
		}
	}
	return "", nil, false
}

// jsonNumber reports whether v is a number by JSON's grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func jsonNumber(v []byte) bool {
	i := 0
	if i < len(v) && v[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(v) && v[i] >= '0' && v[i] <= '9' {
			i, n = i+1, n+1
		}
		return n
	}
	switch {
	case i < len(v) && v[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(v) && v[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(v) && (v[i] == 'e' || v[i] == 'E') {
		i++
		if i < len(v) && (v[i] == '+' || v[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(v)
}
