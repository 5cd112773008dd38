package model

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// The Check* functions return "" for a good value and otherwise a message saying what is wrong,
// ready to sit after a field path.

// CheckName checks the name of a tenant, network or policy (and a tenant reference): a lowercase
// DNS label (RFC 1123) of 1-63 characters: a-z, 0-9 and '-', starting and ending alphanumeric.
func CheckName(s string) string {
	switch {
	case s == "":
		return "required"
	case len(s) > MaxNameLength:
		return fmt.Sprintf("%d characters, at most %d", len(s), MaxNameLength)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		lowerAlnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if lowerAlnum || c == '-' && i > 0 && i < len(s)-1 {
			continue
		}
		return fmt.Sprintf("%q is not a lowercase DNS label (a-z, 0-9 and '-', starting and ending with a letter or digit)", s)
	}
	return ""
}

// CheckDSNID checks a DSN id: 1-128 characters of A-Z, a-z, 0-9, '_' and '-' (one NATS token).
func CheckDSNID(s string) string {
	switch {
	case s == "":
		return "required"
	case len(s) > MaxDSNIDLength:
		return fmt.Sprintf("%d characters, at most %d", len(s), MaxDSNIDLength)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '_' && c != '-' {
			return fmt.Sprintf("%q is not a DSN id (A-Z, a-z, 0-9, '_' and '-')", s)
		}
	}
	return ""
}

// CheckLabelKey checks a label key: an optional DNS-subdomain prefix and '/', then a name of 1-63
// characters of alphanumerics, '-', '_' and '.', starting and ending alphanumeric
// ("app", "example.com/tier").
func CheckLabelKey(k string) string {
	name := k
	if prefix, rest, ok := strings.Cut(k, "/"); ok {
		if msg := checkSubdomain(prefix); msg != "" {
			return fmt.Sprintf("prefix of %q: %s", k, msg)
		}
		name = rest
	}
	if name == "" {
		return fmt.Sprintf("%q has an empty name", k)
	}
	if len(name) > 63 {
		return fmt.Sprintf("name of %q has %d characters, at most 63", k, len(name))
	}
	if !isQualifiedName(name) {
		return fmt.Sprintf("%q is not a label key (alphanumerics, '-', '_' and '.', starting and ending alphanumeric, with an optional DNS prefix and '/')", k)
	}
	return ""
}

// CheckLabelValue checks a label value: empty, or 1-63 characters of alphanumerics, '-', '_' and
// '.', starting and ending alphanumeric.
func CheckLabelValue(v string) string {
	switch {
	case v == "":
		return ""
	case len(v) > MaxLabelValue:
		return fmt.Sprintf("value has %d characters, at most %d", len(v), MaxLabelValue)
	case !isQualifiedName(v):
		return fmt.Sprintf("value %q is not a label value (alphanumerics, '-', '_' and '.', starting and ending alphanumeric)", v)
	}
	return ""
}

// CheckCIDR checks an IPv4 or IPv6 prefix in canonical form: "10.0.0.0/24", with no host bits set.
func CheckCIDR(s string) string {
	if s == "" {
		return "required: a CIDR such as 10.0.0.0/24"
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return fmt.Sprintf("%q is not a CIDR such as 10.0.0.0/24", s)
	}
	if m := p.Masked(); m != p {
		return fmt.Sprintf("%q has host bits set; the network is %s", s, m)
	}
	return ""
}

// ParsePortRange parses "N" or "N-M" (1 <= N <= M <= 65535).
func ParsePortRange(s string) (lo, hi uint16, err error) {
	if msg := CheckPortRange(s); msg != "" {
		return 0, 0, fmt.Errorf("%w: %s", ErrInvalid, msg)
	}
	a, b, found := strings.Cut(s, "-")
	l, _ := strconv.ParseUint(a, 10, 16)
	h := l
	if found {
		h, _ = strconv.ParseUint(b, 10, 16)
	}
	return uint16(l), uint16(h), nil
}

// CheckPortRange checks a port entry: "N" or "N-M" with 1 <= N <= M <= 65535.
func CheckPortRange(s string) string {
	a, b, found := strings.Cut(s, "-")
	lo, msg := checkPort(a)
	if msg != "" {
		return fmt.Sprintf("%q: %s (want \"N\" or \"N-M\")", s, msg)
	}
	if !found {
		return ""
	}
	hi, msg := checkPort(b)
	if msg != "" {
		return fmt.Sprintf("%q: %s (want \"N\" or \"N-M\")", s, msg)
	}
	if lo > hi {
		return fmt.Sprintf("%q: range start %d is after its end %d", s, lo, hi)
	}
	return ""
}

func checkPort(s string) (int, string) {
	if s == "" || len(s) > 5 {
		return 0, "not a port number"
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, "not a port number"
		}
		n = n*10 + int(s[i]-'0')
	}
	if n < 1 || n > 65535 {
		return 0, fmt.Sprintf("port %d is outside 1-65535", n)
	}
	return n, ""
}

func checkSubdomain(s string) string {
	if s == "" || len(s) > maxLabelKeyPrefix {
		return fmt.Sprintf("must be a DNS subdomain of 1-%d characters", maxLabelKeyPrefix)
	}
	for _, part := range strings.Split(s, ".") {
		if CheckName(part) != "" {
			return fmt.Sprintf("%q is not a lowercase DNS subdomain", s)
		}
	}
	return ""
}

func isQualifiedName(s string) bool {
	if s == "" || !isAlnum(s[0]) || !isAlnum(s[len(s)-1]) {
		return false
	}
	for i := 1; i < len(s)-1; i++ {
		if c := s[i]; !isAlnum(c) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
