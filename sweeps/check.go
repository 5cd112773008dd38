package sweeps

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dsnscale/dsnscale/internal/strictyaml"
	"github.com/dsnscale/dsnscale/scenarios"
)

// Overrides are the command line's changes to a sweep.
type Overrides struct {
	// Axes replace the sweep's axes when set ("dsns=500,1000,2000" each).
	Axes []string
	// Repeat replaces the sweep's repeat when above 0.
	Repeat int
	// Set adds to (and overrides) the sweep's set values ("name=value" each).
	Set []string
	// Budget replaces the sweep's budget when above 0.
	Budget time.Duration
	// UntilFail turns the limit search on; Max and Resolution, when set, replace its bounds.
	UntilFail  bool
	Max        string
	Resolution string
}

// FromScenario makes a sweep of a scenario given by name or file, for the command line.
func FromScenario(scenario string) *Sweep {
	return &Sweep{
		APIVersion: strictyaml.APIVersion, Kind: Kind, Scenario: scenario, Source: "command line",
		Metadata: Metadata{Name: strings.TrimSuffix(filepath.Base(scenario), filepath.Ext(scenario))},
	}
}

// Apply applies the command line's changes. Problems with them are reported by Check, at the
// flag that made them.
func (sw *Sweep) Apply(o Overrides) error {
	if sw.cli == nil {
		sw.cli = map[string]string{}
	}
	if len(o.Axes) > 0 {
		sw.Axes = nil
		for _, a := range o.Axes {
			name, list, ok := strings.Cut(a, "=")
			if !ok || name == "" {
				return &strictyaml.Error{File: "--axis", Msg: fmt.Sprintf("%q: want param=v1,v2,... such as dsns=500,1000,2000", a)}
			}
			ax := Axis{Param: strings.TrimSpace(name)}
			if strings.TrimSpace(list) != "" {
				for _, v := range strings.Split(list, ",") {
					ax.Values = append(ax.Values, strings.TrimSpace(v))
				}
			}
			sw.Axes = append(sw.Axes, ax)
		}
		sw.cli["axes"] = "--axis"
	}
	if o.Repeat != 0 {
		sw.Repeat = o.Repeat
		sw.cli["repeat"] = "--repeat"
	}
	if len(o.Set) > 0 {
		set, err := scenarios.ParseSet(o.Set)
		if err != nil {
			return err
		}
		if sw.Set == nil {
			sw.Set = map[string]string{}
		}
		for k, v := range set {
			sw.Set[k] = v
			sw.cli[strictyaml.Key("set", k)] = "--set"
		}
	}
	if o.Budget != 0 {
		sw.Budget = o.Budget
		sw.cli["budget"] = "--budget"
	}
	if o.UntilFail || o.Max != "" || o.Resolution != "" {
		if sw.UntilFail == nil {
			sw.UntilFail = &UntilFail{}
			sw.cli["untilFail"] = "--until-fail"
		}
		if o.Max != "" {
			sw.UntilFail.Max = o.Max
			sw.cli["untilFail.max"] = "--max"
		}
		if o.Resolution != "" {
			sw.UntilFail.Resolution = o.Resolution
			sw.cli["untilFail.resolution"] = "--resolution"
		}
	}
	return nil
}

// Point is one run of a sweep.
type Point struct {
	// Values are the axis values, in the order of the axes; Nums the same as numbers.
	Values []string  `json:"values"`
	Nums   []float64 `json:"nums"`
	// Repeat is which run of the point this is, from 1.
	Repeat int `json:"repeat"`
	// Dir is the run's directory, relative to the sweep's.
	Dir string `json:"dir"`
	// Set is every parameter the run sets.
	Set map[string]string `json:"set"`
	// Least and Most bound how long the run takes by its steps (see scenarios.Duration).
	Least time.Duration `json:"least"`
	Most  time.Duration `json:"most"`
}

// Plan is a checked sweep, ready to run.
type Plan struct {
	Sweep *Sweep
	// Scenario is the scenario with the sweep's set values (and the axes' defaults).
	Scenario *scenarios.Scenario
	// Points are the runs of the grid in order; empty for a limit search.
	Points []Point
	// Search is the limit search, nil for a grid.
	Search *SearchSpec

	kinds []valueKind
}

