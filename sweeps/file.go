// Package sweeps runs a scenario over one or two parameter axes, from small to full scale, and
// turns the runs into a capacity answer. A sweep is a file of kind Sweep (see FORMAT.md) or the
// same thing given on the command line; each point of it is an ordinary run of the scenario
// (run.json and all) in the sweep's directory, and the sweep writes sweep.json, summary.md,
// junit.xml and report.html beside them. The library of ready-made sweeps is embedded.
package sweeps

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/dsnscale/dsnscale/internal/registry"
	"github.com/dsnscale/dsnscale/internal/strictyaml"
	"github.com/dsnscale/dsnscale/reports"
	"github.com/dsnscale/dsnscale/scenarios"
)

// Kind is the kind a sweep file declares.
const Kind = "Sweep"

// Limits on a sweep, beyond which a number is a typo.
const (
	MaxAxes   = 2
	MaxValues = 50
	MaxRepeat = 100
	MaxPoints = 1000
)

// Sentinel errors.
var (
	// ErrInvalid matches every problem with a sweep (exit code 2).
	ErrInvalid = strictyaml.ErrInvalid
	// ErrNotFound is returned for a name that is neither a library sweep nor a file.
	ErrNotFound = errors.New("sweep not found")
)

//go:embed library/*.yaml
var library embed.FS

// Metadata names a sweep.
type Metadata struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
}

// Sweep is a decoded sweep: what to run and what to model. It is pure data; Check validates it
// against its scenario.
type Sweep struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Metadata   Metadata `yaml:"metadata"`
	// Scenario is a library scenario name or a file (relative to the sweep file).
	Scenario string `yaml:"scenario"`
	// Set fixes parameters of the scenario for every point.
	Set map[string]string `yaml:"set"`
	// Axes are one or two parameters of the scenario and their values, in order; the first is
	// the scale the figures are modelled against.
	Axes Axes `yaml:"axes"`
	// Repeat is how many runs each point gets (default 1).
	Repeat int `yaml:"repeat"`
	// Model names the figures to model against the first axis (as dsnscale compare names
	// them); empty means every SLO's value plus the control plane's CPU time and peak RSS.
	Model []string `yaml:"model"`
	// Budget, when set, bounds the sweep's wall-clock time: no point starts once it is spent.
	Budget time.Duration `yaml:"budget"`
	// UntilFail, when set, searches for the limit instead of running the grid.
	UntilFail *UntilFail `yaml:"untilFail"`

	// Source is where the sweep came from: a file, "library:NAME" or "command line".
	Source string `yaml:"-"`
	// Dir is where the scenario file is looked up ("" for the working directory).
	Dir string `yaml:"-"`

	// dec knows where each field of the file was; nil for a sweep made on the command line.
	dec *strictyaml.Decoder
	// cli names the fields the command line set, which errors then point at.
	cli map[string]string
}

// UntilFail is the limit search: the first axis doubles from its first value until an SLO
// fails or Max (or the budget) is reached, then bisects between the last pass and the first
// fail until they are within Resolution of each other.
type UntilFail struct {
	// Max is the largest value to try; default 64 times the first.
	Max string `yaml:"max"`
	// Resolution is how close, relative to the last pass, the search gets; default 10%.
	Resolution string `yaml:"resolution"`
}

// Axis is one swept parameter.
type Axis struct {
	Param  string
	Values []string
	// nums are the values as numbers (a duration in seconds, a rate per second).
	nums []float64
}

// Nums returns the axis values as numbers; Check fills them.
func (a Axis) Nums() []float64 { return a.nums }

// Axes are the swept parameters, in file order.
type Axes []Axis

// UnmarshalYAMLNode decodes `param: [values]` pairs, keeping their order.
func (as *Axes) UnmarshalYAMLNode(d *strictyaml.Decoder, n *yaml.Node, path string) {
	for _, kv := range d.Pairs(n, path) {
		p := strictyaml.Key(path, kv[0].Value)
		d.Mark(p, kv[1])
		a := Axis{Param: kv[0].Value}
		v := kv[1]
		if v.Kind != yaml.SequenceNode {
			d.Errorf(v, p, "want a list of values, such as [500, 1000, 2000]")
			continue
		}
		for i, e := range v.Content {
			ep := strictyaml.Index(p, i)
			d.Mark(ep, e)
			s, ok := d.Scalar(e, ep)
			if ok {
				a.Values = append(a.Values, s)
			}
		}
		*as = append(*as, a)
	}
}

// Load reads a sweep by library name or file path and checks it against its scenario. A name
// that is neither gets ErrNotFound; every problem matches ErrInvalid and names file:line and
// field path.
func Load(nameOrPath string) (*Sweep, error) {
	if data, err := LibraryFile(nameOrPath); err == nil && !fileExists(nameOrPath) {
		return Parse("library:"+nameOrPath, data, "")
	}
	data, err := strictyaml.ReadFile(nameOrPath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %q is neither a library sweep (%s) nor a file", ErrNotFound, nameOrPath, strings.Join(libraryNames(), ", "))
		}
		return nil, err
	}
	return Parse(nameOrPath, data, filepath.Dir(nameOrPath))
}

