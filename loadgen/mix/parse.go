package mix

import (
	"embed"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/dsnscale/dsnscale/internal/strictyaml"
)

// MaxFileSize bounds a mix file.
const MaxFileSize = strictyaml.MaxFileBytes

//go:embed builtin/*.yaml
var builtinFS embed.FS

// Parse decodes one mix document strictly: unknown fields, wrong types, extra documents and
// invalid values are errors, each an *Error with the file's name, the line and the field path,
// all of them at once. The result has its defaults filled.
func Parse(file string, data []byte) (*Mix, error) {
	d := &strictyaml.Decoder{File: file, Sentinel: ErrInvalid}
	if len(data) > MaxFileSize {
		d.Add(&Error{File: file, Msg: fmt.Sprintf("file is larger than %d bytes", MaxFileSize)})
		return nil, d.Err()
	}
	var m Mix
	if err := d.DecodeData(data, &m); err != nil {
		return nil, err
	}
	if err := m.errorsIn(d); err != nil {
		return nil, err
	}
	if m.Name == "" {
		m.Name = strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	}
	out := m.WithDefaults()
	return &out, nil
}

// Builtins lists the names of the built-in mixes.
func Builtins() []string {
	entries, _ := builtinFS.ReadDir("builtin")
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	sort.Strings(names)
	return names
}

// Builtin returns the built-in mix called name.
func Builtin(name string) (*Mix, error) {
	data, err := builtinFS.ReadFile("builtin/" + name + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("%w %q: built-in mixes are %s", ErrUnknown, name, strings.Join(Builtins(), ", "))
	}
	return Parse("builtin/"+name+".yaml", data)
}

// Load returns the built-in mix called nameOrPath or, when it looks like a path (it has a
// slash or a .yaml/.yml extension), the mix in that file.
func Load(nameOrPath string) (*Mix, error) {
	if !strings.ContainsRune(nameOrPath, '/') && !strings.HasSuffix(nameOrPath, ".yaml") && !strings.HasSuffix(nameOrPath, ".yml") {
		return Builtin(nameOrPath)
	}
	data, err := strictyaml.ReadFile(nameOrPath)
	if err != nil {
		return nil, fmt.Errorf("mix %s: %w", nameOrPath, err)
	}
	return Parse(nameOrPath, data)
}
