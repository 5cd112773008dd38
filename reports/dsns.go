package reports

import (
	"math"
	"sort"
)

// DSNFigure is one figure measured per DSN (recovery time, convergence lag, corrective actions,
// restarts, dropped acks): its distribution over the fleet, the DSNs that stood out from it and
// how groups of DSNs (by site, rack, group or another label) compare.
//
// A DSN stands out when its robust z-score, 0.6745 (value - median) / MAD, is at least
// OutlierZ. Where more than half the fleet has the same value (MAD 0), the mean absolute
// deviation from the median stands in for the MAD (scaled by 1.2533, as the MAD by 0.6745,
// to estimate a standard deviation). Only high values stand out: every per-DSN figure is one
// where more is worse.
type DSNFigure struct {
	Name  string `json:"name"`
	Label string `json:"label"`
	Unit  string `json:"unit,omitempty"`
	// Note says how the values were taken.
	Note string `json:"note,omitempty"`
	// Missing says why the figure has no values.
	Missing string `json:"missing,omitempty"`
	// DSNs is how many DSNs have a value; Censored how many of them had not got there by the end
	// of the run (their value is a lower bound).
	DSNs     int     `json:"dsns,omitempty"`
	Censored int     `json:"censored,omitempty"`
	Median   float64 `json:"median"`
	MAD      float64 `json:"mad"`
	P90      float64 `json:"p90"`
	Max      float64 `json:"max"`
	// Outliers is how many DSNs stood out.
	Outliers  int   `json:"outliers"`
	Histogram []Bin `json:"histogram,omitempty"`
	// Top are the DSNs that stood out, highest first (at most maxTopDSNs), or when none did,
	// the few highest.
	Top []DSNScore `json:"top,omitempty"`
	// Groups compare the DSNs of each label value (site, rack, group, ...) with the fleet.
	Groups []GroupScore `json:"groups,omitempty"`
}

// Bin is one bar of a histogram: Count values in [From, To) (the last bin includes To).
type Bin struct {
	From  float64 `json:"from"`
	To    float64 `json:"to"`
	Count int     `json:"count"`
}

