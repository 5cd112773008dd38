// Package cliargs walks the command lines of dsnscale's commands: positional arguments and
// flags written --name value, --name=value or -name, in any order.
package cliargs

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrHelp is what a parser returns for -h or --help.
var ErrHelp = errors.New("help")

// Refuse answers a command line that did not parse and returns the exit code: for ErrHelp the
// usage on stdout and 0; otherwise "dsnscale COMMAND: the error", then the usage, on stderr
// and 2 (bad input).
func Refuse(err error, command, usage string, stdout, stderr io.Writer) int {
	if errors.Is(err, ErrHelp) {
		fmt.Fprintln(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "dsnscale %s: %v\n\n%s\n", command, err, usage)
	return 2
}

// Scanner walks a command line one argument at a time.
type Scanner struct {
	list     []string
	i        int
	arg      string
	name     string
	value    string
	hasValue bool
}

// New returns a Scanner over list; call Next before the first argument.
func New(list []string) *Scanner { return &Scanner{list: list, i: -1} }

// Next moves to the next argument, or reports false at the end.
func (s *Scanner) Next() bool {
	s.i++
	if s.i >= len(s.list) {
		return false
	}
	s.arg = s.list[s.i]
	s.name, s.value, s.hasValue = strings.Cut(strings.TrimLeft(s.arg, "-"), "=")
	return true
}

// Arg is the argument as written.
func (s *Scanner) Arg() string { return s.arg }

// IsFlag reports whether the argument is a flag; "-" alone is positional.
func (s *Scanner) IsFlag() bool { return strings.HasPrefix(s.arg, "-") && s.arg != "-" }

// One takes the argument as the command's one positional argument, into dst; a second one is
// an error that says the command takes one what at a time.
func (s *Scanner) One(dst *string, what string) error {
	if *dst != "" {
		return fmt.Errorf("unexpected argument %q: one %s at a time", s.arg, what)
	}
	*dst = s.arg
	return nil
}

// Name is the flag's name without its dashes and =value.
func (s *Scanner) Name() string { return s.name }

// Value is the flag's value: after its = or, without one, the next argument, which it consumes.
func (s *Scanner) Value() (string, error) {
	if s.hasValue {
		return s.value, nil
	}
	if s.i+1 >= len(s.list) {
		return "", fmt.Errorf("%s needs a value", s.arg)
	}
	s.i++
	return s.list[s.i], nil
}

// NoValue is an error when a switch was given a value (--plan=x).
func (s *Scanner) NoValue() error {
	if s.hasValue {
		return fmt.Errorf("--%s takes no value", s.name)
	}
	return nil
}
