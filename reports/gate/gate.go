// Package gate is the Gate file kind: how a comparison of repeated runs decides that a change
// regressed, as data kept beside the scenario it gates.
//
//	apiVersion: dsnscale/v1
//	kind: Gate
//	metadata:
//	  name: storm-restart-ci
//	  description: the pull-request gate on the restart storm
//	scenario: storm-restart   # refuse runs of any other scenario
//	alpha: 0.05               # significance level of the U test
//	runs: 5                   # runs required on each side
//	tolerance: 10%            # how far a performance figure may move before it counts
//	figures:                  # the performance figures that gate (default: every one)
//	  - name: storm/storm_recovery_seconds
//	    tolerance: 20%
//	  - name: cp_peak_rss_bytes
//
// Correctness figures (crashes, lost DSNs, watch gaps, failed SLOs, broken runs) always gate,
// on any increase from a clean base; one is listed only to give the tolerance that applies when
// its base is not clean and it is judged by statistics. Figure names are those of the runs' records
// ("storm/storm-recovery.storm_recovery_seconds") or the shorter ones SLOs use
// ("storm/storm_recovery_seconds", "lost_dsns"); they are checked against the figures the
// compared runs produce, once those are loaded, with CheckFigures.
package gate

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/dsnscale/dsnscale/internal/strictyaml"
	"github.com/dsnscale/dsnscale/reports/stats"
)

// Kind is the kind a Gate file declares.
const Kind = "Gate"

// Defaults.
const (
	DefaultAlpha     = 0.05
	DefaultTolerance = 0.1
)

// Gate is a decoded Gate file.
type Gate struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Metadata   Metadata `yaml:"metadata"`
	// Scenario, when set, is the only scenario whose runs the gate judges.
	Scenario string `yaml:"scenario"`
	// Alpha is the significance level (default DefaultAlpha).
	Alpha float64 `yaml:"alpha"`
	// Runs is how many good runs each side must have (0: no requirement).
	Runs int `yaml:"runs"`
	// Tolerance is how far, relative to the base's median, a performance figure may move
	// (default DefaultTolerance).
	Tolerance Fraction `yaml:"tolerance"`
	// Figures are the performance figures that gate (empty: every one), and correctness figures
	// given a tolerance.
	Figures []Figure `yaml:"figures"`

	dec    *strictyaml.Decoder
	failed map[string]bool
}

// Metadata names the gate.
type Metadata struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
}

// Figure is a performance figure that gates.
type Figure struct {
	Name string `yaml:"name"`
	// Tolerance overrides the gate's for this figure.
	Tolerance Fraction `yaml:"tolerance"`
	// Better is "lower" or "higher", for a figure whose direction dsnscale does not know.
	Better string `yaml:"better"`
}

// Fraction is a relative amount, written as a fraction (0.1) or a percentage ("10%").
type Fraction float64

// UnmarshalText reads 0.1 or 10%.
func (f *Fraction) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	pct := strings.HasSuffix(s, "%")
	v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(s, "%")), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("%q is not a fraction (0.1) or a percentage (10%%)", s)
	}
	if pct {
		v /= 100
	}
	*f = Fraction(v)
	return nil
}

