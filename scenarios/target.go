package scenarios

import (
	"fmt"
	"path/filepath"

	"gopkg.in/yaml.v3"

	"github.com/dsnscale/dsnscale/internal/strictyaml"
	"github.com/dsnscale/dsnscale/target"
)

// TargetRef is an external control plane's description: a target file (kind: Target) named
// by path relative to the scenario, or the same fields inline.
type TargetRef struct {
	// File is the target file as written ("" when inline).
	File string
	// Target is the description, its file paths absolute once the scenario is validated.
	Target target.Target
	// Name is the target file's name ("" when inline).
	Name string
}

// UnmarshalYAMLNode decodes a file path or an inline target.
func (r *TargetRef) UnmarshalYAMLNode(d *strictyaml.Decoder, n *yaml.Node, path string) {
	if n.Kind == yaml.ScalarNode {
		d.Decode(n, path, &r.File)
		return
	}
	d.Decode(n, path, &r.Target)
}

// resolve loads a target file, or checks an inline target, and makes its paths absolute:
// relative to the scenario's directory (the working directory for a library scenario).
func (r *TargetRef) resolve(d *strictyaml.Decoder, path, dir string) {
	if r.File != "" {
		p := r.File
		if !filepath.IsAbs(p) && dir != "" {
			p = filepath.Join(dir, p)
		}
		f, err := target.Load(p)
		if err != nil {
			d.ErrorAt(path, "%v", err)
			return
		}
		r.Target, r.Name = f.Target, f.Name
		return
	}
	r.Target.Validate(d, path)
	abs, err := filepath.Abs(dir)
	if err != nil {
		d.ErrorAt(path, "%v", err)
		return
	}
	r.Target.Resolve(abs)
}

// UseTarget points s at the external control plane of the target file at path (dsnscale run
// --target): it replaces the scenario's control plane.
func UseTarget(s *Scenario, path string) error {
	f, err := target.Load(path)
	if err != nil {
		return err
	}
	s.ControlPlane = ControlPlaneSpec{Mode: CPExternal, Target: &TargetRef{File: path, Target: f.Target, Name: f.Name}}
	return nil
}

func describeTarget(r *TargetRef) string {
	name := "inline target"
	if r.File != "" {
		name = fmt.Sprintf("target %s (%s)", r.Name, r.File)
	}
	return fmt.Sprintf("external, %s: %s", name, r.Target.Describe())
}
