package dataplane

import (
	"fmt"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/simdsn/trafficmap"
)

// Split is the predicted share of a group's new flows that are allowed and denied, and the
// share each decision takes (keyed by Decision.Label).
type Split struct {
	Allowed  float64
	Denied   float64
	PerLabel map[string]float64
}

// Predict computes the allowed/denied split a group's DSNs should show under a set of objects
// (the Policy objects among them count), for a fleet of count DSNs laid out from the map (0:
// the map's own size). DSNs of a group can differ in labels (site, rack), so the split is the
// average over the group's DSNs, weighted by their connection rate, which is the same for all.
func Predict(m *trafficmap.Map, count int, group string, objects []*model.Object) (Split, error) {
	g, ok := m.Group(group)
	if !ok {
		return Split{}, fmt.Errorf("dataplane: map %s has no group %q", m.Name, group)
	}
	placements, err := m.Place(count, "p")
	if err != nil {
		return Split{}, err
	}
	out := Split{PerLabel: map[string]float64{}}
	n := 0
	cache := map[string]*Table{}
	for i := range placements {
		p := &placements[i]
		if p.Group != group {
			continue
		}
		key := model.SortedLabels(p.Labels)
		t, ok := cache[key]
		if !ok {
			policies, _ := PoliciesFor(objects, p.Labels)
			t = NewTable(policies, g.Traffic.Flows)
			cache[key] = t
		}
		n++
		out.Allowed += t.Allowed
		for _, b := range t.Buckets {
			out.PerLabel[b.Decision.Label()] += b.Probability
		}
	}
	if n == 0 {
		return out, nil
	}
	out.Allowed /= float64(n)
	out.Denied = 1 - out.Allowed
	for k := range out.PerLabel {
		out.PerLabel[k] /= float64(n)
	}
	return out, nil
}
