package scenarios

import (
	"errors"
	"fmt"
	"github.com/dsnscale/dsnscale/controlplane/ingest"
	"maps"
	"math"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dsnscale/dsnscale/faults"
	"github.com/dsnscale/dsnscale/internal/registry"
	"github.com/dsnscale/dsnscale/internal/strictyaml"
	"github.com/dsnscale/dsnscale/loadgen"
	"github.com/dsnscale/dsnscale/scenarios/action"
	"github.com/dsnscale/dsnscale/scenarios/measure"
)

// Limits on a scenario; beyond them a file is a typo, not a test.
const (
	MaxFleetSize = 100_000
	MaxSteps     = 100
	MaxStepTime  = 24 * time.Hour
)

var stepName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// validate checks what decoding cannot: required fields, names against the registries, and how
// the parts fit together. Problems go to d, placed at their field.
func validate(s *Scenario, d *strictyaml.Decoder) {
	d.CheckHeader(strictyaml.Header{APIVersion: s.APIVersion, Kind: s.Kind}, Kind)
	if !stepName.MatchString(s.Metadata.Name) {
		d.ErrorAt("metadata.name", "must be 1-63 of a-z, 0-9 and -, starting with a letter or digit, got %q", s.Metadata.Name)
	}
	if strings.TrimSpace(s.Metadata.Description) == "" {
		d.ErrorAt("metadata.description", "is required: one line saying what the scenario does")
	}
	validateFleet(s, d)
	validateCP(s, d)
	steps := validateSteps(s, d)
	checkMeasurements(d, "measurements", s.Measurements)
	validateSLOs(s, d, steps)
}

func validateFleet(s *Scenario, d *strictyaml.Decoder) {
	f := &s.Fleet
	if f.Size < 1 || f.Size > MaxFleetSize {
		d.ErrorAt("fleet.size", "must be 1-%d, got %d", MaxFleetSize, f.Size)
	}
	if f.Driver == "" {
		f.Driver = DefaultDriver
	}
	drivers := FleetDrivers()
	if !contains(drivers, f.Driver) {
		d.ErrorAt("fleet.driver", "unknown driver %q%s", f.Driver, registry.Suggest(f.Driver, drivers))
	}
	if f.AdmissionDeadline < 0 {
		d.ErrorAt("fleet.admissionDeadline", "must not be negative, got %s", f.AdmissionDeadline)
	}
	for _, a := range []struct{ field, v string }{{"fleet.harness.listen", f.Harness.Listen}, {"fleet.harness.advertise", f.Harness.Advertise}} {
		if a.v == "" {
			continue
		}
		if _, port, err := net.SplitHostPort(a.v); err != nil || port == "" {
			d.ErrorAt(a.field, "want host:port, got %q", a.v)
		}
	}
	if (f.Harness != HarnessSpec{}) && f.Driver == DefaultDriver {
		d.ErrorAt("fleet.harness", "the %s driver runs its DSNs inside the harness: it has no units to reach it", f.Driver)
	}
	if f.Traffic != "" {
		if err := CheckTraffic(f.Traffic, s.Dir); err != nil {
			d.ErrorAt("fleet.traffic", "%v", err)
		}
	}
}

