package strictyaml

import (
	"errors"
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

type outer struct {
	Name  string   `yaml:"name"`
	Count int      `yaml:"count"`
	Items []inner  `yaml:"items"`
	Opt   *inner   `yaml:"opt"`
	List  []string `yaml:"list"`
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"unknown field", "name: a\ncolour: red\n", `f.yaml:2:1: colour: unknown field "colour"`},
		{"nested unknown", "items:\n  - rate: 1\n    nope: 2\n", `f.yaml:3:5: items[0].nope: unknown field "nope"`},
		{"bad int", "count: many\n", `f.yaml:1:8: count: want an integer, got "many"`},
		{"bad duration", "items:\n  - every: soon\n", `f.yaml:2:12: items[0].every: want a duration`},
		{"duplicate", "name: a\nname: b\n", `f.yaml:2:1: name: duplicate field "name"`},
		{"mapping for string", "name: {a: 1}\n", `f.yaml:1:7: name: want a string, got a mapping`},
		{"list for struct", "opt: [1]\n", `f.yaml:1:6: opt: want a mapping, got a list`},
		{"syntax", "name: [\n", `f.yaml:`},
		{"two docs", "name: a\n---\nname: b\n", "more than one YAML document"},
		{"empty", "", "empty document"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o outer
			_, err := Decode("f.yaml", []byte(tt.in), &o)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.True(t, errors.Is(err, ErrInvalid))
		})
	}
}

func TestDecodeOK(t *testing.T) {
	in := "name: x\ncount: 3\nitems:\n  - rate: 0.5\n    every: 10s\n    tags: {a: b, n: 1}\nopt: {rate: 2}\nlist: [a, b]\n"
	var o outer
	doc, err := Decode("f.yaml", []byte(in), &o)
	require.NoError(t, err)
	assert.Equal(t, "x", o.Name)
	assert.Equal(t, 3, o.Count)
	assert.Equal(t, 10*time.Second, o.Items[0].Every)
	assert.Equal(t, map[string]string{"a": "b", "n": "1"}, o.Items[0].Tags)
	assert.Equal(t, 2.0, o.Opt.Rate)
	assert.Equal(t, Pos{Line: 4, Col: 11}, doc.Pos("items[0].rate"))
	assert.Equal(t, Pos{Line: 4, Col: 5}, doc.Pos("items[0].missing"))
	e := doc.Errorf("items[0].rate", "too high")
	assert.Equal(t, "f.yaml:4:11: items[0].rate: too high", e.Error())
}

func TestMergeAndSet(t *testing.T) {
	var base, over yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte("a: {x: 1, y: 2}\nb: [1]\n"), &base))
	require.NoError(t, yaml.Unmarshal([]byte("a: {y: 3, z: 4}\nb: [2]\n"), &over))
	m := Merge(base.Content[0], over.Content[0])
	var got map[string]any
	require.NoError(t, m.Decode(&got))
	assert.Equal(t, map[string]any{"a": map[string]any{"x": 1, "y": 3, "z": 4}, "b": []any{2}}, got)
	// base untouched
	require.NoError(t, base.Content[0].Decode(&got))
	assert.Equal(t, map[string]any{"a": map[string]any{"x": 1, "y": 2}, "b": []any{1}}, got)

	require.True(t, Set(m, []string{"a", "x"}, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: "9"}))
	require.True(t, Set(m, []string{"c", "d"}, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "v"}))
	assert.False(t, Set(m, []string{"b", "x"}, &yaml.Node{Kind: yaml.ScalarNode, Value: "v"}))
	assert.Equal(t, "9", Lookup(m, []string{"a", "x"}).Value)
	assert.Equal(t, "v", Lookup(m, []string{"c", "d"}).Value)
	assert.Nil(t, Lookup(m, []string{"q"}))
}
