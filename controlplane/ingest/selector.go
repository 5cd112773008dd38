package ingest

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/dsnscale/dsnscale/tsdb"
)

// MaxSelectorBytes bounds a series selector.
const MaxSelectorBytes = 4096

// ParseSelector parses a PromQL series selector, the one part of PromQL the metrics query takes:
//
//	metric_name
//	metric_name{label="value", other!="value", re=~"regexp", notre!~"regexp"}
//	{__name__="metric_name", dsn="rack7-dpu-0042"}
//
// Values are double-quoted with Go escapes (\" \\ \n \u00e9 ...) or back-quoted raw strings;
// regular expressions are RE2 and match whole values. At least one matcher must not match the
// empty value, so that a selector never means every series. Errors say at which byte offset the
// selector went wrong.
func ParseSelector(s string) ([]tsdb.Matcher, error) {
	if len(s) > MaxSelectorBytes {
		return nil, fmt.Errorf("selector of %d bytes, at most %d", len(s), MaxSelectorBytes)
	}
	if !utf8.ValidString(s) {
		return nil, fmt.Errorf("selector is not valid UTF-8")
	}
	p := &selParser{s: s}
	ms, err := p.parse()
	if err != nil {
		return nil, err
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("empty selector: want a metric name or {label=\"value\", ...}")
	}
	nonEmpty := false
	for _, m := range ms {
		if err := m.Validate(); err != nil {
			return nil, fmt.Errorf("matcher %s: %w", m, err)
		}
		ok, err := matchesEmpty(m)
		if err != nil {
			return nil, fmt.Errorf("matcher %s: %w", m, err)
		}
		nonEmpty = nonEmpty || !ok
	}
	if !nonEmpty {
		return nil, fmt.Errorf("every matcher of %s matches the empty value: at least one must not, so that the selector cannot mean every series", s)
	}
	return ms, nil
}

type selParser struct {
	s   string
	pos int
}

func (p *selParser) errorf(format string, args ...any) error {
	return fmt.Errorf("at byte %d: %s", p.pos, fmt.Sprintf(format, args...))
}

func (p *selParser) skipSpace() {
	for p.pos < len(p.s) && strings.IndexByte(" \t\r\n", p.s[p.pos]) >= 0 {
		p.pos++
	}
}

func (p *selParser) parse() ([]tsdb.Matcher, error) {
	var ms []tsdb.Matcher
	p.skipSpace()
	if p.pos < len(p.s) && p.s[p.pos] != '{' {
		name := p.ident(true)
		if name == "" {
			return nil, p.errorf("unexpected %q: want a metric name or '{'", p.rest())
		}
		ms = append(ms, tsdb.MetricName(name))
		p.skipSpace()
	}
	if p.pos < len(p.s) && p.s[p.pos] == '{' {
		p.pos++
		for {
			p.skipSpace()
			if p.pos < len(p.s) && p.s[p.pos] == '}' {
				p.pos++
				break
			}
			m, err := p.matcher()
			if err != nil {
				return nil, err
			}
			ms = append(ms, m)
			p.skipSpace()
			if p.pos >= len(p.s) {
				return nil, p.errorf("missing '}'")
			}
			switch p.s[p.pos] {
			case ',':
				p.pos++
			case '}':
			default:
				return nil, p.errorf("unexpected %q: want ',' or '}'", p.rest())
			}
		}
		p.skipSpace()
	}
	if p.pos < len(p.s) {
		return nil, p.errorf("unexpected %q after the selector: only a series selector is supported, not functions or operators", p.rest())
	}
	return ms, nil
}

func (p *selParser) matcher() (tsdb.Matcher, error) {
	name := p.ident(false)
	if name == "" {
		if p.pos >= len(p.s) {
			return tsdb.Matcher{}, p.errorf("missing '}'")
		}
		return tsdb.Matcher{}, p.errorf("unexpected %q: want a label name", p.rest())
	}
	p.skipSpace()
	var typ tsdb.MatchType
	switch {
	case strings.HasPrefix(p.s[p.pos:], "=~"):
		typ, p.pos = tsdb.MatchRegexp, p.pos+2
	case strings.HasPrefix(p.s[p.pos:], "!~"):
		typ, p.pos = tsdb.MatchNotRegexp, p.pos+2
	case strings.HasPrefix(p.s[p.pos:], "!="):
		typ, p.pos = tsdb.MatchNotEqual, p.pos+2
	case strings.HasPrefix(p.s[p.pos:], "="):
		typ, p.pos = tsdb.MatchEqual, p.pos+1
	default:
		return tsdb.Matcher{}, p.errorf("unexpected %q after label %s: want =, !=, =~ or !~", p.rest(), name)
	}
	p.skipSpace()
	v, err := p.str()
	if err != nil {
		return tsdb.Matcher{}, err
	}
	return tsdb.Matcher{Type: typ, Name: name, Value: v}, nil
}

// ident reads a label name, or a metric name (which may hold colons).
func (p *selParser) ident(metric bool) string {
	start := p.pos
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		ok := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(p.pos > start && c >= '0' && c <= '9') || (metric && c == ':')
		if !ok {
			break
		}
		p.pos++
	}
	return p.s[start:p.pos]
}

// str reads a quoted string.
func (p *selParser) str() (string, error) {
	if p.pos >= len(p.s) {
		return "", p.errorf("missing value: want a double-quoted string")
	}
	q := p.s[p.pos]
	if q != '"' && q != '`' {
		return "", p.errorf("unexpected %q: want a double-quoted string", p.rest())
	}
	start := p.pos
	for i := p.pos + 1; i < len(p.s); i++ {
		switch {
		case q == '"' && p.s[i] == '\\':
			i++ // skip the escaped character
		case p.s[i] == '\n' && q == '"':
			return "", p.errorf("newline in a string")
		case p.s[i] == q:
			v, err := strconv.Unquote(p.s[start : i+1])
			if err != nil {
				return "", p.errorf("string %s: %v", p.s[start:i+1], err)
			}
			p.pos = i + 1
			return v, nil
		}
	}
	return "", p.errorf("unterminated string")
}

// rest is what is left to parse, shortened for messages.
func (p *selParser) rest() string {
	r := p.s[p.pos:]
	if len(r) > 20 {
		r = r[:20] + "..."
	}
	return r
}

// matchesEmpty reports whether m selects series that lack its label.
func matchesEmpty(m tsdb.Matcher) (bool, error) {
	switch m.Type {
	case tsdb.MatchEqual:
		return m.Value == "", nil
	case tsdb.MatchNotEqual:
		return m.Value != "", nil
	}
	re, err := compileAnchored(m.Value)
	if err != nil {
		return false, err
	}
	return re.MatchString("") == (m.Type == tsdb.MatchRegexp), nil
}

// compileAnchored compiles re as the TSDB matches it: against the whole value.
func compileAnchored(re string) (*regexp.Regexp, error) {
	return regexp.Compile("^(?:" + re + ")$")
}