// SearchSpec is a checked limit search over the first axis.
type SearchSpec struct {
	Start, Max float64
	// Resolution is relative: the search stops once first fail ≤ last pass × (1+Resolution).
	Resolution float64
}

// checker reports a problem at the file's field, or at the flag that set it.
type checker struct {
	sw   *Sweep
	file *strictyaml.Decoder
	cl   strictyaml.Decoder
}

func (c *checker) errorAt(path, format string, args ...any) {
	for p := path; ; {
		if flag, ok := c.sw.cli[p]; ok {
			c.cl.ErrorAt(path, "(%s) "+format, append([]any{flag}, args...)...)
			return
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	c.file.ErrorAt(path, format, args...)
}

func (c *checker) err() error {
	var all strictyaml.Errors
	for _, d := range []*strictyaml.Decoder{&c.cl, c.file} {
		var es strictyaml.Errors
		if errors.As(d.Err(), &es) {
			all = append(all, es...)
		}
	}
	if len(all) == 0 {
		return nil
	}
	return all
}

// Check validates the sweep against its scenario and returns the plan: the scenario must load
// with the set values, every axis be a declared parameter with ascending values of the
// parameter's type, every point a valid scenario, repeat at least 1, the budget enough for one
// point. Every problem names its file:line (or flag) and field path.
func Check(sw *Sweep) (*Plan, error) {
	c := &checker{sw: sw, file: sw.dec}
	if c.file == nil {
		c.file = &strictyaml.Decoder{File: sw.Source}
	}
	c.cl.File = "command line"
	if sw.Repeat == 0 {
		sw.Repeat = 1
	}
	if sw.Repeat < 1 || sw.Repeat > MaxRepeat {
		c.errorAt("repeat", "%d: want 1 to %d runs per point", sw.Repeat, MaxRepeat)
	}
	if sw.Budget < 0 {
		c.errorAt("budget", "%s: want a positive duration", sw.Budget)
	}
	if strings.TrimSpace(sw.Scenario) == "" {
		c.errorAt("scenario", "is required: a library scenario name or a file")
		return nil, c.err()
	}
	target := sw.scenarioPath()
	base, err := scenarios.Load(target, nil)
	if err != nil {
		c.errorAt("scenario", "%v", indentLines(err.Error()))
		return nil, c.err()
	}
	// Set values: declared parameters only, and the scenario must accept them.
	for _, k := range sortedKeys(sw.Set) {
		if _, ok := declared(base, k); !ok {
			c.errorAt(strictyaml.Key("set", k), "the scenario %s declares no parameter %q%s", base.Metadata.Name, k, suggest(k, base))
		}
	}
	for k, v := range sw.Model {
		if !modelName(v) {
			c.errorAt(strictyaml.Index("model", k), "%q is no figure dsnscale knows (a built-in figure such as control-plane.cpu_seconds, or step/measurement.value)", v)
		}
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	scen, err := scenarios.Load(target, sw.Set)
	if err != nil {
		c.errorAt("set", "the scenario does not accept these values:\n%s", indentLines(err.Error()))
		return nil, c.err()
	}
	plan := &Plan{Sweep: sw, Scenario: scen}
	c.checkAxes(plan)
	if err := c.err(); err != nil {
		return nil, err
	}
	if sw.UntilFail != nil {
		c.checkSearch(plan)
	} else {
		c.grid(plan, target)
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	if sw.Budget > 0 {
		first := plan.firstPoint(target)
		if first != nil && first.Least > sw.Budget {
			c.errorAt("budget", "%s is less than one point takes by its steps (%s for %s)", sw.Budget, first.Least, describePoint(plan, *first))
		}
	}
	return plan, c.err()
}

func (sw *Sweep) scenarioPath() string {
	if sw.Dir == "" || filepath.IsAbs(sw.Scenario) || scenarioInLibrary(sw.Scenario) {
		return sw.Scenario
	}
	return filepath.Join(sw.Dir, sw.Scenario)
}

func scenarioInLibrary(name string) bool {
	_, err := scenarios.LibraryFile(name)
	return err == nil
}

func (c *checker) checkAxes(plan *Plan) {
	sw := plan.Sweep
	switch {
	case len(sw.Axes) == 0:
		c.errorAt("axes", "at least one axis is required, such as dsns: [500, 1000, 2000]")
		return
	case len(sw.Axes) > MaxAxes:
		c.errorAt("axes", "%d axes, at most %d", len(sw.Axes), MaxAxes)
		return
	case sw.UntilFail != nil && len(sw.Axes) != 1:
		c.errorAt("untilFail", "the limit search runs over one axis, not %d", len(sw.Axes))
		return
	}
	seen := map[string]bool{}
	total := sw.Repeat
	for i := range sw.Axes {
		a := &sw.Axes[i]
		p := strictyaml.Key("axes", a.Param)
		param, ok := declared(plan.Scenario, a.Param)
		switch {
		case !ok:
			c.errorAt(p, "the scenario %s declares no parameter %q%s", plan.Scenario.Metadata.Name, a.Param, suggest(a.Param, plan.Scenario))
			continue
		case seen[a.Param]:
			c.errorAt(p, "is swept twice")
			continue
		case sw.Set[a.Param] != "":
			c.errorAt(p, "is also fixed in set; sweep it or fix it")
			continue
		}
		seen[a.Param] = true
		kind := kindOf(param.Default)
		if kind == kindText {
			c.errorAt(p, "parameter %s (default %q) is not a number, a duration or a rate: it cannot be an axis", a.Param, param.Default)
			continue
		}
		plan.kinds = append(plan.kinds, kind)
		if len(a.Values) == 0 {
			c.errorAt(p, "no values: list at least one")
			continue
		}
		if len(a.Values) > MaxValues {
			c.errorAt(p, "%d values, at most %d", len(a.Values), MaxValues)
			continue
		}
		a.nums = make([]float64, len(a.Values))
		for j, v := range a.Values {
			x, ok := number(v, kind)
			// An integer is a fine number; nothing else crosses kinds.
			if !ok && kind == kindFloat {
				x, ok = number(v, kindInt)
			}
			if !ok {
				c.errorAt(strictyaml.Index(p, j), "%q is not %s, as the default of %s (%q) is", v, kind, a.Param, param.Default)
				continue
			}
			if x <= 0 {
				c.errorAt(strictyaml.Index(p, j), "%q: want a value above 0", v)
				continue
			}
			a.nums[j] = x
			if j > 0 && a.nums[j-1] > 0 && x <= a.nums[j-1] {
				c.errorAt(strictyaml.Index(p, j), "values must be ascending with no repeats: %s after %s", v, a.Values[j-1])
			}
		}
		total *= len(a.Values)
	}
	if sw.UntilFail == nil && total > MaxPoints {
		c.errorAt("axes", "%d runs, at most %d", total, MaxPoints)
	}
}

func (c *checker) checkSearch(plan *Plan) {
	uf := plan.Sweep.UntilFail
	a := plan.Sweep.Axes[0]
	kind := plan.kinds[0]
	spec := &SearchSpec{Start: a.nums[0], Max: 64 * a.nums[0], Resolution: 0.1}
	if uf.Max != "" {
		x, ok := number(uf.Max, kind)
		if !ok && kind == kindFloat {
			x, ok = number(uf.Max, kindInt)
		}
		switch {
		case !ok:
			c.errorAt("untilFail.max", "%q is not %s, as the values of %s are", uf.Max, kind, a.Param)
		case x <= spec.Start:
			c.errorAt("untilFail.max", "%s is not above the first value, %s", uf.Max, a.Values[0])
		default:
			spec.Max = x
		}
	}
	if uf.Resolution != "" {
		r, ok := percent(uf.Resolution)
		if !ok || r <= 0 || r >= 1 {
			c.errorAt("untilFail.resolution", "%q: want a percentage above 0%% and below 100%%, such as 10%%", uf.Resolution)
		} else {
			spec.Resolution = r
		}
	}
	plan.Search = spec
	// The start and the bound must be valid sizes for the scenario.
	for _, x := range []float64{spec.Start, spec.Max} {
		v := format(x, kind, a.Values[0])
		if _, err := scenarios.Load(plan.Sweep.scenarioPath(), plan.withAxes([]string{v})); err != nil {
			c.errorAt("untilFail", "the scenario does not accept %s=%s:\n%s", a.Param, v, indentLines(err.Error()))
		}
	}
}

func percent(s string) (float64, bool) {
	v, ok := strings.CutSuffix(strings.TrimSpace(s), "%")
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) {
		return 0, false
	}
	return f / 100, true
}

// withAxes is the sweep's set values plus the given axis values.
func (p *Plan) withAxes(values []string) map[string]string {
	set := make(map[string]string, len(p.Sweep.Set)+len(values))
	for k, v := range p.Sweep.Set {
		set[k] = v
	}
	for i, v := range values {
		set[p.Sweep.Axes[i].Param] = v
	}
	return set
}

// grid lays out every point of the grid: the second axis outermost, then the first, then the
// repeats, so that each curve is complete as early as possible.
func (c *checker) grid(plan *Plan, target string) {
	sw := plan.Sweep
	outer := []int{-1}
	if len(sw.Axes) == 2 {
		outer = make([]int, len(sw.Axes[1].Values))
		for i := range outer {
			outer[i] = i
		}
	}
	for _, o := range outer {
		for i, v := range sw.Axes[0].Values {
			values, nums := []string{v}, []float64{sw.Axes[0].nums[i]}
			if o >= 0 {
				values, nums = append(values, sw.Axes[1].Values[o]), append(nums, sw.Axes[1].nums[o])
			}
			set := plan.withAxes(values)
			s, err := scenarios.Load(target, set)
			if err != nil {
				c.errorAt(strictyaml.Index(strictyaml.Key("axes", sw.Axes[0].Param), i), "the scenario does not accept %s:\n%s", describeValues(sw, values), indentLines(err.Error()))
				continue
			}
			least, most := scenarios.Duration(s)
			for k := 1; k <= sw.Repeat; k++ {
				plan.Points = append(plan.Points, Point{
					Values: values, Nums: nums, Repeat: k, Set: set, Least: least, Most: most,
					Dir: filepath.Join("points", pointDirName(values, k)),
				})
			}
		}
	}
}

// firstPoint is the first point the sweep runs, with its durations.
func (p *Plan) firstPoint(target string) *Point {
	if len(p.Points) > 0 {
		return &p.Points[0]
	}
	if p.Search == nil {
		return nil
	}
	pt, err := p.searchPoint(p.Search.Start, 1)
	if err != nil {
		return nil
	}
	return &pt
}

// searchPoint makes the point of the limit search at axis value x.
func (p *Plan) searchPoint(x float64, k int) (Point, error) {
	v := format(x, p.kinds[0], p.Sweep.Axes[0].Values[0])
	n, _ := number(v, p.kinds[0])
	set := p.withAxes([]string{v})
	s, err := scenarios.Load(p.Sweep.scenarioPath(), set)
	if err != nil {
		return Point{}, err
	}
	least, most := scenarios.Duration(s)
	return Point{Values: []string{v}, Nums: []float64{n}, Repeat: k, Set: set, Least: least, Most: most,
		Dir: filepath.Join("points", pointDirName([]string{v}, k))}, nil
}

// pointDirName is "<value>[-<value>]-<k>", with anything but letters, digits, dots and
// dashes made safe for a file name.
func pointDirName(values []string, k int) string {
	parts := make([]string, 0, len(values)+1)
	for _, v := range values {
		v = strings.ReplaceAll(v, "/", "per")
		parts = append(parts, strings.Map(func(r rune) rune {
			if r == '.' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
				return r
			}
			return '_'
		}, v))
	}
	return strings.Join(append(parts, strconv.Itoa(k)), "-")
}

func describeValues(sw *Sweep, values []string) string {
	parts := make([]string, len(values))
	for i, v := range values {
		parts[i] = sw.Axes[i].Param + "=" + v
	}
	return strings.Join(parts, " ")
}

func describePoint(p *Plan, pt Point) string {
	return describeValues(p.Sweep, pt.Values)
}

func indentLines(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n  ")
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
