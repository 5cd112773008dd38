package reports

import (
	"bytes"
	"encoding/json"
)

// MarshalRun encodes a run as run.json stores it: indented for reading, except that objects and
// arrays holding no other object or array stay on one line, so that a series takes one line
// per point rather than four.
func MarshalRun(run *Run) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // run.json is read by people and programs, never inlined in HTML
	if err := enc.Encode(run); err != nil {
		return nil, err
	}
	return indentLeaves(bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})), nil
}

// indentLeaves indents compact JSON, keeping leaf containers on one line.
func indentLeaves(src []byte) []byte {
	// First pass: for each opening bracket, where it closes and whether it holds a container.
	type info struct {
		close  int
		parent bool
	}
	infos := map[int]*info{}
	var stack []int
	inStr, esc := false, false
	for i, c := range src {
		if inStr {
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
		case '{', '[':
			if len(stack) > 0 {
				infos[stack[len(stack)-1]].parent = true
			}
			infos[i] = &info{}
			stack = append(stack, i)
		case '}', ']':
			infos[stack[len(stack)-1]].close = i
			stack = stack[:len(stack)-1]
		}
	}

	var out bytes.Buffer
	out.Grow(len(src) + len(src)/4)
	depth := 0
	newline := func() {
		out.WriteByte('\n')
		for k := 0; k < depth; k++ {
			out.WriteString("  ")
		}
	}
	inStr, esc = false, false
	for i := 0; i < len(src); i++ {
		c := src[i]
		if inStr {
			out.WriteByte(c)
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
			out.WriteByte(c)
		case '{', '[':
			in := infos[i]
			if !in.parent || in.close == i+1 {
				out.Write(src[i : in.close+1])
				i = in.close
				continue
			}
			out.WriteByte(c)
			depth++
			newline()
		case '}', ']':
			depth--
			newline()
			out.WriteByte(c)
		case ',':
			out.WriteByte(c)
			newline()
		case ':':
			out.WriteString(": ")
		default:
			out.WriteByte(c)
		}
	}
	out.WriteByte('\n')
	return out.Bytes()
}
