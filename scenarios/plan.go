package scenarios

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dsnscale/dsnscale/faults"
	"github.com/dsnscale/dsnscale/scenarios/measure"
)

// LoadSetupSettle bounds how long a step's load setup waits for the fleet to apply the
// objects it created; the step then starts anyway, with a note in the report.
const LoadSetupSettle = 2 * time.Minute

// SetupStepName names the record of a step's load setup, which runs before the step: the
// step's name and ":setup" (a name no step of a scenario can have).
func SetupStepName(step string) string { return step + ":setup" }

// Duration is how long s runs by its steps: least is the sum of the fixed durations (a wait
// whose condition holds at once takes no time), most adds every wait's timeout and every load
// setup's bound.
func Duration(s *Scenario) (least, most time.Duration) {
	for i := range s.Steps {
		st := &s.Steps[i]
		l := st.Length()
		most += l
		if st.Until == nil {
			least += l
		}
		if st.Load != nil {
			most += LoadSetupSettle
		}
	}
	return least, most
}

// WritePlan describes what running s would do: the fleet, the control plane, each step with
// its actions, load plan, faults and measurements, and the SLOs. It has no side effects.
func WritePlan(w io.Writer, s *Scenario) error {
	var b strings.Builder
	fmt.Fprintf(&b, "scenario %s (%s)\n", s.Metadata.Name, s.Source)
	fmt.Fprintf(&b, "  %s\n", strings.TrimSpace(s.Metadata.Description))
	if len(s.Params) > 0 {
		b.WriteString("\nparameters:\n")
		for _, p := range s.Params {
			v := s.Values[p.Name]
			note := ""
			if v != p.Default {
				note = fmt.Sprintf(" (default %s)", p.Default)
			}
			fmt.Fprintf(&b, "  %-14s = %s%s", p.Name, v, note)
			if p.Description != "" {
				fmt.Fprintf(&b, "  # %s", p.Description)
			}
			b.WriteString("\n")
		}
	}
	traffic := s.Fleet.Traffic
	if traffic == "" {
		traffic = "the simulator's default"
	}
	fmt.Fprintf(&b, "\nfleet: %d DSNs, driver %s, traffic map %s", s.Fleet.Size, s.Fleet.Driver, traffic)
	b.WriteString("\n")
	fmt.Fprintf(&b, "control plane: %s\n", describeCP(s.ControlPlane))
	fmt.Fprintf(&b, "seed: %d\n", s.Seed)

	b.WriteString("\nsteps:\n")
	total, upTo := Duration(s)
	for i := range s.Steps {
		st := &s.Steps[i]
		if st.Load != nil {
			mix := st.LoadConfig().Mix
			fmt.Fprintf(&b, "  -  %s: load setup before step %s: creates the objects of mix %s, then waits until the fleet has applied them (at most %s)\n",
				SetupStepName(st.Name), st.Name, mix, LoadSetupSettle)
		}
		fmt.Fprintf(&b, "  %d. %s: ", i+1, st.Name)
		if st.Until != nil {
			fmt.Fprintf(&b, "until %s (%s), timeout %s\n", st.Until, conditions[st.Until.Condition].Description, st.Timeout)
		} else {
			fmt.Fprintf(&b, "for %s\n", st.Duration)
		}
		if st.Description != "" {
			fmt.Fprintf(&b, "     %s\n", strings.TrimSpace(st.Description))
		}
		for _, a := range st.Actions {
			fmt.Fprintf(&b, "     action %s%s\n", a.Kind, formatParams(a.Params))
		}
		if st.Load != nil {
			plan, err := st.LoadConfig().Plan()
			if err != nil {
				return fmt.Errorf("scenarios: plan step %s: %w", st.Name, err)
			}
			b.WriteString("     load: ")
			b.WriteString(indent(plan.String(), "       "))
			if st.Until != nil {
				b.WriteString("       (stopped when the condition holds)\n")
			}
		}
		for _, f := range st.Faults {
			k, _ := faults.Default.Lookup(f.Kind)
			on := "the control plane"
			switch k.Scope() {
			case faults.ScopeDSNs:
				on = f.Spec().Target.String()
			case faults.ScopeNetwork:
				on = "the links of " + strings.Replace(f.Spec().Target.String(), "DSNs", "units", 1)
				if f.Params["path"] == faults.PathAPI {
					on = "the load generator's link to the API"
				}
			}
			if f.Optional {
				on += " (optional)"
			}
			until := "recovered when the step ends"
			if f.Duration > 0 {
				until = fmt.Sprintf("recovered after %s", f.Duration)
			}
			if f.Every > 0 {
				until += fmt.Sprintf(", again every %s for the step", f.Every)
			}
			if f.Probability > 0 && k.Scope() == faults.ScopeControlPlane {
				until += fmt.Sprintf(", fires with probability %s", formatShare(float64(f.Probability)))
			}
			fmt.Fprintf(&b, "     fault at +%s: %s on %s%s, %s\n", f.Delay, f.Kind, on, formatParams(withDefaults(k.Params(), f.Params)), until)
		}
		if len(st.Measurements) > 0 {
			fmt.Fprintf(&b, "     measurements: %s\n", strings.Join(st.Measurements, ", "))
		}
	}
	if total == upTo {
		fmt.Fprintf(&b, "  total: %s\n", total)
	} else {
		fmt.Fprintf(&b, "  total: %s to %s (waits end when their condition holds)\n", total, upTo)
	}
	if len(s.Measurements) > 0 {
		fmt.Fprintf(&b, "\nrun-wide measurements: %s\n", strings.Join(s.Measurements, ", "))
	}
	if len(s.SLOs) > 0 {
		b.WriteString("\nSLOs:\n")
		for _, slo := range s.SLOs {
			m, fig, _ := measure.Default.Producer(slo.Value)
			scope := "whole run"
			if slo.Step != "" {
				scope = "step " + slo.Step
			}
			missing := ""
			if slo.MissingPasses() {
				missing = "; passes when the value is missing"
			}
			fmt.Fprintf(&b, "  %s  (%s, %s: %s%s)\n", slo.String(), scope, m.Name(), fig.Description, missing)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func describeCP(c ControlPlaneSpec) string {
	switch c.Mode {
	case CPProcess:
		bin := c.Binary
		if bin == "" {
			bin = "this dsnscale binary"
		}
		if c.Replicas > 1 {
			return fmt.Sprintf("reference control plane as %d replicas of one cluster, each a child process (%s cp serve --cluster) with its own data in the run directory, behind a load balancer in the harness; DSNs get every replica's bus", c.Replicas, bin)
		}
		return fmt.Sprintf("reference control plane in a child process (%s cp serve), embedded NATS, data in the run directory", bin)
	case CPExternal:
		if c.Target != nil {
			return describeTarget(c.Target)
		}
		auth := "no credentials"
		switch {
		case c.Token != "":
			auth = "a bearer token"
		case c.TokenFile != "":
			auth = "a bearer token from " + c.TokenFile
		}
		return fmt.Sprintf("external at %s (DSNs connect to %s), %s", c.URL, c.NATSURL, auth)
	}
	return "reference control plane in the harness process, embedded NATS, data in the run directory"
}

func withDefaults(decl []faults.Param, got map[string]string) map[string]string {
	out := map[string]string{}
	for _, p := range decl {
		if p.Default != "" {
			out[p.Name] = p.Default
		}
	}
	for k, v := range got {
		out[k] = v
	}
	return out
}

func formatParams(m map[string]string) string {
	if len(m) == 0 {
		return ""
	}
	parts := make([]string, 0, len(m))
	for _, k := range sortedKeys(m) {
		parts = append(parts, k+"="+m[k])
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := 1; i < len(lines); i++ {
		lines[i] = prefix + lines[i]
	}
	return strings.Join(lines, "\n") + "\n"
}
