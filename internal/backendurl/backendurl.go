// Package backendurl parses the URLs that name the servers behind the three storage roles (the
// TSDB, search and inventory): a table of schemes per role, one check of the scheme, host, port
// and query parameters, and one way to keep passwords and tokens out of error messages. Each
// role keeps its own interface, options and opener; this is only the URL.
package backendurl

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Scheme is a URL scheme a role accepts.
type Scheme struct {
	// Name is the scheme as written ("victoriametrics+https").
	Name string
	// Kind is the kind of server it names ("victoriametrics").
	Kind string
	// HTTPS says the server is reached over HTTPS.
	HTTPS bool
}

// Role describes the URLs of one backend role.
type Role struct {
	// Schemes are the schemes the role accepts, in the order error messages list them.
	Schemes []Scheme
	// Secrets are the query parameters whose values are secrets, hidden in error messages (a
	// password in the user part always is).
	Secrets []string
	// Err is the role's sentinel error (its ErrBadURL), wrapped by every error.
	Err error
}

// URL is a server URL split into what an opener needs.
type URL struct {
	Scheme Scheme
	// BaseURL is http(s)://host:port[/path], without credentials, query or trailing slash.
	BaseURL string
	// User holds the user and password of the URL, if it has them.
	User *url.Userinfo
	// Query holds the parameters, each checked to have one non-empty value by Params.
	Query url.Values
}

// Errorf returns an error about rawURL (its secrets hidden) that wraps the role's sentinel:
// "<sentinel>: "<url>": <message>".
func (r Role) Errorf(rawURL, format string, args ...any) error {
	return fmt.Errorf("%w: %q: %s", r.Err, r.Redact(rawURL), fmt.Sprintf(format, args...))
}

// SchemeOf returns the scheme of rawURL, or an error that lists the schemes the role takes.
func (r Role) SchemeOf(rawURL string) (Scheme, error) {
	name, _, ok := strings.Cut(rawURL, "://")
	if !ok || name == "" {
		var plain []string
		for _, s := range r.Schemes {
			if !strings.HasSuffix(s.Name, "+https") {
				plain = append(plain, s.Name+"://")
			}
		}
		return Scheme{}, r.Errorf(rawURL, "no scheme; want %s", orList(plain))
	}
	for _, s := range r.Schemes {
		if s.Name == name {
			return s, nil
		}
	}
	names := make([]string, len(r.Schemes))
	for i, s := range r.Schemes {
		names[i] = s.Name
	}
	return Scheme{}, r.Errorf(rawURL, "scheme %q: want %s", name, orList(names))
}

// Parse checks a server URL: a scheme of the role, host:port with a port in 1-65535, no
// fragment. Its query parameters are left to the caller (see Params).
func (r Role) Parse(rawURL string) (URL, error) {
	s, err := r.SchemeOf(rawURL)
	if err != nil {
		return URL{}, err
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Error quotes the whole URL, secrets and all; say only what was wrong.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return URL{}, r.Errorf(rawURL, "%v", err)
	}
	if u.Opaque != "" {
		return URL{}, r.Errorf(rawURL, "want scheme://host:port")
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host == "" {
		return URL{}, r.Errorf(rawURL, "host %q: want host:port", u.Host)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return URL{}, r.Errorf(rawURL, "port %q: want 1-65535", port)
	}
	if u.Fragment != "" {
		return URL{}, r.Errorf(rawURL, "unexpected fragment %q", u.Fragment)
	}
	httpScheme := "http"
	if s.HTTPS {
		httpScheme = "https"
	}
	return URL{Scheme: s, BaseURL: httpScheme + "://" + u.Host + strings.TrimRight(u.EscapedPath(), "/"),
		User: u.User, Query: u.Query()}, nil
}

// Params checks the query parameters of rawURL, parsed as q: each is one of known and has
// exactly one non-empty value.
func (r Role) Params(rawURL string, q url.Values, known ...string) error {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(known, k) {
			return r.Errorf(rawURL, "unknown parameter %q; want %s", k, strings.Join(known, ", "))
		}
		if v := q[k]; len(v) != 1 || v[0] == "" {
			return r.Errorf(rawURL, "parameter %q: want exactly one non-empty value", k)
		}
	}
	return nil
}

// Password returns the password of u's user part ("" without one).
func (u URL) Password() string {
	if u.User == nil {
		return ""
	}
	p, _ := u.User.Password()
	return p
}

// Username returns the user of u's user part ("" without one).
func (u URL) Username() string {
	if u.User == nil {
		return ""
	}
	return u.User.Username()
}

// Redact hides the password and the secret parameters of rawURL, for error messages. A URL too
// broken to parse that might hold a secret is not shown at all.
func (r Role) Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		if strings.Contains(rawURL, "@") || slices.ContainsFunc(r.Secrets, func(s string) bool { return strings.Contains(rawURL, s) }) {
			return "<unparsable URL>"
		}
		return rawURL
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	hidden := false
	for _, s := range r.Secrets {
		if q.Has(s) {
			q.Set(s, "xxxxx")
			hidden = true
		}
	}
	if hidden {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// orList joins names as "a, b or c".
func orList(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}
