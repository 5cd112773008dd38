package gate

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// The YAML in docs/CI.md is what users copy: every block must parse, and every Gate file in it
// must be valid.
func TestCIDocYAML(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "docs", "CI.md"))
	require.NoError(t, err)
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(data), -1)
	require.NotEmpty(t, blocks)
	gates := 0
	for i, b := range blocks {
		var v any
		require.NoError(t, yaml.Unmarshal([]byte(b[1]), &v), "block %d:\n%s", i, b[1])
		if strings.Contains(b[1], "kind: Gate") {
			gates++
			_, err := Parse("docs/CI.md", []byte(b[1]))
			assert.NoError(t, err)
		}
	}
	assert.Equal(t, 1, gates)
}
