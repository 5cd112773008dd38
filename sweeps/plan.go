package sweeps

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// WritePlan describes what running the plan would do: the scenario and fixed values, every
// point with how long it takes by its steps, and the total. It has no side effects.
func WritePlan(w io.Writer, p *Plan) error {
	var b strings.Builder
	sw := p.Sweep
	fmt.Fprintf(&b, "sweep %s (%s) of scenario %s (%s)\n", sw.Metadata.Name, sw.Source, p.Scenario.Metadata.Name, p.Scenario.Source)
	if d := strings.TrimSpace(sw.Metadata.Description); d != "" {
		fmt.Fprintf(&b, "  %s\n", d)
	}
	if len(sw.Set) > 0 {
		b.WriteString("\nfixed:\n")
		for _, k := range sortedKeys(sw.Set) {
			fmt.Fprintf(&b, "  %s = %s\n", k, sw.Set[k])
		}
	}
	b.WriteString("\naxes:\n")
	for _, a := range sw.Axes {
		fmt.Fprintf(&b, "  %s: %s\n", a.Param, strings.Join(a.Values, ", "))
	}
	fmt.Fprintf(&b, "runs per point: %d\n", sw.Repeat)
	if sw.Budget > 0 {
		fmt.Fprintf(&b, "budget: %s (no point starts that would not end within it)\n", sw.Budget)
	}
	if p.Search != nil {
		writeSearchPlan(&b, p)
	} else {
		fmt.Fprintf(&b, "\n%d runs:\n", len(p.Points))
		var least, most time.Duration
		for i, pt := range p.Points {
			least += pt.Least
			most += pt.Most
			fmt.Fprintf(&b, "  %3d. %s, run %d of %d -> %s  (%s)\n", i+1, describePoint(p, pt), pt.Repeat, sw.Repeat, pt.Dir, durRange(pt.Least, pt.Most))
		}
		fmt.Fprintf(&b, "total: %s by the scenario's steps, plus each run's start-up and waits\n", durRange(least, most))
	}
	fmt.Fprintf(&b, "\nmodelled against %s: %s\n", sw.Axes[0].Param, strings.Join(plannedModels(sw), ", "))
	_, err := io.WriteString(w, b.String())
	return err
}

func plannedModels(sw *Sweep) []string {
	if len(sw.Model) > 0 {
		return append(append([]string(nil), sw.Model...), FigureCPUPerDSNMin, FigureRSSBytesPerDSN)
	}
	return []string{"every SLO's value", FigureCPUSeconds, FigurePeakRSS, FigureCPUPerDSNMin, FigureRSSBytesPerDSN}
}

func writeSearchPlan(b *strings.Builder, p *Plan) {
	s := p.Search
	a := p.Sweep.Axes[0]
	var grow []string
	var least, most time.Duration
	probes := 0
	for x := s.Start; ; x = math.Min(2*x, s.Max) {
		pt, err := p.searchPoint(x, 1)
		if err == nil {
			least += pt.Least
			most += pt.Most
			grow = append(grow, pt.Values[0])
		}
		probes++
		if x >= s.Max {
			break
		}
	}
	bisect := int(math.Ceil(math.Log2(1 / s.Resolution)))
	fmt.Fprintf(b, "\nlimit search over %s: doubling from %s while every SLO holds, at most up to %s:\n  %s\n", a.Param, a.Values[0], format(s.Max, p.kinds[0], a.Values[0]), strings.Join(grow, ", "))
	fmt.Fprintf(b, "then bisecting between the last pass and the first fail until they are within %.0f%%: at most %d more sizes\n", s.Resolution*100, bisect)
	fmt.Fprintf(b, "each size runs %d time(s); the first failing run settles it\n", p.Sweep.Repeat)
	fmt.Fprintf(b, "total if every doubling passes: %s by the scenario's steps (%d runs); a failure ends the doubling early and adds at most %d sizes\n",
		durRange(least*time.Duration(p.Sweep.Repeat), most*time.Duration(p.Sweep.Repeat)), probes*p.Sweep.Repeat, bisect)
}

func durRange(least, most time.Duration) string {
	if least == most {
		return least.String()
	}
	return fmt.Sprintf("%s to %s", least, most)
}
