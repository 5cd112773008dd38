package search

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Options tune an Index. Zero fields take the defaults given with each field.
type Options struct {
	// Timeout bounds each request to a server. Default 30s.
	Timeout time.Duration `json:"timeout" yaml:"timeout"`
	// MaxRetries is how often the client retries a request the server answered with 429, 502,
	// 503 or 504, with exponential back-off. Default 3.
	MaxRetries int `json:"maxRetries" yaml:"maxRetries"`
	// Logger receives the index's logs. Default slog.Default().
	Logger *slog.Logger `json:"-" yaml:"-"`
}

// WithDefaults returns o with zero fields set to their defaults.
func (o Options) WithDefaults() Options {
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = 3
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Validate reports the first option out of range.
func (o Options) Validate() error {
	switch {
	case o.Timeout < 0:
		return fmt.Errorf("%w: options.timeout %v: want > 0", ErrInvalid, o.Timeout)
	case o.MaxRetries < 0:
		return fmt.Errorf("%w: options.maxRetries %d: want >= 0", ErrInvalid, o.MaxRetries)
	}
	return nil
}

// Open opens the index rawURL names:
//
//	""                                      bleve under dir
//	elasticsearch://host:port[/path]?params Elasticsearch over HTTP (elasticsearch+https: HTTPS)
//	http://host:port, https://host:port     Elasticsearch (the same)
//	opensearch://host:port?params           OpenSearch over HTTP (opensearch+https: HTTPS)
//
// Parameters: index (the index name prefix, default "dsnscale-events"; documents go to
// <index>-YYYY.MM.DD by their UTC day), shards (default 1), replicas (default 1), api_key. A user
// and password in the URL are sent as basic authentication.
func Open(rawURL, dir string, opts Options) (Index, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.WithDefaults()
	if rawURL == "" {
		if dir == "" {
			return nil, fmt.Errorf("%w: the embedded index needs a directory", ErrBadURL)
		}
		return OpenBleve(dir)
	}
	t, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	return OpenElastic(t, opts)
}

// Flavors of server a URL names.
const (
	FlavorElasticsearch = "elasticsearch"
	FlavorOpenSearch    = "opensearch"
)

// Target is a parsed server URL.
type Target struct {
	Flavor   string // FlavorElasticsearch or FlavorOpenSearch
	BaseURL  string // http(s)://host:port[/path]
	User     string
	Password string
	APIKey   string
	Prefix   string // index name prefix
	Shards   int
	Replicas int
}

// String renders the target without secrets.
func (t Target) String() string {
	return fmt.Sprintf("%s %s (index %s-*)", t.Flavor, t.BaseURL, t.Prefix)
}

var prefixPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,199}$`)

// ParseURL parses a server URL (see Open).
func ParseURL(rawURL string) (Target, error) {
	bad := func(format string, args ...any) (Target, error) {
		return Target{}, fmt.Errorf("%w: %q: %s", ErrBadURL, redact(rawURL), fmt.Sprintf(format, args...))
	}
	if !strings.Contains(rawURL, "://") {
		return bad("no scheme; want elasticsearch://, opensearch://, http:// or https://")
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return bad("%v", err)
	}
	t := Target{Prefix: "dsnscale-events", Shards: 1, Replicas: 1}
	httpScheme := "http"
	switch u.Scheme {
	case "elasticsearch", "http":
		t.Flavor = FlavorElasticsearch
	case "elasticsearch+https", "https":
		t.Flavor, httpScheme = FlavorElasticsearch, "https"
	case "opensearch":
		t.Flavor = FlavorOpenSearch
	case "opensearch+https":
		t.Flavor, httpScheme = FlavorOpenSearch, "https"
	default:
		return bad("scheme %q: want elasticsearch, elasticsearch+https, opensearch, opensearch+https, http or https", u.Scheme)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host == "" {
		return bad("host %q: want host:port", u.Host)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return bad("port %q: want 1-65535", port)
	}
	if u.Fragment != "" {
		return bad("unexpected fragment %q", u.Fragment)
	}
	t.BaseURL = httpScheme + "://" + u.Host + strings.TrimRight(u.EscapedPath(), "/")
	if u.User != nil {
		t.User = u.User.Username()
		t.Password, _ = u.User.Password()
	}
	for k, v := range u.Query() {
		if len(v) != 1 || v[0] == "" {
			return bad("parameter %q: want exactly one non-empty value", k)
		}
		switch k {
		case "index":
			if !prefixPattern.MatchString(v[0]) {
				return bad("index %q: want 1-200 of [a-z0-9_-], starting with a letter or digit", v[0])
			}
			t.Prefix = v[0]
		case "shards", "replicas":
			n, err := strconv.Atoi(v[0])
			lo := map[string]int{"shards": 1, "replicas": 0}[k]
			if err != nil || n < lo || n > 1024 {
				return bad("%s %q: want %d-1024", k, v[0], lo)
			}
			if k == "shards" {
				t.Shards = n
			} else {
				t.Replicas = n
			}
		case "api_key":
			t.APIKey = v[0]
		default:
			return bad("unknown parameter %q; want index, shards, replicas, api_key", k)
		}
	}
	return t, nil
}

// redact hides a password or API key in a URL that goes into an error message.
func redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		if strings.Contains(rawURL, "@") || strings.Contains(rawURL, "api_key") {
			return "<unparsable URL>"
		}
		return rawURL
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("api_key") {
		q.Set("api_key", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}
