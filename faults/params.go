package faults

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParamType is how a parameter's text is read.
type ParamType string

// Parameter types.
const (
	TypeDuration ParamType = "duration" // "30s", "1m30s"; never negative
	TypeInt      ParamType = "int"      // a non-negative integer
	TypeBool     ParamType = "bool"     // true or false
	TypeString   ParamType = "string"
	TypeFraction ParamType = "fraction" // a share in [0, 1]: "0.3" or "30%"
)

// Param declares one parameter of a kind.
type Param struct {
	Name        string
	Type        ParamType
	Default     string // used when the spec does not set it
	Description string
}

// SpecError is a problem with one field of a spec; Field is a path relative to the spec
// ("kind", "target.fraction", "params.window").
type SpecError struct {
	Field string
	Err   error
}

func (e *SpecError) Error() string { return e.Field + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *SpecError) Unwrap() error { return e.Err }

// Is makes every *SpecError match ErrInvalidSpec.
func (e *SpecError) Is(target error) bool { return target == ErrInvalidSpec }

func specErr(field, format string, args ...any) *SpecError {
	return &SpecError{Field: field, Err: fmt.Errorf(format, args...)}
}

// CheckParams rejects parameters decl does not declare and values that do not parse as their
// type; errors are *SpecError with the field "params.NAME".
func CheckParams(decl []Param, got map[string]string) error {
	known := make(map[string]Param, len(decl))
	for _, p := range decl {
		known[p.Name] = p
	}
	for name, v := range got {
		p, ok := known[name]
		if !ok {
			return specErr("params."+name, "unknown parameter (known: %s)", paramNames(decl))
		}
		if _, err := parseParam(p.Type, v); err != nil {
			return &SpecError{Field: "params." + name, Err: err}
		}
	}
	return nil
}

func paramNames(decl []Param) string {
	if len(decl) == 0 {
		return "none"
	}
	names := make([]string, len(decl))
	for i, p := range decl {
		names[i] = p.Name
	}
	return strings.Join(names, ", ")
}

func parseParam(t ParamType, v string) (any, error) {
	switch t {
	case TypeDuration:
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("%q is not a duration (such as 30s or 1m30s)", v)
		}
		if d < 0 {
			return nil, fmt.Errorf("%q is negative", v)
		}
		return d, nil
	case TypeInt:
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%q is not a non-negative integer", v)
		}
		return n, nil
	case TypeBool:
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("%q is not true or false", v)
		}
		return b, nil
	case TypeString:
		return v, nil
	case TypeFraction:
		t := strings.TrimSpace(v)
		pct := strings.HasSuffix(t, "%")
		f, err := strconv.ParseFloat(strings.TrimSuffix(t, "%"), 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a share (such as 0.3 or 30%%)", v)
		}
		if pct {
			f /= 100
		}
		if !(f >= 0 && f <= 1) {
			return nil, fmt.Errorf("%q is outside 0-1", v)
		}
		return f, nil
	}
	return nil, fmt.Errorf("parameter type %q is not known", t)
}

// ParamValues reads parameters as their declared types, with defaults filled in.
type ParamValues struct {
	Decl []Param
	Got  map[string]string
}

func (p ParamValues) parsed(name string) (any, error) {
	for _, d := range p.Decl {
		if d.Name != name {
			continue
		}
		v, ok := p.Got[name]
		if !ok {
			v = d.Default
		}
		if v == "" && d.Type != TypeString {
			return nil, nil
		}
		x, err := parseParam(d.Type, v)
		if err != nil {
			return nil, &SpecError{Field: "params." + name, Err: err}
		}
		return x, nil
	}
	return nil, fmt.Errorf("parameter %q is not declared", name)
}

// Duration returns a duration parameter (0 when empty).
func (p ParamValues) Duration(name string) (time.Duration, error) {
	x, err := p.parsed(name)
	if err != nil || x == nil {
		return 0, err
	}
	d, ok := x.(time.Duration)
	if !ok {
		return 0, errors.New("parameter " + name + " is not a duration")
	}
	return d, nil
}

// Int returns an integer parameter (0 when empty).
func (p ParamValues) Int(name string) (int, error) {
	x, err := p.parsed(name)
	if err != nil || x == nil {
		return 0, err
	}
	n, ok := x.(int)
	if !ok {
		return 0, errors.New("parameter " + name + " is not an integer")
	}
	return n, nil
}

// Bool returns a boolean parameter (false when empty).
func (p ParamValues) Bool(name string) (bool, error) {
	x, err := p.parsed(name)
	if err != nil || x == nil {
		return false, err
	}
	b, ok := x.(bool)
	if !ok {
		return false, errors.New("parameter " + name + " is not true or false")
	}
	return b, nil
}

// Fraction returns a share parameter in [0, 1] (0 when empty).
func (p ParamValues) Fraction(name string) (float64, error) {
	x, err := p.parsed(name)
	if err != nil || x == nil {
		return 0, err
	}
	f, ok := x.(float64)
	if !ok {
		return 0, errors.New("parameter " + name + " is not a share")
	}
	return f, nil
}

// String returns a string parameter.
func (p ParamValues) String(name string) (string, error) {
	x, err := p.parsed(name)
	if err != nil {
		return "", err
	}
	s, _ := x.(string)
	return s, nil
}
