package strictyaml

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

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
