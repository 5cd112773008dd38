package mix

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// MaxFileSize bounds a mix file.
const MaxFileSize = 1 << 20

//go:embed builtin/*.yaml
var builtinFS embed.FS

// Parse decodes one mix document strictly: unknown fields, wrong types, extra documents and
// invalid values are errors, each an *Error with file's name and the line. The result has its
// defaults filled.
func Parse(file string, data []byte) (*Mix, error) {
	if len(data) > MaxFileSize {
		return nil, &Error{File: file, Msg: fmt.Sprintf("%d bytes, at most %d", len(data), MaxFileSize)}
	}
	var m Mix
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&m); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: file, Msg: "empty: want a LoadMix document"}
		}
		return nil, yamlErrors(file, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &Error{File: file, Line: extra.Line, Msg: "a mix file holds one document; found another"}
	} else if !errors.Is(err, io.EOF) {
		return nil, yamlErrors(file, err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlErrors(file, err)
	}
	lines := map[string]int{}
	collectLines(&root, "", lines)
	if err := m.errorsIn(file, lines); err != nil {
		return nil, err
	}
	if m.Name == "" {
		m.Name = strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	}
	d := m.WithDefaults()
	return &d, nil
}

var (
	lineRE         = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	fieldNotFound  = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
	unmarshalRE    = regexp.MustCompile(`^cannot unmarshal (\S+) (.*) into (\S+)$`)
	yamlTypeNames  = map[string]string{"!!str": "a string", "!!int": "an integer", "!!float": "a number", "!!bool": "a boolean", "!!seq": "a list", "!!map": "a mapping", "!!null": "null"}
	goTypeMeanings = map[string]string{"float64": "a number", "int": "an integer", "uint64": "an unsigned integer", "bool": "true or false", "string": "a string", "time.Duration": "a duration such as 10s", "model.Kind": "a kind", "mix.OpType": "an operation", "[]mix.Operation": "a list of operations", "mix.Population": "a mapping", "mix.Operation": "a mapping", "mix.Mix": "a LoadMix mapping"}
)

// yamlErrors turns yaml.v3's messages ("line 5: field x not found in type mix.Operation") into
// errors at file:line that say what was wrong in the file's terms.
func yamlErrors(file string, err error) error {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	var errs []error
	for _, msg := range msgs {
		e := &Error{File: file, Msg: strings.TrimPrefix(msg, "yaml: ")}
		if m := lineRE.FindStringSubmatch(msg); m != nil {
			e.Line, _ = strconv.Atoi(m[1])
			e.Msg = m[2]
		}
		if m := fieldNotFound.FindStringSubmatch(e.Msg); m != nil {
			e.Msg = fmt.Sprintf("unknown field %q", m[1])
		} else if m := unmarshalRE.FindStringSubmatch(e.Msg); m != nil {
			got, want := yamlTypeNames[m[1]], goTypeMeanings[m[3]]
			if got == "" {
				got = m[1]
			}
			if want == "" {
				want = m[3]
			}
			e.Msg = fmt.Sprintf("%s %s is not %s", got, m[2], want)
		}
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// collectLines records the line of every mapping key and sequence item by YAML path.
func collectLines(n *yaml.Node, path string, lines map[string]int) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) > 0 {
			lines[""] = n.Content[0].Line
			collectLines(n.Content[0], path, lines)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			lines[p] = k.Line
			collectLines(v, p, lines)
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			lines[p] = item.Line
			collectLines(item, p, lines)
		}
	}
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
	f, err := os.Open(nameOrPath)
	if err != nil {
		return nil, fmt.Errorf("mix %s: %w", nameOrPath, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("mix %s: %w", nameOrPath, err)
	}
	return Parse(nameOrPath, data)
}
