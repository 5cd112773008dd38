package tsdb

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/prompbmarshal"
	"github.com/VictoriaMetrics/VictoriaMetrics/lib/promutils"
	"github.com/prometheus/prometheus/model/labels"
)

// Limits on label sets, shared by every implementation so that a series one accepts is accepted
// by all.
const (
	MaxLabels          = 64
	MaxLabelNameLength = 128
	MaxLabelValueBytes = 2048
)

// Labels builds a label set from a metric name and name/value pairs, sorted.
func Labels(metric string, pairs ...string) *promutils.Labels {
	ls := promutils.NewLabels(1 + len(pairs)/2)
	ls.Add(MetricNameLabel, metric)
	for i := 0; i+1 < len(pairs); i += 2 {
		ls.Add(pairs[i], pairs[i+1])
	}
	ls.Sort()
	return ls
}

// ValidateLabels checks a series' label set: a __name__ label holding a metric name
// ([a-zA-Z_:][a-zA-Z0-9_:]*), label names [a-zA-Z_][a-zA-Z0-9_]* not starting with "__" (other
// than __name__), each name once, every value non-empty UTF-8, within the package limits.
func ValidateLabels(ls *promutils.Labels) error {
	l := ls.GetLabels()
	if len(l) == 0 {
		return fmt.Errorf("%w: empty label set", ErrInvalid)
	}
	if len(l) > MaxLabels {
		return fmt.Errorf("%w: %d labels: at most %d", ErrInvalid, len(l), MaxLabels)
	}
	if name, dup := duplicateName(l); dup {
		return fmt.Errorf("%w: label %q appears twice", ErrInvalid, name)
	}
	hasName := false
	for _, lb := range l {
		if lb.Name == MetricNameLabel {
			hasName = true
			if !validMetricName(lb.Value) {
				return fmt.Errorf("%w: metric name %q: want [a-zA-Z_:][a-zA-Z0-9_:]*", ErrInvalid, lb.Value)
			}
			continue
		}
		if err := validateLabelName(lb.Name); err != nil {
			return err
		}
		if strings.HasPrefix(lb.Name, "__") {
			return fmt.Errorf("%w: label name %q: names starting with __ are reserved", ErrInvalid, lb.Name)
		}
		if lb.Value == "" {
			return fmt.Errorf("%w: label %q has an empty value (omit the label instead)", ErrInvalid, lb.Name)
		}
		if len(lb.Value) > MaxLabelValueBytes || !utf8.ValidString(lb.Value) {
			return fmt.Errorf("%w: label %q: value must be valid UTF-8 of at most %d bytes", ErrInvalid, lb.Name, MaxLabelValueBytes)
		}
	}
	if !hasName {
		return fmt.Errorf("%w: label set %s has no %s label", ErrInvalid, ls.String(), MetricNameLabel)
	}
	return nil
}

// duplicateName finds a label name that appears twice; sorted sets (the usual case) need no map.
func duplicateName(l []prompbmarshal.Label) (string, bool) {
	sorted := true
	for i := 1; i < len(l); i++ {
		switch c := strings.Compare(l[i-1].Name, l[i].Name); {
		case c == 0:
			return l[i].Name, true
		case c > 0:
			sorted = false
		}
	}
	if sorted {
		return "", false
	}
	seen := make(map[string]struct{}, len(l))
	for _, lb := range l {
		if _, dup := seen[lb.Name]; dup {
			return lb.Name, true
		}
		seen[lb.Name] = struct{}{}
	}
	return "", false
}

func validateLabelName(name string) error {
	if name == "" || len(name) > MaxLabelNameLength {
		return fmt.Errorf("%w: label name %q: want 1-%d characters", ErrInvalid, name, MaxLabelNameLength)
	}
	for i, c := range name {
		ok := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9')
		if !ok {
			return fmt.Errorf("%w: label name %q: want [a-zA-Z_][a-zA-Z0-9_]*", ErrInvalid, name)
		}
	}
	return nil
}

func validMetricName(name string) bool {
	if name == "" || len(name) > MaxLabelNameLength {
		return false
	}
	for i, c := range name {
		ok := c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9')
		if !ok {
			return false
		}
	}
	return true
}

// validateSample checks a sample's time and value: a time at or after the Unix epoch, and a
// finite value (InfluxDB cannot store NaN or infinities, so no implementation accepts them).
func validateSample(ls *promutils.Labels, t time.Time, v float64) error {
	if t.IsZero() || t.UnixMilli() < 0 {
		return fmt.Errorf("%w: sample of %s at %v: time must be at or after 1970-01-01", ErrInvalid, ls.String(), t)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("%w: sample of %s: value %v is not finite", ErrInvalid, ls.String(), v)
	}
	return nil
}

// toPromLabels converts a validated label set.
func toPromLabels(ls *promutils.Labels, b *labels.ScratchBuilder) labels.Labels {
	b.Reset()
	for _, l := range ls.GetLabels() {
		b.Add(l.Name, l.Value)
	}
	b.Sort()
	return b.Labels()
}

// fromPromLabels converts a Prometheus label set.
func fromPromLabels(pl labels.Labels) *promutils.Labels {
	ls := promutils.NewLabels(pl.Len())
	pl.Range(func(l labels.Label) { ls.Add(l.Name, l.Value) })
	return ls
}

// fromMap builds a sorted label set from a map.
func fromMap(m map[string]string) *promutils.Labels {
	ls := promutils.NewLabels(len(m))
	for k, v := range m {
		ls.Add(k, v)
	}
	ls.Sort()
	return ls
}

// compareLabels orders label sets the way Prometheus does: label by label, name then value.
func compareLabels(a, b *promutils.Labels) int {
	return slices.CompareFunc(a.GetLabels(), b.GetLabels(), func(x, y prompbmarshal.Label) int {
		if c := strings.Compare(x.Name, y.Name); c != 0 {
			return c
		}
		return strings.Compare(x.Value, y.Value)
	})
}

func sortSeries(ss []Series) {
	slices.SortFunc(ss, func(a, b Series) int { return compareLabels(a.Labels, b.Labels) })
}

func sortLabelSets(ls []*promutils.Labels) {
	slices.SortFunc(ls, compareLabels)
}

// millis truncates t to the millisecond all backends share.
func millis(t time.Time) time.Time { return time.UnixMilli(t.UnixMilli()).UTC() }
