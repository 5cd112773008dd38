package strictyaml

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

type inner struct {
	Rate  float64           `yaml:"rate"`
	Every time.Duration     `yaml:"every"`
	Tags  map[string]string `yaml:"tags"`
}

// shorthand decodes itself from a scalar ("3") or a mapping ({n: 3}).
type shorthand struct{ N int }

func (s *shorthand) UnmarshalYAMLNode(d *Decoder, n *yaml.Node, path string) {
	if n.Kind == yaml.ScalarNode {
		d.Decode(n, path, &s.N)
		return
	}
	var p struct {
		N int `yaml:"n"`
	}
	d.Decode(n, path, &p)
	s.N = p.N
}

type outer struct {
	Name  string      `yaml:"name"`
	Count int         `yaml:"count"`
	On    bool        `yaml:"on"`
	Size  uint16      `yaml:"size"`
	Items []inner     `yaml:"items"`
	Opt   *inner      `yaml:"opt"`
	List  []string    `yaml:"list"`
	Short shorthand   `yaml:"short"`
	Many  []shorthand `yaml:"many"`
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"unknown field with a suggestion", "name: a\ncont: 2\n", `f.yaml:2: cont: unknown field; did you mean "count"? (known: name, count, on, size, items, opt, list, short, many)`},
		{"unknown field without one", "name: a\ncolour: red\n", `f.yaml:2: colour: unknown field (known: name, count, on, size, items, opt, list, short, many)`},
		{"nested unknown", "items:\n  - rate: 1\n    nope: 2\n", `f.yaml:3: items[0].nope: unknown field (known: rate, every, tags)`},
		{"bad int", "count: many\n", `f.yaml:1: count: "many" is not an integer`},
		{"int out of range", "size: 70000\n", `f.yaml:1: size: "70000" is not a non-negative integer`},
		{"bad bool", "on: yes\n", `f.yaml:1: on: "yes" is not true or false`},
		{"bad number", "opt: {rate: .nan}\n", `f.yaml:1: opt.rate: ".nan" is not a number`},
		{"bad duration", "items:\n  - every: soon\n", `f.yaml:2: items[0].every: "soon" is not a duration (such as 30s or 1m30s)`},
		{"duplicate", "name: a\nname: b\n", `f.yaml:2: name: duplicate field`},
		{"duplicate map key", "items:\n  - tags: {a: x, a: y}\n", `f.yaml:2: items[0].tags.a: duplicate key`},
		{"mapping for string", "name: {a: 1}\n", `f.yaml:1: name: want a single value, got a mapping`},
		{"list for struct", "opt: [1]\n", `f.yaml:1: opt: want a mapping, got a list`},
		{"scalar for list", "list: a\n", `f.yaml:1: list: want a list, got "a"`},
		{"shorthand", "short: x\n", `f.yaml:1: short: "x" is not an integer`},
		{"shorthand mapping", "many: [1, {m: 2}]\n", `f.yaml:1: many[1].m: unknown field; did you mean "n"? (known: n)`},
		{"syntax", "name: [\n", `f.yaml:1: did not find expected node content`},
		{"two docs", "name: a\n---\nname: b\n", "f.yaml:2: more than one YAML document"},
		{"empty", "", "f.yaml:1: empty document"},
		{"every problem at once, in file order", "count: x\nname: [1]\nbogus: 1\n", strings.Join([]string{
			`f.yaml:1: count: "x" is not an integer`,
			`f.yaml:2: name: want a single value, got a list`,
			`f.yaml:3: bogus: unknown field (known: name, count, on, size, items, opt, list, short, many)`,
		}, "\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o outer
			_, err := DecodeFile("f.yaml", []byte(tt.in), &o)
			require.Error(t, err)
			assert.Equal(t, tt.want, err.Error())
			assert.ErrorIs(t, err, ErrInvalid)
		})
	}
}

func TestDecodeValues(t *testing.T) {
	in := "name: x\ncount: 3\non: true\nsize: 9\nitems:\n  - rate: 0.5\n    every: 10s\n    tags: {a: b, n: 1}\nopt: {rate: 2}\nlist: [a, b]\nshort: 4\nmany: [1, {n: 2}]\n"
	var o outer
	d, err := DecodeFile("f.yaml", []byte(in), &o)
	require.NoError(t, err)
	assert.Equal(t, outer{
		Name: "x", Count: 3, On: true, Size: 9,
		Items: []inner{{Rate: 0.5, Every: 10 * time.Second, Tags: map[string]string{"a": "b", "n": "1"}}},
		Opt:   &inner{Rate: 2}, List: []string{"a", "b"}, Short: shorthand{4}, Many: []shorthand{{1}, {2}},
	}, o)
	assert.Equal(t, Pos{Line: 6, Col: 11}, d.Pos("items[0].rate"))
	assert.Equal(t, Pos{Line: 6, Col: 5}, d.Pos("items[0].missing"), "an absent field is placed at its parent")
	assert.True(t, d.Has("opt.rate"))
	assert.False(t, d.Has("opt.every"))

	d.ErrorAt("items[0].rate", "too high")
	d.ErrorAt("opt.every", "required")
	assert.Equal(t, "f.yaml:6: items[0].rate: too high\nf.yaml:9: opt.every: required", d.Err().Error())
}

