package trafficmap

import (
	"fmt"
	"math"
	"strings"

	"github.com/dsnscale/dsnscale/controlplane/wire"
	"github.com/dsnscale/dsnscale/internal/registry"
	"github.com/dsnscale/dsnscale/internal/strictyaml"
)

// checker reports problems at the decoded fields' places.
type checker struct{ d *strictyaml.Decoder }

func (c *checker) errorf(path, format string, args ...any) { c.d.ErrorAt(path, format, args...) }

func (c *checker) nonNegative(path string, v float64) {
	if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		c.errorf(path, "must be a non-negative number, got %v", v)
	}
}

func (c *checker) probability(path string, v float64) {
	if !(v >= 0 && v <= 1) {
		c.errorf(path, "probability %v is outside [0,1]", v)
	}
}

func (c *checker) name(path, kind, v string) {
	if !wire.ValidID(v) {
		c.errorf(path, "%s name %q is not 1-128 characters of [A-Za-z0-9_-]", kind, v)
	}
}

func (m *Map) validate(d *strictyaml.Decoder, stages StageNames) error {
	c := &checker{d: d}
	d.CheckHeader(strictyaml.Header{APIVersion: m.APIVersion, Kind: m.Kind}, Kind)
	if m.Name == "" {
		c.errorf("name", "a traffic map needs a name")
	}
	if m.Heartbeat < 0 {
		c.errorf("heartbeat", "must not be negative, got %v", m.Heartbeat)
	}
	if m.Total < 0 {
		c.errorf("total", "must not be negative, got %d", m.Total)
	}
	if len(m.Sites) == 0 {
		c.errorf("sites", "a traffic map needs at least one site")
	}
	siteCap := map[string]int{}
	racks := map[string]bool{}
	rackSum := 0
	for i, s := range m.Sites {
		p := fmt.Sprintf("sites[%d]", i)
		c.name(p+".name", "site", s.Name)
		if _, dup := siteCap[s.Name]; dup {
			c.errorf(p+".name", "site %q is defined twice", s.Name)
		}
		siteCap[s.Name] = 0
		if len(s.Racks) == 0 {
			c.errorf(p+".racks", "site %q needs at least one rack", s.Name)
		}
		for j, r := range s.Racks {
			rp := fmt.Sprintf("%s.racks[%d]", p, j)
			c.name(rp+".name", "rack", r.Name)
			if racks[r.Name] {
				c.errorf(rp+".name", "rack %q is defined twice", r.Name)
			}
			racks[r.Name] = true
			if r.DSNs < 0 {
				c.errorf(rp+".dsns", "must not be negative, got %d", r.DSNs)
			}
			siteCap[s.Name] += r.DSNs
			rackSum += r.DSNs
		}
	}
	if len(m.Groups) == 0 {
		c.errorf("groups", "a traffic map needs at least one group")
	}
	placed := map[string]int{}
	groups := map[string]bool{}
	groupSum := 0
	for i := range m.Groups {
		g := &m.Groups[i]
		p := fmt.Sprintf("groups[%d]", i)
		c.name(p+".name", "group", g.Name)
		if groups[g.Name] {
			c.errorf(p+".name", "group %q is defined twice", g.Name)
		}
		groups[g.Name] = true
		site := g.Site
		if site == "" && len(m.Sites) == 1 {
			site = m.Sites[0].Name
		}
		if _, ok := siteCap[site]; !ok {
			if g.Site == "" {
				c.errorf(p+".site", "the map has %d sites: say which one group %q is in", len(m.Sites), g.Name)
			} else {
				c.errorf(p+".site", "unknown site %q", g.Site)
			}
		}
		if g.Count < 0 {
			c.errorf(p+".count", "must not be negative, got %d", g.Count)
		}
		placed[site] += g.Count
		groupSum += g.Count
		c.labels(p+".labels", g.Labels)
		c.group(p, g, stages)
	}
	for i, s := range m.Sites {
		if n, ok := placed[s.Name]; ok || siteCap[s.Name] > 0 {
			if n != siteCap[s.Name] {
				c.errorf(fmt.Sprintf("sites[%d].racks", i), "counts do not add up: the racks of site %q hold %d DSNs but its groups have %d", s.Name, siteCap[s.Name], n)
			}
		}
	}
	if m.Total > 0 && groupSum != m.Total {
		c.errorf("total", "counts do not add up: total is %d but the groups have %d DSNs (racks hold %d)", m.Total, groupSum, rackSum)
	}
	if groupSum == 0 && len(m.Groups) > 0 {
		c.errorf("groups", "the groups have no DSNs")
	}
	return d.Err()
}

