// Package jsonenc appends JSON strings without reflection, for the encoders on hot paths (a
// simulated DSN's telemetry, an audit record per API call) that write their few fields by hand.
package jsonenc

import "unicode/utf8"

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string, as encoding/json would read it back: quotes,
// backslashes and control characters escaped, invalid UTF-8 replaced by U+FFFD, and U+2028 and
// U+2029 escaped so that the output is also valid JavaScript.
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0 // s[start:i] needs no escaping and is not yet appended
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < utf8.RuneSelf && c != '"' && c != '\\' {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			if r, size := utf8.DecodeRuneInString(s[i:]); r != utf8.RuneError && r != '\u2028' && r != '\u2029' {
				i += size // valid and written as it is
				continue
			}
		}
		b = append(b, s[start:i]...)
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			switch {
			case r == utf8.RuneError && size == 1:
				b = append(b, `\ufffd`...)
			case r == '\u2028' || r == '\u2029':
				b = append(b, `\u202`...)
				b = append(b, hexDigits[r&0xf])
			default: // U+FFFD as such, valid
				b = append(b, s[i:i+size]...)
			}
			i += size
			start = i
			continue
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
