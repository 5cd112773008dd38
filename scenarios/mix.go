package scenarios

import (
	"path/filepath"
	"strings"

	"github.com/dsnscale/dsnscale/loadgen/mix"
)

// LoadMix loads a built-in mix by name, or a mix file relative to the scenario's directory.
func LoadMix(name, dir string) (*mix.Mix, error) {
	if name == "" {
		name = "default"
	}
	isPath := strings.ContainsRune(name, '/') || strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")
	if isPath && dir != "" && !filepath.IsAbs(name) {
		name = filepath.Join(dir, name)
	}
	return mix.Load(name)
}
