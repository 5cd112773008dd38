// Package scenarios is the scenario schema: it reads scenario files, checks them against the
// registries of fault kinds, measurements, actions, executors and fleet drivers, and plans them.
// The library of ready-made scenarios is embedded (see Library). Package scenarios/runner runs
// them.
//
// A scenario file is strict YAML (apiVersion dsnscale/v1, kind Scenario): unknown fields are
// rejected and every error names its file:line and field path. Parameters are substituted as
// text (${name} in string values) and typed where they are used.
package scenarios

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/dsnscale/dsnscale/internal/strictyaml"
	"github.com/dsnscale/dsnscale/loadgen"
)

// APIVersion and Kind identify a scenario file.
const (
	APIVersion = "dsnscale/v1"
	Kind       = "Scenario"
)

// Sentinel errors.
var (
	// ErrInvalid matches every problem with a scenario file or its parameters (exit code 2).
	ErrInvalid = strictyaml.ErrInvalid
	// ErrNotFound is returned for a scenario name that is neither in the library nor a file.
	ErrNotFound = errors.New("scenario not found")
)

// Scenario is a decoded scenario file.
type Scenario struct {
	APIVersion   string           `yaml:"apiVersion"`
	Kind         string           `yaml:"kind"`
	Metadata     Metadata         `yaml:"metadata"`
	Params       Params           `yaml:"params"`
	Seed         int64            `yaml:"seed"`
	Fleet        FleetSpec        `yaml:"fleet"`
	ControlPlane ControlPlaneSpec `yaml:"controlPlane"`
	Steps        []Step           `yaml:"steps"`
	// Measurements are taken over the whole run.
	Measurements []string `yaml:"measurements"`
	SLOs         []SLO    `yaml:"slos"`

	// Source is where the scenario came from: a file path or "library:NAME".
	Source string `yaml:"-"`
	// Content is the file's text.
	Content []byte `yaml:"-"`
	// Values are the parameter values in effect (defaults overridden by --set).
	Values map[string]string `yaml:"-"`
	// Dir is the directory relative paths in the file are resolved against ("" for the library).
	Dir string `yaml:"-"`
}

// Metadata names and describes a scenario.
type Metadata struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
}

// Param declares a parameter. In a file it is either a mapping with default and description or
// just the default.
type Param struct {
	Name        string
	Default     string
	Description string
	Line        int
}

// Params are the declared parameters in file order.
type Params []Param

// UnmarshalYAMLNode decodes the params mapping; defaults are never substituted.
func (ps *Params) UnmarshalYAMLNode(d *strictyaml.Decoder, n *yaml.Node, path string) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	subst := d.Subst
	d.Subst = nil
	defer func() { d.Subst = subst }()
	for _, kv := range d.Pairs(n, path) {
		k, v := kv[0], kv[1]
		p := Param{Name: k.Value, Line: k.Line}
		pp := strictyaml.Key(path, k.Value)
		if !paramName.MatchString(k.Value) {
			d.Errorf(k, pp, "parameter names are letters, digits and _, starting with a letter")
		}
		switch v.Kind {
		case yaml.MappingNode:
			var decl struct {
				Default     *string `yaml:"default"`
				Description string  `yaml:"description"`
			}
			d.Decode(v, pp, &decl)
			if decl.Default == nil {
				d.Errorf(v, pp, "default is required")
			} else {
				p.Default = *decl.Default
			}
			p.Description = decl.Description
		default:
			d.Mark(pp, v)
			if s, ok := d.Scalar(v, pp); ok {
				p.Default = s
			}
		}
		*ps = append(*ps, p)
	}
}

// FleetSpec is the simulated fleet.
type FleetSpec struct {
	// Size is the number of DSNs.
	Size int `yaml:"size"`
	// Driver runs the DSNs: inproc (goroutines in the harness), process, docker, swarm or
	// kubernetes.
	Driver string `yaml:"driver"`
	// Traffic names a traffic-pattern map: "default" (the simulator's own, also when empty) or
	// a file relative to the scenario. The map's racks are the process, docker and swarm
	// drivers' units.
	Traffic string `yaml:"traffic"`
	// AdmissionDeadline is how long a DSN may stay admitting before the step it is in fails
	// with the reasons the DSNs gave (default 1m).
	AdmissionDeadline time.Duration `yaml:"admissionDeadline"`
	// Harness is where units that run outside the harness process reach it (the harness link,
	// mutual TLS with the run's own CA) and the units' bus proxies. The default, loopback, suits
	// units on this host; units on other hosts need addresses they can reach.
	Harness HarnessSpec `yaml:"harness"`
}

// HarnessSpec places the harness's endpoints for units outside its process.
type HarnessSpec struct {
	// Listen is the host:port the harness link listens on (default 127.0.0.1:0); the units'
	// bus proxies listen on its host too.
	Listen string `yaml:"listen"`
	// Advertise is the host:port units dial (default: where Listen got); its host is also the
	// host of the bus proxy URLs units are given.
	Advertise string `yaml:"advertise"`
}

