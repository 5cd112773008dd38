package loadgen

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Rate is a number of iterations per second. Its text form is "N/s", "N/m" or "N/h" (N a
// non-negative decimal number), so it reads naturally in YAML, JSON and flags.
type Rate float64

// ParseRate parses "N/s", "N/m" or "N/h". A unit is required: a bare number is ambiguous.
func ParseRate(s string) (Rate, error) {
	num, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return 0, fmt.Errorf("%w: rate %q has no unit: want N/s, N/m or N/h (for example 2000/s)", ErrInvalidConfig, s)
	}
	var per float64
	switch unit {
	case "s":
		per = 1
	case "m":
		per = 60
	case "h":
		per = 3600
	default:
		return 0, fmt.Errorf("%w: rate %q: unit %q is not s, m or h", ErrInvalidConfig, s, unit)
	}
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(n) || math.IsInf(n, 0) || strings.ContainsAny(num, "xXpP_") {
		return 0, fmt.Errorf("%w: rate %q: %q is not a decimal number", ErrInvalidConfig, s, num)
	}
	if n < 0 {
		return 0, fmt.Errorf("%w: rate %q is negative", ErrInvalidConfig, s)
	}
	return Rate(n / per), nil
}

// PerSecond returns the rate as iterations per second.
func (r Rate) PerSecond() float64 { return float64(r) }

// String renders the rate as "N/s".
func (r Rate) String() string {
	return strconv.FormatFloat(float64(r), 'f', -1, 64) + "/s"
}

// MarshalText renders the rate as "N/s".
func (r Rate) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText parses "N/s", "N/m" or "N/h".
func (r *Rate) UnmarshalText(b []byte) error {
	v, err := ParseRate(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// UnmarshalYAML parses the rate and reports a bad one with its line, the way yaml.v3 reports
// its own type errors, so a scenario file points at the right place.
func (r *Rate) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: rate must be a scalar such as 2000/s", n.Line)}}
	}
	v, err := ParseRate(n.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %s", n.Line, strings.TrimPrefix(err.Error(), ErrInvalidConfig.Error()+": "))}}
	}
	*r = v
	return nil
}
