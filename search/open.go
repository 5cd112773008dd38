package search

import (
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"time"

	"github.com/dsnscale/dsnscale/internal/backendurl"
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

// urls are the server URLs of the search role.
var urls = backendurl.Role{
	Schemes: []backendurl.Scheme{
		{Name: "elasticsearch", Kind: FlavorElasticsearch},
		{Name: "elasticsearch+https", Kind: FlavorElasticsearch, HTTPS: true},
		{Name: "opensearch", Kind: FlavorOpenSearch},
		{Name: "opensearch+https", Kind: FlavorOpenSearch, HTTPS: true},
		{Name: "http", Kind: FlavorElasticsearch},
		{Name: "https", Kind: FlavorElasticsearch, HTTPS: true},
	},
	Secrets: []string{"api_key"},
	Err:     ErrBadURL,
}

// ParseURL parses a server URL (see Open).
func ParseURL(rawURL string) (Target, error) {
	u, err := urls.Parse(rawURL)
	if err != nil {
		return Target{}, err
	}
	if err := urls.Params(rawURL, u.Query, "index", "shards", "replicas", "api_key"); err != nil {
		return Target{}, err
	}
	t := Target{Flavor: u.Scheme.Kind, BaseURL: u.BaseURL, User: u.Username(), Password: u.Password(),
		Prefix: "dsnscale-events", Shards: 1, Replicas: 1, APIKey: u.Query.Get("api_key")}
	if v := u.Query.Get("index"); v != "" {
		if !prefixPattern.MatchString(v) {
			return Target{}, urls.Errorf(rawURL, "index %q: want 1-200 of [a-z0-9_-], starting with a letter or digit", v)
		}
		t.Prefix = v
	}
	for _, p := range []struct {
		name string
		lo   int
		to   *int
	}{{"shards", 1, &t.Shards}, {"replicas", 0, &t.Replicas}} {
		v := u.Query.Get(p.name)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < p.lo || n > 1024 {
			return Target{}, urls.Errorf(rawURL, "%s %q: want %d-1024", p.name, v, p.lo)
		}
		*p.to = n
	}
	return t, nil
}