func validateCP(s *Scenario, d *strictyaml.Decoder) {
	c := &s.ControlPlane
	if c.Mode == "" {
		c.Mode = CPInProcess
	}
	switch {
	case c.Replicas < 0 || c.Replicas == 2 || (c.Replicas > 1 && c.Replicas%2 == 0) || c.Replicas > 9:
		d.ErrorAt("controlPlane.replicas", "must be 1 or an odd number from 3 to 9 (a majority must survive a loss), got %d", c.Replicas)
	case c.Replicas > 1 && c.Mode != CPProcess:
		d.ErrorAt("controlPlane.replicas", "%d replicas need controlPlane.mode %s (the harness runs each as a process), not %s", c.Replicas, CPProcess, c.Mode)
	case c.Replicas > 1 && s.Fleet.Driver != "inproc":
		d.ErrorAt("controlPlane.replicas", "%d replicas need fleet.driver inproc (the %s driver reaches the bus through one proxy per unit), got %s", c.Replicas, s.Fleet.Driver, s.Fleet.Driver)
	}
	switch c.Mode {
	case CPInProcess, CPProcess:
		for _, f := range []struct{ name, v string }{{"url", c.URL}, {"natsURL", c.NATSURL}, {"token", c.Token}, {"tokenFile", c.TokenFile}} {
			if f.v != "" {
				d.ErrorAt("controlPlane."+f.name, "is only for mode %s", CPExternal)
			}
		}
		if c.Target != nil {
			d.ErrorAt("controlPlane.target", "is only for mode %s", CPExternal)
		}
		if c.Binary != "" && c.Mode != CPProcess {
			d.ErrorAt("controlPlane.binary", "is only for mode %s", CPProcess)
		}
		if c.HeartbeatInterval < 0 {
			d.ErrorAt("controlPlane.heartbeatInterval", "must not be negative, got %s", c.HeartbeatInterval)
		}
		for _, f := range []struct{ name, v string }{{"tsdb", c.TSDB}, {"search", c.Search}, {"inventory", c.Inventory}} {
			if err := backendURL(f.name, f.v); err != nil {
				d.ErrorAt("controlPlane."+f.name, "%v", err)
			}
		}
		for _, name := range slices.Sorted(maps.Keys(c.BackendProcesses)) {
			bp, p := c.BackendProcesses[name], "controlPlane.backendProcesses."+name
			switch {
			case !faults.IsBackendPath(name):
				d.ErrorAt(p, "unknown backend %q (known: tsdb, search, inventory)", name)
				continue
			case len(bp.Command) == 0 || strings.TrimSpace(bp.Command[0]) == "":
				d.ErrorAt(p+".command", "required: the program and its arguments")
			case c.backendURLField(name) != "":
				d.ErrorAt(p, "controlPlane.%s is set too: the URL comes from the process's url", name)
			}
			if u, err := url.Parse(bp.URL); err != nil || u.Port() == "" {
				d.ErrorAt(p+".url", "want scheme://host:port of the backend once it listens, got %q", bp.URL)
			} else if err := backendURL(name, bp.URL); err != nil {
				d.ErrorAt(p+".url", "%v", err)
			}
		}
	case CPExternal:
		if c.Target != nil {
			for _, f := range []struct{ name, v string }{{"url", c.URL}, {"natsURL", c.NATSURL}, {"token", c.Token}, {"tokenFile", c.TokenFile}} {
				if f.v != "" {
					d.ErrorAt("controlPlane."+f.name, "cannot be set with controlPlane.target: the target says it")
				}
			}
			c.Target.resolve(d, "controlPlane.target", s.Dir)
		} else {
			if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				d.ErrorAt("controlPlane.url", "must be an http:// or https:// URL of the northbound API, got %q (or give a target)", c.URL)
			}
			if u, err := url.Parse(c.NATSURL); err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Host == "" {
				d.ErrorAt("controlPlane.natsURL", "must be a nats:// or tls:// URL where DSNs connect, got %q", c.NATSURL)
			}
			if c.Token != "" && c.TokenFile != "" {
				d.ErrorAt("controlPlane.tokenFile", "token and tokenFile are exclusive")
			}
		}
		if c.Binary != "" {
			d.ErrorAt("controlPlane.binary", "is only for mode %s", CPProcess)
		}
		if c.HeartbeatInterval != 0 {
			d.ErrorAt("controlPlane.heartbeatInterval", "cannot be set on an external control plane")
		}
		for _, f := range []struct{ name, v string }{{"tsdb", c.TSDB}, {"search", c.Search}, {"inventory", c.Inventory}} {
			if f.v != "" {
				d.ErrorAt("controlPlane."+f.name, "cannot be set on an external control plane: it has its own backends")
			}
		}
		if len(c.BackendProcesses) > 0 {
			d.ErrorAt("controlPlane.backendProcesses", "cannot be set on an external control plane: it has its own backends")
		}
	default:
		d.ErrorAt("controlPlane.mode", "must be %s, %s or %s, got %q", CPInProcess, CPProcess, CPExternal, c.Mode)
	}
}

// Length is how long the step may last: its duration, or its timeout when it waits.
func (st *Step) Length() time.Duration {
	if st.Until != nil {
		return st.Timeout
	}
	return st.Duration
}