// Load reads and checks a Gate file.
func Load(path string) (*Gate, error) {
	data, err := strictyaml.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse decodes and checks a Gate file's content; file names it in errors.
func Parse(file string, data []byte) (*Gate, error) {
	var g Gate
	d, err := strictyaml.DecodeFile(file, data, &g)
	var decoded strictyaml.Errors
	if err != nil && !errors.As(err, &decoded) || len(decoded) == 1 && decoded[0].Path == "" {
		return nil, err // not YAML, or not one document: nothing was decoded
	}
	g.dec = d
	// Fields that failed to decode hold zero values: validation leaves them alone, so that each
	// problem is reported once.
	g.failed = map[string]bool{}
	for _, e := range decoded {
		g.failed[e.Path] = true
	}
	g.validate()
	if err := d.Err(); err != nil {
		return nil, err
	}
	g.applyDefaults()
	return &g, nil
}

func (g *Gate) validate() {
	d := g.dec
	has := func(path string) bool { return d.Has(path) && !g.failed[path] }
	d.CheckHeader(strictyaml.Header{APIVersion: g.APIVersion, Kind: g.Kind}, Kind)
	alpha := g.Alpha
	if has("alpha") && !(alpha > 0 && alpha <= 0.5) {
		d.ErrorAt("alpha", "%v: want a significance level in (0, 0.5], such as 0.05", alpha)
		alpha = DefaultAlpha
	}
	if alpha == 0 {
		alpha = DefaultAlpha
	}
	switch need := stats.MinRuns(alpha); {
	case g.Runs < 0:
		d.ErrorAt("runs", "%d: want a number of runs per side", g.Runs)
	case has("runs") && g.Runs < need:
		d.ErrorAt("runs", "%d runs per side can never be significant at alpha %v: want >= %d", g.Runs, alpha, need)
	}
	checkFraction(d, has, "tolerance", g.Tolerance)
	seen := map[string]int{}
	for i, f := range g.Figures {
		p := strictyaml.Index("figures", i)
		if g.failed[p] {
			continue
		}
		name := strings.TrimSpace(f.Name)
		switch {
		case name == "":
			d.ErrorAt(strictyaml.Field(p, "name"), "is required")
		case name != f.Name:
			d.ErrorAt(strictyaml.Field(p, "name"), "%q has spaces around it", f.Name)
		}
		if j, dup := seen[name]; dup && name != "" {
			d.ErrorAt(strictyaml.Field(p, "name"), "%q is already listed at figures[%d]", name, j)
		}
		seen[name] = i
		checkFraction(d, has, strictyaml.Field(p, "tolerance"), f.Tolerance)
		switch f.Better {
		case "", "lower", "higher":
		default:
			d.ErrorAt(strictyaml.Field(p, "better"), "%q: want lower or higher", f.Better)
		}
	}
}

func checkFraction(d *strictyaml.Decoder, has func(string) bool, path string, f Fraction) {
	if has(path) && !(f > 0 && f <= 100) {
		d.ErrorAt(path, "%v: want a fraction in (0, 100] (0.1 or 10%% lets a figure move by 10%%)", float64(f))
	}
}

func (g *Gate) applyDefaults() {
	if g.Alpha == 0 {
		g.Alpha = DefaultAlpha
	}
	if g.Tolerance == 0 {
		g.Tolerance = DefaultTolerance
	}
}

// ToleranceFor returns the tolerance of the figure listed at index i, or the gate's.
func (g *Gate) ToleranceFor(i int) float64 {
	if i >= 0 && i < len(g.Figures) && g.Figures[i].Tolerance != 0 {
		return float64(g.Figures[i].Tolerance)
	}
	return float64(g.Tolerance)
}

// File is the path the gate was read from.
func (g *Gate) File() string {
	if g.dec == nil {
		return ""
	}
	return g.dec.File
}

// CheckFigures checks each listed figure against the compared runs: check returns what is
// wrong with figures[i] (its field, "name", "tolerance" or "better", and a message), or an
// empty message when nothing is. The problems come back as one error, each at its file:line.
func (g *Gate) CheckFigures(check func(i int, f Figure) (field, problem string)) error {
	d := &strictyaml.Decoder{}
	if g.dec != nil {
		d = g.dec
	}
	for i, f := range g.Figures {
		field, problem := check(i, f)
		if problem != "" {
			d.ErrorAt(strictyaml.Field(strictyaml.Index("figures", i), field), "%s", problem)
		}
	}
	return d.Err()
}

// CheckScenario reports, at the scenario field, runs of another scenario than the gate's.
func (g *Gate) CheckScenario(scenarios []string) error {
	if g.Scenario == "" {
		return nil
	}
	d := &strictyaml.Decoder{}
	if g.dec != nil {
		d = g.dec
	}
	seen := map[string]bool{}
	for _, s := range scenarios {
		if s != g.Scenario && !seen[s] {
			seen[s] = true
			d.ErrorAt("scenario", "the gate is for %q, but runs of %q were given", g.Scenario, s)
		}
	}
	return d.Err()
}