func (c *checker) labels(path string, labels map[string]string) {
	if len(labels) > wire.MaxLabels-3 {
		c.errorf(path, "%d labels, at most %d (site, rack and group are added)", len(labels), wire.MaxLabels-3)
	}
	for k, v := range labels {
		switch {
		case k == "" || len(k) > wire.MaxLabelKeyLen || strings.ContainsAny(k, "=,"):
			c.errorf(path+"."+k, "label key %q must be 1-%d bytes without '=' or ','", k, wire.MaxLabelKeyLen)
		case len(v) > wire.MaxLabelValueLen || strings.Contains(v, ","):
			c.errorf(path+"."+k, "label value %q must be at most %d bytes without ','", v, wire.MaxLabelValueLen)
		}
	}
}

func (c *checker) group(p string, g *Group, stages StageNames) {
	if stages != nil {
		set := g.Stages
		if set == "" {
			set = "default"
		}
		if !stages.HasSet(set) {
			c.errorf(p+".stages", "unknown stage set %q%s", set, registry.Suggest(set, stages.SetNames()))
		}
		for i, mb := range g.Misbehaviours {
			if _, ok := stages.Misbehaviour(mb); !ok {
				c.errorf(fmt.Sprintf("%s.misbehaviours[%d]", p, i), "unknown misbehaviour %q%s", mb, registry.Suggest(mb, stages.MisbehaviourNames()))
			}
		}
	}
	t := &g.Traffic
	c.nonNegative(p+".traffic.connectionsPerSecond", t.ConnectionsPerSecond)
	if t.ActiveFlows < 0 {
		c.errorf(p+".traffic.activeFlows", "must not be negative, got %d", t.ActiveFlows)
	}
	if t.Endpoints < 0 {
		c.errorf(p+".traffic.endpoints", "must not be negative, got %d", t.Endpoints)
	}
	sum := 0.0
	for i, f := range t.Flows {
		fp := fmt.Sprintf("%s.traffic.flows[%d]", p, i)
		c.probability(fp+".probability", f.Probability)
		sum += f.Probability
		switch f.Protocol {
		case "", "any", "tcp", "udp", "icmp":
		default:
			c.errorf(fp+".protocol", "unknown protocol %q (want tcp, udp, icmp or any)", f.Protocol)
		}
		if f.Port < 0 || f.Port > 65535 {
			c.errorf(fp+".port", "port %d is outside 0-65535", f.Port)
		}
		c.labels(fp+".from.labels", f.From.Labels)
		c.labels(fp+".to.labels", f.To.Labels)
	}
	if len(t.Flows) > 0 && math.Abs(sum-1) > 1e-6 {
		c.errorf(p+".traffic.flows", "flow probabilities add up to %v, not 1", sum)
	}
	if len(t.Flows) == 0 && t.ConnectionsPerSecond > 0 {
		c.errorf(p+".traffic.flows", "a group with connections needs a flow mix")
	}
	d := t.Diurnal
	c.probability(p+".traffic.diurnal.amplitude", d.Amplitude)
	if d.PeakHour < 0 || d.PeakHour >= 24 {
		c.errorf(p+".traffic.diurnal.peakHour", "must be in [0,24), got %v", d.PeakHour)
	}
	if d.DayLength < 0 {
		c.errorf(p+".traffic.diurnal.dayLength", "must not be negative, got %v", d.DayLength)
	}
	b := t.Bursts
	if b.Every < 0 || b.Duration < 0 {
		c.errorf(p+".traffic.bursts", "every and duration must not be negative, got %v and %v", b.Every, b.Duration)
	}
	c.nonNegative(p+".traffic.bursts.factor", b.Factor)
	if b.Every > 0 && b.Duration > b.Every {
		c.errorf(p+".traffic.bursts.duration", "a burst of %v does not fit in every %v", b.Duration, b.Every)
	}
	if g.Telemetry.Series < 0 || (g.Telemetry.Series > 0 && g.Telemetry.Series < MinSeries) {
		c.errorf(p+".telemetry.series", "must be at least %d (the core series), got %d", MinSeries, g.Telemetry.Series)
	}
	if g.Telemetry.Interval < 0 {
		c.errorf(p+".telemetry.interval", "must not be negative, got %v", g.Telemetry.Interval)
	}
	c.nonNegative(p+".events.perMinute", g.Events.PerMinute)
}
