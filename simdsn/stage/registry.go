package stage

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"

	"github.com/dsnscale/dsnscale/internal/strictyaml"
)

//go:embed defaults/*.yaml
var defaultFiles embed.FS

// DefaultSet is the name of the embedded well-behaved stage set.
const DefaultSet = "default"

// Registry holds stage sets and misbehaviours by name, and compiles behaviours from them. Names
// are unique across both kinds. It is safe for concurrent use.
type Registry struct {
	mu            sync.Mutex
	sets          map[string]*setSource
	misbehaviours map[string]*Misbehaviour
	sources       map[string][]byte // file name -> content, for shipping to other processes
	compiled      map[string]*Behaviour
}

type setSource struct {
	file string
	node *yaml.Node // the document's root mapping
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{sets: map[string]*setSource{}, misbehaviours: map[string]*Misbehaviour{},
		sources: map[string][]byte{}, compiled: map[string]*Behaviour{}}
}

// Default returns a new registry holding the embedded stage set and misbehaviours.
func Default() *Registry {
	r := NewRegistry()
	if err := r.AddFS(defaultFiles, "defaults"); err != nil {
		panic(fmt.Sprintf("stage: embedded defaults are invalid: %v", err))
	}
	return r
}

// AddFS adds every *.yaml file under dir of fsys, then checks the registry.
func (r *Registry) AddFS(fsys fs.FS, dir string) error {
	matches, err := fs.Glob(fsys, filepath.ToSlash(filepath.Join(dir, "*.yaml")))
	if err != nil {
		return err
	}
	sort.Strings(matches)
	for _, m := range matches {
		data, err := fs.ReadFile(fsys, m)
		if err != nil {
			return err
		}
		if err := r.AddFile(m, data); err != nil {
			return err
		}
	}
	return r.Check()
}

// AddDir adds every *.yaml file of a directory on disk, then checks the registry.
func (r *Registry) AddDir(dir string) error {
	return r.AddFS(os.DirFS(dir), ".")
}

// AddFile parses one StageSet or Misbehaviour file and registers it under its name. A stage set
// is compiled at once, so its errors surface here; a misbehaviour is checked against the sets by
// Check.
func (r *Registry) AddFile(file string, data []byte) error {
	dec := &strictyaml.Decoder{File: file, Sentinel: ErrInvalid}
	root, err := strictyaml.Parse(file, data)
	if err != nil {
		dec.Add(err)
		return dec.Err()
	}
	var head struct {
		Kind string `yaml:"kind"`
	}
	_ = root.Decode(&head) // only to pick the kind; the strict decode below reports problems
	switch head.Kind {
	case KindStageSet:
		var s Set
		dec.Decode(root, "", &s)
		if err := dec.Err(); err != nil {
			return err
		}
		b, err := compile(s.Name, &s, dec)
		if err != nil {
			return err
		}
		r.mu.Lock()
		err = r.claim(file, s.Name)
		if err == nil {
			r.sets[s.Name] = &setSource{file: file, node: root}
			r.compiled[s.Name] = b
		}
		r.mu.Unlock()
		if err != nil {
			return err
		}
	case KindMisbehaviour:
		var m Misbehaviour
		dec.Decode(root, "", &m)
		if err := dec.Err(); err != nil {
			return err
		}
		dec.CheckHeader(strictyaml.Header{APIVersion: m.APIVersion, Kind: m.Kind}, KindMisbehaviour)
		if m.Name == "" {
			dec.ErrorAt("name", "a misbehaviour needs a name")
		}
		for _, p := range sortedKeys(m.Params) {
			if m.Params[p] == "" {
				dec.ErrorAt(strictyaml.Key("params", p), "needs a dotted path into the overlay")
			}
		}
		if m.Overlay.Kind != 0 && m.Overlay.Kind != yaml.MappingNode {
			dec.ErrorAt("overlay", "want a mapping laid over the stage set")
		}
		if m.Overlay.Kind == 0 && m.Goto == "" && m.Recover == "" {
			dec.ErrorAt("", "a misbehaviour needs an overlay, a goto stage or a recover stage")
		}
		if err := dec.Err(); err != nil {
			return err
		}
		r.mu.Lock()
		err = r.claim(file, m.Name)
		if err == nil {
			r.misbehaviours[m.Name] = &m
		}
		r.mu.Unlock()
		if err != nil {
			return err
		}
	default:
		kind := strictyaml.Lookup(root, []string{"kind"})
		if kind == nil {
			kind = root
		}
		dec.Errorf(kind, "kind", "must be %q or %q, got %q", KindStageSet, KindMisbehaviour, head.Kind)
		return dec.Err()
	}
	r.mu.Lock()
	r.sources[file] = append([]byte(nil), data...)
	r.mu.Unlock()
	return nil
}

func (r *Registry) claim(file, name string) error {
	_, a := r.sets[name]
	_, b := r.misbehaviours[name]
	if a || b {
		return fmt.Errorf("%w: %s: name %q is already registered", ErrDuplicate, file, name)
	}
	return nil
}

