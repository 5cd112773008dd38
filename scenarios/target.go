package scenarios

import (
	"fmt"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/dsnscale/dsnscale/faults"
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
	var errs []string
	for _, st := range s.Steps {
		for j, fs := range st.Faults {
			k, ok := faults.Default.Lookup(fs.Kind)
			if !ok {
				continue
			}
			at := fmt.Sprintf("steps[%s].faults[%d]", st.Name, j)
			switch {
			case k.Scope() == faults.ScopeControlPlane:
				if why := lacksHooks(k, s.ControlPlane.Target); why != "" {
					errs = append(errs, at+": "+why)
				}
			case k.Scope() == faults.ScopeBackend || faults.IsBackendPath(faults.SpecPath(fs.Spec())):
				errs = append(errs, fmt.Sprintf("%s: %s acts on the control plane's backends, which the harness does not run or proxy against a target", at, fs.Kind))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: against target %s:\n  %s", ErrInvalid, f.Name, strings.Join(errs, "\n  "))
	}
	return nil
}

// lacksHooks says why a control-plane fault of kind k cannot act on an external control plane
// with target t (nil for none), or "": only through the hooks the target declares.
func lacksHooks(k faults.Kind, t *TargetRef) string {
	var h target.Hooks
	if t != nil {
		h = t.Target.Hooks
	}
	if po, ok := k.(faults.ProcessOnly); ok && po.NeedsProcess() {
		if h.Pause == nil {
			return fmt.Sprintf("%s on a control plane the harness does not run needs the target's pause and resume hooks (or controlPlane.mode %s)", k.Name(), CPProcess)
		}
		return ""
	}
	if h.Kill == nil {
		return fmt.Sprintf("%s on a control plane the harness does not run needs the target's kill and start hooks (or controlPlane.mode %s or %s)", k.Name(), CPInProcess, CPProcess)
	}
	return ""
}

func describeTarget(r *TargetRef) string {
	name := "inline target"
	if r.File != "" {
		name = fmt.Sprintf("target %s (%s)", r.Name, r.File)
	}
	return fmt.Sprintf("external, %s: %s", name, r.Target.Describe())
}