// DSNScore is one DSN's value and robust z-score.
type DSNScore struct {
	DSN      string            `json:"dsn"`
	Value    float64           `json:"value"`
	Z        float64           `json:"z"`
	Censored bool              `json:"censored,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
}

// GroupScore compares the DSNs that share one label value with the fleet: the robust z-score
// of their median against the fleet's distribution, and how many of them stood out. A group
// whose Z is at least OutlierZ stands out as a whole: its typical DSN is an outlier.
type GroupScore struct {
	Label    string  `json:"label"`
	Value    string  `json:"value"`
	DSNs     int     `json:"dsns"`
	Median   float64 `json:"median"`
	Z        float64 `json:"z"`
	Outliers int     `json:"outliers"`
}

// OutlierZ is the robust z-score at which a DSN or a group stands out (Iglewicz and Hoaglin's
// cut-off for the modified z-score).
const OutlierZ = 3.5

// Bounds of a DSNFigure's lists.
const (
	maxTopDSNs     = 20
	minTopDSNs     = 5
	maxHistBins    = 20
	maxLabelGroups = 12 // a label with more values keeps only the groups that stand out and the highest
)

// StandsOut reports whether a score is an outlier.
func StandsOut(z float64) bool { return z >= OutlierZ }

// RobustScale returns the median of xs and the scale robust z-scores divide by: MAD/0.6745, or
// where the MAD is 0 the mean absolute deviation times 1.2533; 0 when every value is the median.
func RobustScale(xs []float64) (median, scale float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	median = medianOf(xs)
	dev := make([]float64, len(xs))
	sum := 0.0
	for i, x := range xs {
		dev[i] = math.Abs(x - median)
		sum += dev[i]
	}
	if mad := medianOf(dev); mad > 0 {
		return median, mad / 0.6745
	}
	return median, 1.2533 * sum / float64(len(xs))
}

// robustZ is x's score against a distribution of the given median and scale.
func robustZ(x, median, scale float64) float64 {
	if scale == 0 {
		return 0
	}
	return (x - median) / scale
}

func medianOf(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// AnalyseDSNs builds a DSNFigure from one value per DSN; censored marks values that are lower
// bounds, labels gives each DSN's labels for the breakdown by group.
func AnalyseDSNs(name, label, unit string, values map[string]float64, censored map[string]bool, labels map[string]map[string]string) DSNFigure {
	f := DSNFigure{Name: name, Label: label, Unit: unit}
	ids := make([]string, 0, len(values))
	for id, v := range values {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	if len(ids) == 0 {
		f.Missing = "no DSN has a value"
		return f
	}
	xs := make([]float64, len(ids))
	for i, id := range ids {
		xs[i] = values[id]
		if censored[id] {
			f.Censored++
		}
	}
	median, scale := RobustScale(xs)
	sorted := append([]float64(nil), xs...)
	sort.Float64s(sorted)
	dev := make([]float64, len(xs))
	for i, x := range xs {
		dev[i] = math.Abs(x - median)
	}
	f.DSNs, f.Median, f.MAD = len(ids), median, medianOf(dev)
	f.P90 = sorted[int(math.Ceil(0.9*float64(len(sorted))))-1]
	f.Max = sorted[len(sorted)-1]
	f.Histogram = histogram(sorted)

	scores := make([]DSNScore, len(ids))
	for i, id := range ids {
		scores[i] = DSNScore{DSN: id, Value: xs[i], Z: robustZ(xs[i], median, scale), Censored: censored[id]}
		if StandsOut(scores[i].Z) {
			f.Outliers++
		}
	}
	byValue := append([]DSNScore(nil), scores...)
	sort.SliceStable(byValue, func(i, j int) bool { return byValue[i].Value > byValue[j].Value })
	keep := min(max(f.Outliers, minTopDSNs), maxTopDSNs, len(byValue))
	for _, s := range byValue[:keep] {
		s.Labels = labels[s.DSN]
		f.Top = append(f.Top, s)
	}
	f.Groups = groupScores(ids, xs, scores, labels, median, scale)
	return f
}

// histogram bins sorted values: one bin per integer when they are whole numbers over a short
// range, else maxHistBins bins of equal width.
func histogram(sorted []float64) []Bin {
	lo, hi := sorted[0], sorted[len(sorted)-1]
	whole := true
	for _, x := range sorted {
		whole = whole && x == math.Trunc(x)
	}
	var bins []Bin
	switch {
	case whole && hi-lo < maxHistBins:
		for v := lo; v <= hi; v++ {
			bins = append(bins, Bin{From: v, To: v + 1})
		}
	case hi == lo:
		bins = []Bin{{From: lo, To: hi}}
	default:
		w := (hi - lo) / maxHistBins
		for i := 0; i < maxHistBins; i++ {
			bins = append(bins, Bin{From: lo + float64(i)*w, To: lo + float64(i+1)*w})
		}
		bins[len(bins)-1].To = hi
	}
	for _, x := range sorted {
		i := 0
		if len(bins) > 1 {
			i = int((x - lo) / (bins[0].To - bins[0].From))
			i = max(0, min(i, len(bins)-1))
		}
		bins[i].Count++
	}
	return bins
}

// groupScores compares each label value's DSNs with the fleet, for every label that splits the
// fleet into groups of more than one DSN.
func groupScores(ids []string, xs []float64, scores []DSNScore, labels map[string]map[string]string, median, scale float64) []GroupScore {
	type group struct {
		xs       []float64
		outliers int
	}
	byKey := map[string]map[string]*group{}
	for i, id := range ids {
		for k, v := range labels[id] {
			if byKey[k] == nil {
				byKey[k] = map[string]*group{}
			}
			g := byKey[k][v]
			if g == nil {
				g = &group{}
				byKey[k][v] = g
			}
			g.xs = append(g.xs, xs[i])
			if StandsOut(scores[i].Z) {
				g.outliers++
			}
		}
	}
	var out []GroupScore
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		groups := byKey[k]
		shared := false
		for _, g := range groups {
			shared = shared || len(g.xs) > 1
		}
		if len(groups) < 2 || !shared {
			continue // one group is the fleet; one DSN per value is a name, not a group
		}
		var gs []GroupScore
		for v, g := range groups {
			m := medianOf(g.xs)
			gs = append(gs, GroupScore{Label: k, Value: v, DSNs: len(g.xs), Median: m, Z: robustZ(m, median, scale), Outliers: g.outliers})
		}
		sort.Slice(gs, func(i, j int) bool {
			if gs[i].Z != gs[j].Z {
				return gs[i].Z > gs[j].Z
			}
			return gs[i].Value < gs[j].Value
		})
		if len(gs) > maxLabelGroups {
			n := 0
			for n < len(gs) && (StandsOut(gs[n].Z) || n < 3) && n < maxTopDSNs {
				n++
			}
			gs = gs[:n]
		}
		out = append(out, gs...)
	}
	return out
}
