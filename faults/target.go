package faults

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
)

// Target selects the DSNs a DSN fault acts on: those carrying every label in Labels and, when DSNs
// is set, named in it; then all of them, Count of them or a Fraction of them, chosen at random
// with the environment's seed. Control-plane faults take an empty Target.
type Target struct {
	Labels map[string]string
	DSNs   []string
	// Units names fleet units (network faults: the links of those units).
	Units []string
	// Fraction in (0, 1]; 0 means unset.
	Fraction float64
	// Count of DSNs; 0 means unset. Count and Fraction are exclusive.
	Count int
	// Probability, when in (0, 1), keeps each chosen DSN with that chance (seeded like the
	// rest); 0 means unset (every chosen DSN). It may leave none.
	Probability float64
}

// IsZero reports whether the target selects nothing in particular (every DSN); a probability
// alone leaves it zero.
func (t Target) IsZero() bool {
	return len(t.Labels) == 0 && len(t.DSNs) == 0 && len(t.Units) == 0 && t.Fraction == 0 && t.Count == 0
}

// Validate checks the target on its own.
func (t Target) Validate() error {
	switch {
	case t.Fraction < 0 || t.Fraction > 1 || math.IsNaN(t.Fraction):
		return specErr("target.fraction", "%g is not in (0, 1] (write 25%% or 0.25)", t.Fraction)
	case t.Count < 0:
		return specErr("target.count", "%d is negative", t.Count)
	case t.Fraction > 0 && t.Count > 0:
		return specErr("target", "fraction and count are exclusive")
	case t.Probability < 0 || t.Probability > 1 || math.IsNaN(t.Probability):
		return specErr("probability", "%g is not in (0, 1] (write 30%% or 0.3)", t.Probability)
	}
	for i, id := range t.DSNs {
		if strings.TrimSpace(id) == "" {
			return specErr(fmt.Sprintf("target.dsns[%d]", i), "empty DSN id")
		}
	}
	for i, u := range t.Units {
		if strings.TrimSpace(u) == "" {
			return specErr(fmt.Sprintf("target.units[%d]", i), "empty unit name")
		}
	}
	return nil
}

// String renders the target for plans and records.
func (t Target) String() string {
	var parts []string
	if len(t.Labels) > 0 {
		keys := make([]string, 0, len(t.Labels))
		for k := range t.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		kv := make([]string, len(keys))
		for i, k := range keys {
			kv[i] = k + "=" + t.Labels[k]
		}
		parts = append(parts, "labels "+strings.Join(kv, ","))
	}
	if len(t.DSNs) > 0 {
		parts = append(parts, fmt.Sprintf("%d named DSNs", len(t.DSNs)))
	}
	if len(t.Units) > 0 {
		parts = append(parts, "units "+strings.Join(t.Units, ","))
	}
	switch {
	case t.Count > 0:
		parts = append(parts, fmt.Sprintf("%d of them", t.Count))
	case t.Fraction > 0:
		parts = append(parts, fmt.Sprintf("%s of them", formatPercent(t.Fraction)))
	}
	if t.Probability > 0 && t.Probability < 1 {
		if len(parts) == 0 {
			parts = append(parts, "all DSNs")
		}
		parts = append(parts, fmt.Sprintf("each with probability %s", formatPercent(t.Probability)))
	}
	if len(parts) == 0 {
		return "all DSNs"
	}
	return strings.Join(parts, ", ")
}

func formatPercent(f float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.4f", f*100), "0"), ".") + "%"
}

// Select returns the ids of the DSNs that t chooses among dsns, sorted. seed makes the random
// choice for Count and Fraction reproducible.
func Select(dsns []DSN, t Target, seed int64) ([]string, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	var named map[string]bool
	if len(t.DSNs) > 0 {
		named = make(map[string]bool, len(t.DSNs))
		for _, id := range t.DSNs {
			named[id] = true
		}
	}
	var ids []string
	for _, d := range dsns {
		if named != nil && !named[d.ID] {
			continue
		}
		if !labelsMatch(t.Labels, d.Labels) {
			continue
		}
		ids = append(ids, d.ID)
	}
	if named != nil && len(ids) < len(named) {
		have := make(map[string]bool, len(ids))
		for _, id := range ids {
			have[id] = true
		}
		for _, id := range t.DSNs {
			if !have[id] {
				return nil, fmt.Errorf("%w: DSN %q is not in the fleet or lacks the labels", ErrNoTargets, id)
			}
		}
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNoTargets, t)
	}
	sort.Strings(ids)
	want := len(ids)
	switch {
	case t.Count > 0:
		if t.Count > len(ids) {
			return nil, fmt.Errorf("%w: count %d exceeds the %d matching DSNs", ErrNoTargets, t.Count, len(ids))
		}
		want = t.Count
	case t.Fraction > 0:
		want = int(math.Ceil(t.Fraction * float64(len(ids))))
	}
	r := rand.New(rand.NewPCG(uint64(seed), 0x6661756c7473))
	if want < len(ids) {
		r.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
		ids = ids[:want]
		sort.Strings(ids)
	}
	if t.Probability > 0 && t.Probability < 1 {
		kept := ids[:0]
		for _, id := range ids {
			if r.Float64() < t.Probability {
				kept = append(kept, id)
			}
		}
		ids = kept
	}
	return ids, nil
}

func labelsMatch(want, have map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}