func validateSteps(s *Scenario, d *strictyaml.Decoder) map[string]*Step {
	names := map[string]*Step{}
	if len(s.Steps) == 0 {
		d.ErrorAt("steps", "at least one step is required")
	}
	if len(s.Steps) > MaxSteps {
		d.ErrorAt("steps", "%d steps, at most %d", len(s.Steps), MaxSteps)
	}
	for i := range s.Steps {
		st := &s.Steps[i]
		p := strictyaml.Index("steps", i)
		switch {
		case !stepName.MatchString(st.Name):
			d.ErrorAt(p+".name", "must be 1-63 of a-z, 0-9 and -, got %q", st.Name)
		case names[st.Name] != nil:
			d.ErrorAt(p+".name", "step %q is already defined", st.Name)
		default:
			names[st.Name] = st
		}
		validateTiming(st, p, d)
		for j, a := range st.Actions {
			ap := strictyaml.Index(p+".actions", j)
			act, ok := action.Lookup(a.Kind)
			if !ok {
				d.ErrorAt(ap+".kind", "unknown action %q%s", a.Kind, registry.Suggest(a.Kind, action.Names()))
				continue
			}
			reportSpecErr(d, ap, faults.CheckParams(act.Params(), a.Params))
		}
		if st.Load != nil {
			validateLoad(s, st, p+".load", d)
		}
		for j := range st.Faults {
			validateFault(s, st, strictyaml.Index(p+".faults", j), &st.Faults[j], d)
			checkOverlap(st, p, j, d)
		}
		checkMeasurements(d, p+".measurements", st.Measurements)
	}
	return names
}

func validateTiming(st *Step, p string, d *strictyaml.Decoder) {
	switch {
	case st.Until == nil && st.Duration == 0:
		d.ErrorAt(p, "needs a duration or an until condition")
	case st.Until != nil && st.Duration != 0:
		d.ErrorAt(p+".duration", "duration and until are exclusive (until takes a timeout)")
	case st.Duration < 0 || st.Duration > MaxStepTime:
		d.ErrorAt(p+".duration", "must be in 0-%s, got %s", MaxStepTime, st.Duration)
	}
	if st.Until != nil {
		c, ok := conditions[st.Until.Condition]
		switch {
		case !ok:
			d.ErrorAt(p+".until", "unknown condition %q%s", st.Until.Condition, registry.Suggest(st.Until.Condition, ConditionNames()))
		case c.TakesShare && st.Until.Bare:
			d.ErrorAt(p+".until", "%s takes a share of the fleet: write {%s: 99%%}", c.Name, c.Name)
		case !c.TakesShare && !st.Until.Bare:
			d.ErrorAt(p+".until", "%s takes no share: write until: %s", c.Name, c.Name)
		case c.TakesShare && st.Until.Share <= 0:
			d.ErrorAt(p+".until."+c.Name, "must be above 0%%")
		}
		if st.Timeout <= 0 || st.Timeout > MaxStepTime {
			d.ErrorAt(p+".timeout", "until needs a timeout in (0, %s], got %s", MaxStepTime, st.Timeout)
		}
	} else if st.Timeout != 0 {
		d.ErrorAt(p+".timeout", "only a step with until takes a timeout")
	}
}

// LoadConfig is the step's load config with its duration filled from the step: a constant
// executor without a duration runs as long as the step may.
func (st *Step) LoadConfig() loadgen.ExecutorConfig {
	c := *st.Load
	typ := c.Type
	if typ == "" {
		typ = loadgen.ConstantArrivalRate
	}
	if c.Duration == 0 && len(c.Stages) == 0 && (typ == loadgen.ConstantArrivalRate || typ == loadgen.ConstantVUs) {
		c.Duration = st.Length()
	}
	return c
}

func validateLoad(s *Scenario, st *Step, p string, d *strictyaml.Decoder) {
	c := st.LoadConfig()
	err := c.Validate()
	if err == nil {
		if _, mixErr := LoadMix(c.Mix, s.Dir); mixErr != nil {
			d.ErrorAt(p+".mix", "%v", mixErr)
		}
		return
	}
	for _, e := range flatten(err) {
		var fe *loadgen.FieldError
		switch {
		case errors.As(e, &fe):
			d.ErrorAt(joinField(p, fe.Field), "%s", fe.Message)
		case errors.Is(e, loadgen.ErrUnknownExecutor):
			d.ErrorAt(p+".type", "unknown executor type %q (known: %s)", c.Type, joinNames(loadgen.Types()))
		default:
			d.ErrorAt(p, "%v", e)
		}
	}
}