// Control-plane modes.
const (
	CPInProcess = "inprocess"
	CPProcess   = "process"
	CPExternal  = "external"
)

// ControlPlaneSpec says which control plane the scenario drives.
type ControlPlaneSpec struct {
	// Mode is inprocess (the reference control plane inside the harness), process (the
	// reference control plane as a child process) or external (someone else's, by URL).
	Mode string `yaml:"mode"`
	// URL is the northbound API of an external control plane.
	URL string `yaml:"url"`
	// NATSURL is where DSNs connect to an external control plane.
	NATSURL string `yaml:"natsURL"`
	// Token is a bearer token for an external control plane's API; TokenFile reads it from a
	// file instead (relative to the scenario).
	Token     string `yaml:"token"`
	TokenFile string `yaml:"tokenFile"`
	// Target describes an external control plane in full (CA, credentials, admission): a
	// target file (kind: Target) relative to the scenario, or the same fields inline. It
	// replaces url, natsURL, token and tokenFile.
	Target *TargetRef `yaml:"target"`
	// Binary is the dsnscale binary for process mode (default: the running executable).
	Binary string `yaml:"binary"`
	// HeartbeatInterval is what the reference control plane tells DSNs (0: its default).
	HeartbeatInterval time.Duration `yaml:"heartbeatInterval"`
	// TSDB, Search and Inventory are the reference control plane's backend URLs (cp serve
	// --tsdb, --search, --inventory); empty keeps the embedded ones under its data directory.
	TSDB      string `yaml:"tsdb"`
	Search    string `yaml:"search"`
	Inventory string `yaml:"inventory"`
	// BackendProcesses are backends the harness starts as processes of its own before the
	// control plane and stops after it, by backend (tsdb, search, inventory): backend-kill and
	// backend-pause act on them.
	BackendProcesses map[string]BackendProcess `yaml:"backendProcesses"`
	// Replicas is how many replicas of the reference control plane the harness runs as one
	// cluster (process mode only): 1 (the default) or an odd number of at least 3. The API is
	// reached through a load balancer in front of them; DSNs get every replica's bus address.
	Replicas int `yaml:"replicas"`
}

// BackendProcess is a backend the harness runs: a command, and the URL the control plane
// reaches it at once it listens.
type BackendProcess struct {
	Command []string `yaml:"command"`
	URL     string   `yaml:"url"`
}

// Step is one stage of a scenario: it lasts a fixed duration or until a condition holds (with a
// timeout); it may act on intent, drive load, inject faults and take measurements over its
// window.
type Step struct {
	Name        string        `yaml:"name"`
	Description string        `yaml:"description"`
	Duration    time.Duration `yaml:"duration"`
	Until       *Until        `yaml:"until"`
	Timeout     time.Duration `yaml:"timeout"`
	// Actions run in order at the start of the step.
	Actions []ActionSpec `yaml:"actions"`
	// Load runs for the step's duration (or until its condition holds) unless it sets its own.
	Load         *loadgen.ExecutorConfig `yaml:"load"`
	Faults       []FaultSpec             `yaml:"faults"`
	Measurements []string                `yaml:"measurements"`
}

// Until is a step's wait condition: a bare name ("converged") or a name with a share of the fleet
// ({acked: 99%}).
type Until struct {
	Condition string
	// Share is the fraction of the fleet (0-1) for conditions that take one; 1 for bare names.
	Share float64
	// Bare says the condition was written without a share.
	Bare bool
}

// String renders the condition as written.
func (u Until) String() string {
	if u.Bare {
		return u.Condition
	}
	return u.Condition + " " + formatShare(u.Share)
}

// UnmarshalYAMLNode decodes "name" or {name: share}.
func (u *Until) UnmarshalYAMLNode(d *strictyaml.Decoder, n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.ScalarNode:
		if s, ok := d.Scalar(n, path); ok {
			u.Condition, u.Share, u.Bare = s, 1, true
		}
	case yaml.MappingNode:
		pairs := d.Pairs(n, path)
		if len(pairs) != 1 {
			d.Errorf(n, path, "want one condition, such as converged or {acked: 99%%}")
			return
		}
		k, v := pairs[0][0], pairs[0][1]
		u.Condition = k.Value
		var s Share
		d.Decode(v, strictyaml.Key(path, k.Value), &s)
		u.Share = float64(s)
	default:
		d.Errorf(n, path, "want a condition, such as converged or {acked: 99%%}")
	}
}

// Share is a fraction in [0, 1], written as a percentage ("99%") or a number ("0.99").
type Share float64

// UnmarshalText parses "99%", "99.5%" or "0.99".
func (s *Share) UnmarshalText(b []byte) error {
	v, err := parseShare(string(b))
	if err != nil {
		return err
	}
	*s = Share(v)
	return nil
}