var errMine = errors.New("invalid thing")

func TestSentinel(t *testing.T) {
	d := &Decoder{File: "f.yaml", Sentinel: errMine}
	var o outer
	err := d.DecodeData([]byte("name: [\n"), &o)
	require.Error(t, err)
	assert.ErrorIs(t, err, errMine, "parse errors carry the sentinel too")
	assert.ErrorIs(t, err, ErrInvalid)

	d = &Decoder{File: "f.yaml", Sentinel: errMine}
	require.NoError(t, d.DecodeData([]byte("count: 1\n"), &o))
	d.ErrorAt("count", "too few")
	assert.ErrorIs(t, d.Err(), errMine)
	var e *Error
	require.ErrorAs(t, d.Err(), &e)
	assert.Equal(t, 1, e.Line)

	_, err = DecodeFile("f.yaml", []byte("count: x\n"), &o)
	assert.NotErrorIs(t, err, errMine, "without a sentinel only ErrInvalid matches")
}

func TestNodeFieldsKeepTheDocument(t *testing.T) {
	var v struct {
		Base    []int     `yaml:"base"`
		Overlay yaml.Node `yaml:"overlay"`
		Absent  yaml.Node `yaml:"absent"`
	}
	_, err := DecodeFile("f.yaml", []byte("base: &b [1, 2]\noverlay: {a: *b, c: {d: x}}\n"), &v)
	require.NoError(t, err)
	assert.Equal(t, yaml.MappingNode, v.Overlay.Kind)
	assert.Equal(t, 2, v.Overlay.Line)
	assert.Equal(t, "x", Lookup(&v.Overlay, []string{"c", "d"}).Value)
	assert.Equal(t, yaml.SequenceNode, Lookup(&v.Overlay, []string{"a"}).Kind, "aliases are resolved into copies")
	assert.Zero(t, v.Absent.Kind)
}

func TestValueBuiltInCode(t *testing.T) {
	d := &Decoder{}
	d.ErrorAt("operations[0].weight", "must be positive")
	assert.Equal(t, "operations[0].weight: must be positive", d.Err().Error(), "no file, no place")
}

func TestAliasBombIsBounded(t *testing.T) {
	defer func(n int) { maxVisits = n }(maxVisits)
	maxVisits = 10_000

	// Each level refers to the one before ten times: 10^8 values from a few hundred bytes.
	var b strings.Builder
	b.WriteString("l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i <= 7; i++ {
		fmt.Fprintf(&b, "l%d: &l%d [", i, i)
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*l%d", i-1)
		}
		b.WriteString("]\n")
	}
	var v struct {
		L0 []string               `yaml:"l0"`
		L1 [][]string             `yaml:"l1"`
		L2 [][][]string           `yaml:"l2"`
		L3 [][][][]string         `yaml:"l3"`
		L4 [][][][][]string       `yaml:"l4"`
		L5 [][][][][][]string     `yaml:"l5"`
		L6 [][][][][][][]string   `yaml:"l6"`
		L7 [][][][][][][][]string `yaml:"l7"`
	}
	_, err := DecodeFile("bomb.yaml", []byte(b.String()), &v)
	require.ErrorIs(t, err, ErrInvalid)
	assert.Contains(t, err.Error(), "expands to more than")
}

// place is the one error format: file:line: path: message (path absent for whole-file problems).
var place = regexp.MustCompile(`^fuzz\.yaml(:[1-9][0-9]*)?: \S`)

// FuzzDecode is the fuzz target of the shared decoder behind every file kind: whatever the
// input, it must not panic, and every problem must match ErrInvalid, in the one format, at a
// line inside the file.
func FuzzDecode(f *testing.F) {
	f.Add([]byte("name: x\ncount: 3\nitems:\n  - {rate: 0.5, every: 10s, tags: {a: b}}\nshort: 1\nmany: [1, {n: 2}]\n"))
	f.Add([]byte("a: &a [1, 2]\nlist: *a\n"))
	f.Add([]byte("- [a, &x b, *x]"))
	f.Add([]byte("name: a\n---\nname: b\n"))
	f.Add([]byte("opt: {rate: 1e400}\nsize: -1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var o outer
		_, err := DecodeFile("fuzz.yaml", data, &o)
		if err == nil {
			return
		}
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("error does not match ErrInvalid: %v", err)
		}
		var es Errors
		if !errors.As(err, &es) || len(es) == 0 {
			t.Fatalf("error is not a list of problems: %T %v", err, err)
		}
		// YAML breaks lines at \n, \r and, from 1.1, at NEL, LS and PS; counting each \r\n
		// twice only loosens the bound.
		lines := 1
		for _, r := range string(data) {
			switch r {
			case '\n', '\r', '\u0085', '\u2028', '\u2029':
				lines++
			}
		}
		for _, e := range es {
			if !place.MatchString(e.Error()) {
				t.Fatalf("problem not in the file:line: path: message format: %q", e.Error())
			}
			if e.Line > lines {
				t.Fatalf("problem at line %d of a %d-line file: %v", e.Line, lines, e)
			}
		}
	})
}