func joinField(p, f string) string {
	if strings.HasPrefix(f, "[") {
		return p + f
	}
	return strictyaml.Field(p, f)
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

func reportSpecErr(d *strictyaml.Decoder, p string, err error) {
	if err == nil {
		return
	}
	var se *faults.SpecError
	if errors.As(err, &se) {
		d.ErrorAt(joinField(p, se.Field), "%v", se.Err)
		return
	}
	d.ErrorAt(p, "%v", err)
}

// NetworkPaths says which paths the scenario's network faults act on (faults.PathFleet,
// faults.PathAPI), so that the harness proxies those links and no others.
func (s *Scenario) NetworkPaths() map[string]bool {
	out := map[string]bool{}
	for _, st := range s.Steps {
		for _, f := range st.Faults {
			k, ok := faults.Default.Lookup(f.Kind)
			if !ok || k.Scope() != faults.ScopeNetwork {
				continue
			}
			out[faults.SpecPath(f.Spec())] = true
		}
	}
	return out
}

// FaultSpec converts a scenario's fault entry into a faults.Spec.
func (f *FaultSpec) Spec() faults.Spec {
	return faults.Spec{
		Kind: f.Kind,
		Target: faults.Target{
			Labels: f.Target.Labels, DSNs: f.Target.DSNs, Units: f.Target.Units, Fraction: float64(f.Target.Fraction), Count: f.Target.Count,
			Probability: float64(f.Probability),
		},
		Params: f.Params,
	}
}

// checkOverlap reports fault j of a step when it is in effect at the same time as an earlier
// fault of the step that it cannot coexist with.
func checkOverlap(st *Step, p string, j int, d *strictyaml.Decoder) {
	window := func(f *FaultSpec) (time.Duration, time.Duration) {
		if f.Duration == 0 {
			return f.Delay, time.Duration(math.MaxInt64)
		}
		return f.Delay, f.Delay + f.Duration
	}
	b := &st.Faults[j]
	bs, be := window(b)
	for i := range j {
		a := &st.Faults[i]
		as, ae := window(a)
		if as >= be || bs >= ae {
			continue
		}
		if why := faults.Default.Conflict(a.Spec(), b.Spec()); why != "" {
			d.ErrorAt(strictyaml.Index(p+".faults", j), "overlaps faults[%d] (%s): %s", i, a.Kind, why)
		}
	}
}

func validateFault(s *Scenario, st *Step, p string, f *FaultSpec, d *strictyaml.Decoder) {
	if d.Has(p+".target.fraction") && f.Target.Fraction == 0 {
		d.ErrorAt(p+".target.fraction", "must be above 0%%")
	}
	spec := f.Spec()
	if err := faults.Default.Validate(spec); err != nil {
		reportSpecErr(d, p, err)
		return
	}
	k, _ := faults.Default.Lookup(f.Kind)
	if k.Scope() == faults.ScopeControlPlane && s.ControlPlane.Mode == CPExternal {
		if why := lacksHooks(k, s.ControlPlane.Target); why != "" {
			d.ErrorAt(p+".kind", "%s", why)
		}
	}
	if do, ok := k.(faults.DriverOnly); ok && !contains(do.Drivers(), s.Fleet.Driver) {
		d.ErrorAt(p+".kind", "%s needs fleet.driver %s (the fleet runs on %s)", f.Kind, strings.Join(do.Drivers(), " or "), s.Fleet.Driver)
	}
	if _, ok := k.(faults.NodeKind); ok {
		validateNodeFault(s, p, f, d)
	}
	if k.Scope() == faults.ScopeBackend {
		b := f.Params["backend"]
		if b == "" {
			b = faults.PathTSDB
		}
		if _, ok := s.ControlPlane.BackendProcesses[b]; !ok && faults.IsBackendPath(b) {
			d.ErrorAt(p+".params.backend", "the harness runs no %s process: set controlPlane.backendProcesses.%s", b, b)
		}
	}
	if po, ok := k.(faults.ProcessOnly); ok && po.NeedsProcess() && s.ControlPlane.Mode != CPProcess && s.ControlPlane.Mode != CPExternal {
		d.ErrorAt(p+".kind", "%s needs the control plane in a process of its own (controlPlane.mode %s)", f.Kind, CPProcess)
	}
	if k.Scope() == faults.ScopeNetwork {
		path := faults.SpecPath(f.Spec())
		field := p + ".params.path"
		if f.Kind == "backend-unreachable" {
			field = p + ".params.backend"
		}
		switch {
		case path == faults.PathFleet && s.ControlPlane.Replicas > 1:
			d.ErrorAt(field, "the fleet's links to a control plane of %d replicas are not proxied (a link is one proxy to one bus server); use cp-node-* faults", s.ControlPlane.Replicas)
		case path == faults.PathAPI && !s.hasLoad():
			d.ErrorAt(field, "no step drives load: nothing goes through the api path")
		case faults.IsBackendPath(path) && s.ControlPlane.Mode == CPExternal:
			d.ErrorAt(field, "the harness cannot put a proxy before the backends of an external control plane")
		case faults.IsBackendPath(path) && s.ControlPlane.backendURL(path) == "":
			d.ErrorAt(field, "the control plane's %s is embedded in its data directory: set controlPlane.%s to a backend URL for the harness to put a proxy before it", path, path)
		}
	}
	if k.Scope() == faults.ScopeDSNs && f.Target.Count > s.Fleet.Size && len(f.Target.Labels) == 0 {
		d.ErrorAt(p+".target.count", "%d is more than the fleet's %d DSNs", f.Target.Count, s.Fleet.Size)
	}
	length := st.Length()
	switch {
	case f.Delay < 0:
		d.ErrorAt(p+".delay", "must not be negative, got %s", f.Delay)
	case length > 0 && f.Delay >= length:
		d.ErrorAt(p+".delay", "%s is not within the step (%s)", f.Delay, length)
	case f.Duration < 0:
		d.ErrorAt(p+".duration", "must not be negative, got %s", f.Duration)
	case length > 0 && f.Delay+f.Duration > length:
		d.ErrorAt(p+".duration", "the fault would outlast its step: delay %s + duration %s > %s", f.Delay, f.Duration, length)
	case f.Every < 0:
		d.ErrorAt(p+".every", "must not be negative, got %s", f.Every)
	case f.Every > 0 && (f.Duration == 0 || f.Duration >= f.Every):
		d.ErrorAt(p+".every", "a repeated fault needs a duration shorter than every (%s), got %s", f.Every, f.Duration)
	}
	if d.Has(p+".probability") && f.Probability == 0 {
		d.ErrorAt(p+".probability", "must be above 0%%")
	}
}

func checkMeasurements(d *strictyaml.Decoder, p string, names []string) {
	seen := map[string]bool{}
	for i, n := range names {
		ip := strictyaml.Index(p, i)
		if _, ok := measure.Default.Lookup(n); !ok {
			d.ErrorAt(ip, "unknown measurement %q%s", n, measure.Default.Hint(n))
			continue
		}
		if seen[n] {
			d.ErrorAt(ip, "measurement %q is listed twice", n)
		}
		seen[n] = true
	}
}

var validOps = map[string]bool{"<": true, "<=": true, ">": true, ">=": true, "==": true, "!=": true}

func validateSLOs(s *Scenario, d *strictyaml.Decoder, steps map[string]*Step) {
	names := map[string]bool{}
	for i := range s.SLOs {
		slo := &s.SLOs[i]
		p := strictyaml.Index("slos", i)
		if slo.Name == "" {
			slo.Name = slo.String()
		}
		if names[slo.Name] {
			d.ErrorAt(p+".name", "SLO %q is already defined", slo.Name)
		}
		names[slo.Name] = true
		if !validOps[slo.Op] {
			d.ErrorAt(p+".op", "must be one of < <= > >= == !=, got %q", slo.Op)
		}
		if slo.Missing != "" && slo.Missing != MissingFail && slo.Missing != MissingPass {
			d.ErrorAt(p+".missing", "must be %q or %q, got %q", MissingFail, MissingPass, slo.Missing)
		}
		taken := s.Measurements
		where := "the scenario's run-wide measurements"
		if slo.Step != "" {
			st, ok := steps[slo.Step]
			if !ok {
				d.ErrorAt(p+".step", "no step is called %q", slo.Step)
				continue
			}
			taken = st.Measurements
			where = fmt.Sprintf("the measurements of step %q", slo.Step)
		}
		m, fig, ok := measure.Default.Producer(slo.Value)
		if !ok {
			d.ErrorAt(p+".value", "no measurement produces %q%s", slo.Value, suggest(slo.Value))
			continue
		}
		if !contains(taken, m.Name()) {
			d.ErrorAt(p+".value", "%q comes from measurement %s, which is not in %s", slo.Value, m.Name(), where)
		}
		if _, err := ParseThreshold(slo.Threshold, fig.Unit); err != nil {
			d.ErrorAt(p+".threshold", "%v", err)
		}
	}
}

// suggest offers the closest known value name.
func suggest(name string) string {
	best := registry.Closest(name, measure.Default.FigureNames())
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func joinNames(names []string) string { return strings.Join(names, ", ") }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

var byteUnits = map[string]float64{"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}

// ParseThreshold reads an SLO threshold for a value of unit: a duration or seconds for seconds,
// "99%" or a number of percent for percentages, a number with an optional KiB/MiB/GiB for bytes,
// a plain number otherwise.
func ParseThreshold(text, unit string) (float64, error) {
	t := strings.TrimSpace(text)
	if t == "" {
		return 0, errors.New("is required")
	}
	num := func(s string) (float64, error) {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, fmt.Errorf("%q is not a number", s)
		}
		return f, nil
	}
	switch unit {
	case measure.UnitSeconds:
		if d, err := time.ParseDuration(t); err == nil {
			return d.Seconds(), nil
		}
		f, err := num(t)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration (such as 60s) or a number of seconds", text)
		}
		return f, nil
	case measure.UnitPercent:
		f, err := num(strings.TrimSuffix(t, "%"))
		if err != nil {
			return 0, fmt.Errorf("%q is not a percentage (such as 99.9%%)", text)
		}
		if f < 0 || f > 100 {
			return 0, fmt.Errorf("%q is not between 0%% and 100%%", text)
		}
		return f, nil
	case measure.UnitBytes:
		i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
		numPart, suffix := t, ""
		if i >= 0 {
			numPart, suffix = t[:i], t[i:]
		}
		mul, ok := byteUnits[suffix]
		f, err := num(numPart)
		if !ok || err != nil {
			return 0, fmt.Errorf("%q is not a size (such as 512MiB or 1e9)", text)
		}
		return f * mul, nil
	}
	f, err := num(t)
	if err != nil {
		return 0, err
	}
	return f, nil
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// backendURL checks one backend URL of the reference control plane; empty means embedded.
func backendURL(role, v string) error {
	switch role {
	case "tsdb":
		return ingest.ValidateURLs(v, "", "")
	case "search":
		return ingest.ValidateURLs("", v, "")
	default:
		return ingest.ValidateURLs("", "", v)
	}
}

func (s *Scenario) hasLoad() bool {
	for _, st := range s.Steps {
		if st.Load != nil {
			return true
		}
	}
	return false
}

// backendURL returns the URL of the backend a path names (empty: the embedded one).
func (c ControlPlaneSpec) backendURL(path string) string {
	if bp, ok := c.BackendProcesses[path]; ok {
		return bp.URL
	}
	return c.backendURLField(path)
}

// backendURLField returns controlPlane.tsdb, .search or .inventory.
func (c ControlPlaneSpec) backendURLField(path string) string {
	switch path {
	case faults.PathTSDB:
		return c.TSDB
	case faults.PathSearch:
		return c.Search
	case faults.PathInventory:
		return c.Inventory
	}
	return ""
}

// validateNodeFault checks a fault on one replica of the control plane: there must be several,
// and the node it names must be one of them.
func validateNodeFault(s *Scenario, p string, f *FaultSpec, d *strictyaml.Decoder) {
	n := max(s.ControlPlane.Replicas, 1)
	if n == 1 {
		d.ErrorAt(p+".kind", "%s acts on one replica of a replicated control plane: set controlPlane.replicas (3 or more; mode %s)", f.Kind, CPProcess)
		return
	}
	if v, ok := f.Params["node"]; ok {
		if i, err := strconv.Atoi(v); err == nil && i >= n {
			d.ErrorAt(p+".params.node", "replica %d does not exist: the control plane has %d (0 to %d)", i, n, n-1)
		}
	}
}
