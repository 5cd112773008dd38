package faults

import (
	"fmt"
	"io"
	"strings"
)

// scopeText says in a listing what each scope acts on and where it applies.
var scopeText = map[Scope]string{
	ScopeDSNs:         "DSNs of the simulated fleet (target: labels, dsns, fraction, count)",
	ScopeControlPlane: "the control plane the harness runs (controlPlane.mode inprocess or process); no target",
	ScopeNetwork:      "links the harness proxies (target for the fleet path: labels site/rack/unit, units, fraction, count)",
	ScopeUnits:        "fleet units (target: labels site/rack/unit, units, fraction, count)",
	ScopeBackend:      "a backend process the harness started (controlPlane.backendProcesses); no target",
}

// WriteKinds lists the registry's kinds with what they act on and their parameters.
func (r *Registry) WriteKinds(w io.Writer) error {
	var b strings.Builder
	for _, k := range r.Kinds() {
		fmt.Fprintf(&b, "%s\n  %s\n  acts on: %s\n", k.Name(), k.Description(), scopeText[k.Scope()])
		if po, ok := k.(ProcessOnly); ok && po.NeedsProcess() {
			b.WriteString("  needs: controlPlane.mode process\n")
		}
		if _, ok := k.(NodeKind); ok {
			b.WriteString("  needs: controlPlane.replicas 3 or more\n")
		}
		if d, ok := k.(DriverOnly); ok {
			fmt.Fprintf(&b, "  needs: fleet.driver %s\n", strings.Join(d.Drivers(), " or "))
		}
		ps := k.Params()
		if len(ps) == 0 {
			b.WriteString("  params: none\n")
		}
		for _, p := range ps {
			def := ""
			if p.Default != "" {
				def = ", default " + p.Default
			}
			fmt.Fprintf(&b, "  %-16s %s%s: %s\n", p.Name, p.Type, def, p.Description)
		}
		b.WriteString("\n")
	}
	b.WriteString("Every fault also takes delay, duration, every, probability and optional (see scenarios/FORMAT.md).\n")
	_, err := io.WriteString(w, b.String())
	return err
}
