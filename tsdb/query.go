package tsdb

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
)

// MatchType is how a Matcher compares a label's value.
type MatchType int

// Match types, as in PromQL: =, !=, =~, !~. A series without the label has the empty value.
const (
	MatchEqual MatchType = iota
	MatchNotEqual
	MatchRegexp
	MatchNotRegexp
)

func (t MatchType) String() string {
	switch t {
	case MatchEqual:
		return "="
	case MatchNotEqual:
		return "!="
	case MatchRegexp:
		return "=~"
	case MatchNotRegexp:
		return "!~"
	}
	return fmt.Sprintf("MatchType(%d)", int(t))
}

// Matcher selects series by one label. Regular expressions use RE2 syntax and must match the
// whole value, as in PromQL.
type Matcher struct {
	Type  MatchType
	Name  string
	Value string
}

// Equal matches series whose label name has exactly value.
func Equal(name, value string) Matcher { return Matcher{MatchEqual, name, value} }

// NotEqual matches series whose label name does not have value.
func NotEqual(name, value string) Matcher { return Matcher{MatchNotEqual, name, value} }

// Regexp matches series whose label name fully matches the regular expression re.
func Regexp(name, re string) Matcher { return Matcher{MatchRegexp, name, re} }

// NotRegexp matches series whose label name does not fully match the regular expression re.
func NotRegexp(name, re string) Matcher { return Matcher{MatchNotRegexp, name, re} }

// MetricName matches series of one metric.
func MetricName(name string) Matcher { return Equal(MetricNameLabel, name) }

func (m Matcher) String() string {
	return m.Name + m.Type.String() + strconv.Quote(m.Value)
}

// Validate checks the label name, the type and, for regular expressions, the syntax.
func (m Matcher) Validate() error {
	if m.Name != MetricNameLabel {
		if err := validateLabelName(m.Name); err != nil {
			return err
		}
	}
	switch m.Type {
	case MatchEqual, MatchNotEqual:
	case MatchRegexp, MatchNotRegexp:
		if _, err := regexp.Compile("^(?:" + m.Value + ")$"); err != nil {
			return fmt.Errorf("%w: matcher %s: %v", ErrInvalid, m, err)
		}
	default:
		return fmt.Errorf("%w: matcher on %q: unknown type %d", ErrInvalid, m.Name, int(m.Type))
	}
	return nil
}

// matchesEmpty reports whether the matcher selects series that lack its label.
func (m Matcher) matchesEmpty() bool {
	pm, err := m.prom()
	return err == nil && pm.Matches("")
}

func (m Matcher) prom() (*labels.Matcher, error) {
	t := map[MatchType]labels.MatchType{
		MatchEqual: labels.MatchEqual, MatchNotEqual: labels.MatchNotEqual,
		MatchRegexp: labels.MatchRegexp, MatchNotRegexp: labels.MatchNotRegexp,
	}[m.Type]
	return labels.NewMatcher(t, m.Name, m.Value)
}

// validateMatchers checks matchers as PromQL does: at least one, and at least one that does not
// match the empty value, so that no selector means "every series".
func validateMatchers(ms []Matcher) error {
	if len(ms) == 0 {
		return fmt.Errorf("%w: no matchers", ErrInvalid)
	}
	nonEmpty := false
	for _, m := range ms {
		if err := m.Validate(); err != nil {
			return err
		}
		if !m.matchesEmpty() {
			nonEmpty = true
		}
	}
	if !nonEmpty {
		return fmt.Errorf("%w: matchers %s: at least one must not match the empty value", ErrInvalid, selector(ms))
	}
	return nil
}

// MaxSteps bounds the points per series a stepped query returns.
const MaxSteps = 11000

// Query selects series and a time range.
type Query struct {
	// Matchers must all match; see validateMatchers for the rule they follow.
	Matchers []Matcher
	// From and To bound the samples, both inclusive, at millisecond precision.
	From, To time.Time
	// Step, when not zero, asks for one point per series at From, From+Step, ... up to To: the
	// last sample in (t-Step, t], omitted when there is none. When zero, the stored samples.
	Step time.Duration
}

// Validate checks the matchers and the range.
func (q Query) Validate() error {
	if err := validateMatchers(q.Matchers); err != nil {
		return err
	}
	if q.From.IsZero() || q.To.IsZero() {
		return fmt.Errorf("%w: query %s: from and to are required", ErrInvalid, selector(q.Matchers))
	}
	if q.To.Before(q.From) {
		return fmt.Errorf("%w: query %s: to (%v) is before from (%v)", ErrInvalid, selector(q.Matchers), q.To, q.From)
	}
	if q.Step < 0 || (q.Step > 0 && q.Step < time.Millisecond) || q.Step%time.Millisecond != 0 {
		return fmt.Errorf("%w: query %s: step %v: want 0 or a positive whole number of milliseconds", ErrInvalid, selector(q.Matchers), q.Step)
	}
	if q.Step > 0 && q.To.Sub(q.From)/q.Step >= MaxSteps {
		return fmt.Errorf("%w: query %s: %v / step %v exceeds %d points per series", ErrInvalid, selector(q.Matchers), q.To.Sub(q.From), q.Step, MaxSteps)
	}
	return nil
}

// selector renders matchers as a PromQL series selector.
func selector(ms []Matcher) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// stepSamples turns samples (ascending) into one point per step: at each t = from + k*step up to
// to, the last sample in (t-step, t].
func stepSamples(samples []Sample, from, to time.Time, step time.Duration) []Sample {
	var out []Sample
	i := 0
	for t := from; !t.After(to); t = t.Add(step) {
		lo := t.Add(-step)
		for i < len(samples) && !samples[i].Time.After(lo) {
			i++
		}
		j := i
		for j < len(samples) && !samples[j].Time.After(t) {
			j++
		}
		if j > i {
			out = append(out, Sample{Time: t, Value: samples[j-1].Value})
		}
		i = j
	}
	return out
}