// Parse decodes a sweep from data strictly; source names it in errors and dir is where a
// scenario file it names is looked up. It does not check the sweep against its scenario: the
// command line may still change it. Call Check.
func Parse(source string, data []byte, dir string) (*Sweep, error) {
	var sw Sweep
	d, err := strictyaml.DecodeFile(source, data, &sw)
	if err != nil {
		return nil, err
	}
	d.CheckHeader(strictyaml.Header{APIVersion: sw.APIVersion, Kind: sw.Kind}, Kind)
	switch {
	case sw.Metadata.Name == "":
		d.ErrorAt("metadata.name", "is required")
	case !nameRE.MatchString(sw.Metadata.Name):
		d.ErrorAt("metadata.name", "%q: want letters, digits, '.', '_' and '-' (it names the sweep's directory)", sw.Metadata.Name)
	}
	if d.Has("repeat") && sw.Repeat < 1 {
		d.ErrorAt("repeat", "%d: want at least 1 run per point", sw.Repeat)
	}
	if err := d.Err(); err != nil {
		return nil, err
	}
	sw.Source, sw.Dir = source, dir
	sw.dec = d
	return &sw, nil
}

// LibraryFile returns the text of a library sweep.
func LibraryFile(name string) ([]byte, error) {
	if !regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`).MatchString(name) {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	data, err := library.ReadFile("library/" + name + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	return data, nil
}

// IsLibrary reports whether name is a library sweep (and no file of that name exists).
func IsLibrary(name string) bool {
	_, err := LibraryFile(name)
	return err == nil && !fileExists(name)
}

func libraryNames() []string {
	names, _ := fs.Glob(library, "library/*.yaml")
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strings.TrimSuffix(path.Base(n), ".yaml")
	}
	sort.Strings(out)
	return out
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// valueKind is how the values of a parameter read, from its default.
type valueKind int

const (
	kindInt valueKind = iota
	kindFloat
	kindDuration
	kindRate
	kindText
)

func (k valueKind) String() string {
	return [...]string{"an integer", "a number", "a duration (such as 30s)", "a rate (such as 50/s)", "text"}[k]
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

var rateRE = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)/(s|m|h)$`)

func kindOf(v string) valueKind {
	v = strings.TrimSpace(v)
	if _, err := strconv.ParseInt(v, 10, 64); err == nil {
		return kindInt
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
		return kindFloat
	}
	if _, err := time.ParseDuration(v); err == nil {
		return kindDuration
	}
	if rateRE.MatchString(v) {
		return kindRate
	}
	return kindText
}

// number reads v as a value of kind k: a duration in seconds, a rate per second.
func number(v string, k valueKind) (float64, bool) {
	v = strings.TrimSpace(v)
	switch k {
	case kindInt:
		i, err := strconv.ParseInt(v, 10, 64)
		return float64(i), err == nil
	case kindFloat:
		f, err := strconv.ParseFloat(v, 64)
		return f, err == nil && !math.IsInf(f, 0) && !math.IsNaN(f)
	case kindDuration:
		d, err := time.ParseDuration(v)
		return d.Seconds(), err == nil
	case kindRate:
		m := rateRE.FindStringSubmatch(v)
		if m == nil {
			return 0, false
		}
		f, _ := strconv.ParseFloat(m[1], 64)
		per := map[string]float64{"s": 1, "m": 60, "h": 3600}[m[2]]
		return f / per, true
	}
	return 0, false
}

// format writes x as a value of kind k, shaped like example (for the limit search, which
// makes values of its own).
func format(x float64, k valueKind, example string) string {
	switch k {
	case kindInt:
		return strconv.FormatInt(int64(math.Round(x)), 10)
	case kindDuration:
		return time.Duration(math.Round(x * float64(time.Second))).String()
	case kindRate:
		m := rateRE.FindStringSubmatch(strings.TrimSpace(example))
		per := map[string]float64{"s": 1, "m": 60, "h": 3600}[m[2]]
		return strconv.FormatFloat(math.Round(x*per*100)/100, 'f', -1, 64) + "/" + m[2]
	}
	return strconv.FormatFloat(x, 'g', 6, 64)
}

// suggest is registry.Suggest over the declared parameter names.
func suggest(name string, s *scenarios.Scenario) string {
	names := make([]string, len(s.Params))
	for i, p := range s.Params {
		names[i] = p.Name
	}
	if len(names) == 0 {
		return " (the scenario declares no parameters)"
	}
	return registry.Suggest(name, names)
}

func declared(s *scenarios.Scenario, name string) (scenarios.Param, bool) {
	for _, p := range s.Params {
		if p.Name == name {
			return p, true
		}
	}
	return scenarios.Param{}, false
}

// modelName checks a figure name to model: a built-in figure or a measurement value the
// catalogue knows.
func modelName(name string) bool {
	_, ok := reports.LookupFigure(name)
	return ok
}
