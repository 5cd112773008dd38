package scenarios

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/dsnscale/dsnscale/internal/strictyaml"
)

//go:embed library/*.yaml
var library embed.FS

// libraryPrefix marks a scenario's Source as coming from the library.
const libraryPrefix = "library:"

// Entry is a library scenario in a listing.
type Entry struct {
	Name        string
	Description string
}

// Library lists the embedded scenarios by name.
func Library() ([]Entry, error) {
	names, err := fs.Glob(library, "library/*.yaml")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	out := make([]Entry, 0, len(names))
	for _, n := range names {
		data, err := library.ReadFile(n)
		if err != nil {
			return nil, err
		}
		var head struct {
			Metadata Metadata `yaml:"metadata"`
		}
		if err := yaml.Unmarshal(data, &head); err != nil {
			return nil, fmt.Errorf("scenarios: library %s: %w", n, err)
		}
		out = append(out, Entry{Name: strings.TrimSuffix(path.Base(n), ".yaml"), Description: head.Metadata.Description})
	}
	return out, nil
}

// LibraryFile returns the text of a library scenario.
func LibraryFile(name string) ([]byte, error) {
	if !paramName.MatchString(strings.ReplaceAll(name, "-", "_")) {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	data, err := library.ReadFile("library/" + name + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	return data, nil
}

// Load reads a scenario by library name or file path, applies set (the --set values) and checks
// it. A name that is neither a library scenario nor a file gets ErrNotFound; every problem with
// the scenario matches ErrInvalid and names its file:line and field path.
func Load(nameOrPath string, set map[string]string) (*Scenario, error) {
	if data, err := LibraryFile(nameOrPath); err == nil && !fileExists(nameOrPath) {
		return Parse(libraryPrefix+nameOrPath, data, set, "")
	}
	data, err := strictyaml.ReadFile(nameOrPath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			entries, _ := Library()
			names := make([]string, len(entries))
			for i, e := range entries {
				names[i] = e.Name
			}
			return nil, fmt.Errorf("%w: %q is neither a library scenario (%s) nor a file", ErrNotFound, nameOrPath, joinNames(names))
		}
		if errors.Is(err, ErrInvalid) {
			return nil, err
		}
		return nil, fmt.Errorf("scenarios: %w", err)
	}
	return Parse(nameOrPath, data, set, filepath.Dir(nameOrPath))
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// Parse decodes and checks a scenario from data; source names it in errors and dir is where
// relative paths in it are resolved ("" for none).
func Parse(source string, data []byte, set map[string]string, dir string) (*Scenario, error) {
	root, err := strictyaml.Parse(source, data)
	if err != nil {
		return nil, err
	}
	d := &strictyaml.Decoder{File: source}
	params, values := bindParams(d, root, set)
	d.Subst = func(s string) (string, error) { return substitute(s, values) }

	// The params section was decoded above, without substitution; decode the rest.
	body := *root
	if root.Kind == yaml.MappingNode {
		body.Content = nil
		for i := 0; i+1 < len(root.Content); i += 2 {
			if root.Content[i].Value != "params" {
				body.Content = append(body.Content, root.Content[i], root.Content[i+1])
			}
		}
	}
	s := &Scenario{}
	d.Decode(&body, "", s)
	s.Params, s.Values, s.Source, s.Content, s.Dir = params, values, source, data, dir
	if d.Err() == nil {
		validate(s, d)
	}
	if err := d.Err(); err != nil {
		return nil, err
	}
	return s, nil
}