func parseShare(text string) (float64, error) {
	t := strings.TrimSpace(text)
	pct := strings.HasSuffix(t, "%")
	f, err := strconv.ParseFloat(strings.TrimSuffix(t, "%"), 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a share (such as 99%% or 0.99)", text)
	}
	if pct {
		f /= 100
	}
	if !(f >= 0 && f <= 1) {
		return 0, fmt.Errorf("%q is not between 0%% and 100%%", text)
	}
	return f, nil
}

func formatShare(f float64) string {
	return strconv.FormatFloat(f*100, 'f', -1, 64) + "%"
}

// ActionSpec is an action a step runs at its start.
type ActionSpec struct {
	Kind   string            `yaml:"kind"`
	Params map[string]string `yaml:"params"`
}

// FaultSpec is a fault a step injects.
type FaultSpec struct {
	Kind   string            `yaml:"kind"`
	Target TargetSpec        `yaml:"target"`
	Params map[string]string `yaml:"params"`
	// Delay is how long after the step starts the fault is injected.
	Delay time.Duration `yaml:"delay"`
	// Duration is how long the fault stays before it is recovered; 0 means until the step ends.
	Duration time.Duration `yaml:"duration"`
	// Optional says the run goes on when the fault cannot be injected or is cut short; it is
	// still recorded as failed. By default such a fault breaks the run.
	Optional bool `yaml:"optional"`
	// Every repeats the fault for the step, every this long from its delay; each occurrence
	// lasts Duration, which must then be set and shorter. 0 injects it once.
	Every time.Duration `yaml:"every"`
	// Probability, when set, keeps each target with this chance (a control-plane fault fires
	// with it), drawn from the scenario's seed.
	Probability Share `yaml:"probability"`
}

// TargetSpec selects the DSNs of a DSN fault (see faults.Target).
type TargetSpec struct {
	Labels map[string]string `yaml:"labels"`
	DSNs   []string          `yaml:"dsns"`
	// Units names fleet units, for network faults on their links.
	Units    []string `yaml:"units"`
	Fraction Share    `yaml:"fraction"`
	Count    int      `yaml:"count"`
}

// SLO is a service-level objective the run is judged by: a measured value, an operator and a
// threshold. In a file it is a mapping or one line: "storm_recovery_seconds <= 60s", with
// "step/value" for a value measured in one step.
type SLO struct {
	Name string `yaml:"name"`
	// Value names a value a measurement produces.
	Value string `yaml:"value"`
	// Step names the step whose measurement the value comes from; empty for a run-wide one.
	Step      string `yaml:"step"`
	Op        string `yaml:"op"`
	Threshold string `yaml:"threshold"`
	// Missing is what the SLO says when its value is missing (nothing to measure, or the
	// measurement failed): MissingFail (the default) or MissingPass.
	Missing string `yaml:"missing"`
}

// What an SLO says of a missing value.
const (
	MissingFail = "fail"
	MissingPass = "pass"
)

// MissingPasses reports whether the SLO passes when its value is missing.
func (s SLO) MissingPasses() bool { return s.Missing == MissingPass }

// String renders the SLO as one line.
func (s SLO) String() string {
	v := s.Value
	if s.Step != "" {
		v = s.Step + "/" + v
	}
	return v + " " + s.Op + " " + s.Threshold
}

// UnmarshalYAMLNode decodes the mapping or the one-line form.
func (s *SLO) UnmarshalYAMLNode(d *strictyaml.Decoder, n *yaml.Node, path string) {
	if n.Kind == yaml.MappingNode {
		type plain SLO
		var p plain
		d.Decode(n, path, &p)
		*s = SLO(p)
		return
	}
	if n.Kind != yaml.ScalarNode {
		d.Errorf(n, path, "want a mapping or \"value op threshold\", such as \"storm_recovery_seconds <= 60s\"")
		return
	}
	// Split before substituting, so that a parameter's value stays one field.
	f := strings.Fields(n.Value)
	if len(f) != 3 {
		d.Errorf(n, path, "want \"value op threshold\", such as \"storm_recovery_seconds <= 60s\", got %q", n.Value)
		return
	}
	if d.Subst != nil {
		for i, field := range f {
			v, err := d.Subst(field)
			if err != nil {
				d.Errorf(n, path, "%v", err)
				return
			}
			f[i] = v
		}
	}
	s.Value, s.Op, s.Threshold = f[0], f[1], f[2]
	if step, v, ok := strings.Cut(f[0], "/"); ok {
		s.Step, s.Value = step, v
	}
	d.Mark(strictyaml.Field(path, "value"), n)
	d.Mark(strictyaml.Field(path, "op"), n)
	d.Mark(strictyaml.Field(path, "threshold"), n)
	if s.Step != "" {
		d.Mark(strictyaml.Field(path, "step"), n)
	}
}
