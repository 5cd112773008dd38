package trafficmap

import (
	"fmt"
	"maps"
	"sort"
)

// Placement is one DSN of a fleet built from a map.
type Placement struct {
	ID     string
	Group  string
	Site   string
	Rack   string
	Labels map[string]string
}

// Label keys every DSN gets, unless its group's labels set them.
const (
	LabelSite  = "site"
	LabelRack  = "rack"
	LabelGroup = "group"
)

// Place lays out a fleet of count DSNs (0: the map's own count) over the map's racks. Group
// counts and rack sizes are scaled to count by largest remainder, site by site, so the fleet
// keeps the map's shape; DSNs of a site's groups are dealt round-robin over its racks. IDs are
// prefix followed by a zero-padded index. DSNs that share labels share one labels map.
func (m *Map) Place(count int, prefix string) ([]Placement, error) {
	total := m.DSNs()
	if count == 0 {
		count = total
	}
	if count < 0 {
		return nil, fmt.Errorf("%w: count %d must not be negative", ErrInvalid, count)
	}
	if total == 0 {
		return nil, fmt.Errorf("%w: the map places no DSNs", ErrInvalid)
	}
	weights := make([]int, len(m.Groups))
	for i, g := range m.Groups {
		weights[i] = g.Count
	}
	counts := scale(weights, count)
	width := len(fmt.Sprint(max(count-1, 1)))
	out := make([]Placement, 0, count)
	labelSets := map[string]map[string]string{}
	for _, site := range m.Sites {
		var gi []int
		need := 0
		for i, g := range m.Groups {
			s := g.Site
			if s == "" && len(m.Sites) == 1 {
				s = site.Name
			}
			if s == site.Name {
				gi = append(gi, i)
				need += counts[i]
			}
		}
		caps := make([]int, len(site.Racks))
		for i, r := range site.Racks {
			caps[i] = r.DSNs
		}
		free := scale(caps, need)
		r := 0
		for _, i := range gi {
			g := &m.Groups[i]
			for n := 0; n < counts[i]; n++ {
				for free[r] == 0 {
					r = (r + 1) % len(free)
				}
				free[r]--
				rack := site.Racks[r].Name
				key := g.Name + "\x00" + rack
				labels, ok := labelSets[key]
				if !ok {
					labels = maps.Clone(g.Labels)
					if labels == nil {
						labels = map[string]string{}
					}
					for k, v := range map[string]string{LabelSite: site.Name, LabelRack: rack, LabelGroup: g.Name} {
						if _, set := labels[k]; !set {
							labels[k] = v
						}
					}
					labelSets[key] = labels
				}
				out = append(out, Placement{
					ID:     fmt.Sprintf("%s%0*d", prefix, width, len(out)),
					Group:  g.Name,
					Site:   site.Name,
					Rack:   rack,
					Labels: labels,
				})
				r = (r + 1) % len(free)
			}
		}
	}
	return out, nil
}

// scale splits total in proportion to weights by largest remainder; the result adds up to
// total exactly (if the weights are all zero, it is spread evenly).
func scale(weights []int, total int) []int {
	out := make([]int, len(weights))
	sum := 0
	for _, w := range weights {
		sum += w
	}
	if len(weights) == 0 {
		return out
	}
	if sum == 0 {
		for i := range out {
			out[i] = total / len(out)
		}
		for i := 0; i < total%len(out); i++ {
			out[i]++
		}
		return out
	}
	type rem struct {
		i int
		r int64
	}
	rems := make([]rem, len(weights))
	given := 0
	for i, w := range weights {
		exact := int64(w) * int64(total)
		out[i] = int(exact / int64(sum))
		given += out[i]
		rems[i] = rem{i, exact % int64(sum)}
	}
	sort.SliceStable(rems, func(a, b int) bool { return rems[a].r > rems[b].r })
	for k := 0; given < total; k++ {
		out[rems[k%len(rems)].i]++
		given++
	}
	return out
}