// Check compiles every misbehaviour, with its default parameters, over every stage set, so a
// misbehaviour that names a missing stage or sets a field wrongly is found before anything runs.
func (r *Registry) Check() error {
	var errs errList
	for _, set := range r.SetNames() {
		for _, m := range r.MisbehaviourNames() {
			if _, err := r.Compile(set, []Overlay{{Name: m}}); err != nil {
				errs.add(fmt.Errorf("misbehaviour %q over stage set %q: %w", m, set, err))
			}
		}
	}
	return errs.err()
}

// SetNames lists the stage sets, sorted.
func (r *Registry) SetNames() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return sortedKeys(r.sets)
}

// MisbehaviourNames lists the misbehaviours, sorted.
func (r *Registry) MisbehaviourNames() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return sortedKeys(r.misbehaviours)
}

// HasSet reports whether a stage set of that name is registered.
func (r *Registry) HasSet(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.sets[name]
	return ok
}

// Misbehaviour returns the misbehaviour of that name.
func (r *Registry) Misbehaviour(name string) (*Misbehaviour, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, ok := r.misbehaviours[name]
	return m, ok
}

// Sources returns every registered file's content by file name (the embedded defaults
// included), so another process can rebuild the same registry with FromSources.
func (r *Registry) Sources() map[string][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string][]byte, len(r.sources))
	for k, v := range r.sources {
		out[k] = v
	}
	return out
}

// FromSources builds a registry from files as returned by Sources.
func FromSources(files map[string][]byte) (*Registry, error) {
	r := NewRegistry()
	for _, name := range sortedKeys(files) {
		if err := r.AddFile(name, files[name]); err != nil {
			return nil, err
		}
	}
	return r, r.Check()
}

// Overlay is an active misbehaviour with its parameters.
type Overlay struct {
	Name   string            `json:"name"`
	Params map[string]string `json:"params,omitempty"`
}

func (o Overlay) key() string {
	var b strings.Builder
	b.WriteString(o.Name)
	for _, k := range sortedKeys(o.Params) {
		fmt.Fprintf(&b, ",%s=%s", k, o.Params[k])
	}
	return b.String()
}

// Compile returns the behaviour of stage set base with overlays laid over it in order. Results
// are cached, so DSNs that behave alike share one Behaviour.
func (r *Registry) Compile(base string, overlays []Overlay) (*Behaviour, error) {
	key := base
	for _, o := range overlays {
		key += "+" + o.key()
	}
	r.mu.Lock()
	if b, ok := r.compiled[key]; ok {
		r.mu.Unlock()
		return b, nil
	}
	src, ok := r.sets[base]
	if !ok {
		r.mu.Unlock()
		return nil, fmt.Errorf("%w: stage set %q (have: %s)", ErrUnknown, base, joinNames(sortedKeys(r.sets)))
	}
	node := src.node
	file := src.file
	var ms []*Misbehaviour
	for _, o := range overlays {
		m, ok := r.misbehaviours[o.Name]
		if !ok {
			r.mu.Unlock()
			return nil, fmt.Errorf("%w: misbehaviour %q (have: %s)", ErrUnknown, o.Name, joinNames(sortedKeys(r.misbehaviours)))
		}
		ms = append(ms, m)
	}
	r.mu.Unlock()

	for i, o := range overlays {
		m := ms[i]
		over := strictyaml.Clone(&m.Overlay)
		if m.Overlay.Kind == 0 {
			over = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		}
		for _, pname := range sortedKeys(o.Params) {
			path, ok := m.Params[pname]
			if !ok {
				return nil, fmt.Errorf("%w: misbehaviour %s: unknown parameter %q (have: %s)", ErrInvalid, m.Name, pname, joinNames(sortedKeys(m.Params)))
			}
			var v yaml.Node
			if err := yaml.Unmarshal([]byte(o.Params[pname]), &v); err != nil || len(v.Content) == 0 {
				return nil, fmt.Errorf("%w: misbehaviour %s: parameter %s: cannot read value %q", ErrInvalid, m.Name, pname, o.Params[pname])
			}
			if !strictyaml.Set(over, strings.Split(path, "."), v.Content[0]) {
				return nil, fmt.Errorf("%w: misbehaviour %s: parameter %s: path %q does not lead into a mapping", ErrInvalid, m.Name, pname, path)
			}
		}
		node = strictyaml.Merge(node, over)
		file += " with " + m.Name
	}
	var s Set
	dec := &strictyaml.Decoder{File: file, Sentinel: ErrInvalid}
	dec.Decode(node, "", &s)
	if err := dec.Err(); err != nil {
		return nil, err
	}
	b, err := compile(key, &s, dec)
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		for _, st := range []struct{ field, name string }{{"goto", m.Goto}, {"recover", m.Recover}} {
			if _, ok := b.Index(st.name); st.name != "" && !ok {
				return nil, fmt.Errorf("%w: misbehaviour %s: %s: unknown stage %q in stage set %s", ErrInvalid, m.Name, st.field, st.name, base)
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if prev, ok := r.compiled[key]; ok {
		return prev, nil
	}
	r.compiled[key] = b
	return b, nil
}
