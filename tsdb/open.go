package tsdb

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/dsnscale/dsnscale/internal/backendurl"
)

// Options tune a Storage. Zero fields take the defaults given with each field. Embedded-only
// fields are ignored by remote storages and the other way round.
type Options struct {
	// Retention is how long the embedded engine keeps data, measured back from its newest
	// sample. Default 15 days.
	Retention time.Duration `json:"retention" yaml:"retention"`
	// OutOfOrderWindow is how far behind the newest sample of the embedded engine a sample may
	// be and still be accepted. Default 1 hour. Remote servers take out-of-order samples anyway.
	OutOfOrderWindow time.Duration `json:"outOfOrderWindow" yaml:"outOfOrderWindow"`
	// Timeout bounds each HTTP request to a remote server. Default 10s.
	Timeout time.Duration `json:"timeout" yaml:"timeout"`
	// BatchSize is the most points per remote write request. Default 5000.
	BatchSize int `json:"batchSize" yaml:"batchSize"`
	// MaxAttempts is how often a remote write request is tried before Commit fails. Default 4.
	MaxAttempts int `json:"maxAttempts" yaml:"maxAttempts"`
	// MinBackoff and MaxBackoff bound the wait between remote write attempts; it doubles from
	// MinBackoff to MaxBackoff, with jitter. Defaults 200ms and 5s.
	MinBackoff time.Duration `json:"minBackoff" yaml:"minBackoff"`
	MaxBackoff time.Duration `json:"maxBackoff" yaml:"maxBackoff"`
	// Logger receives the storage's logs. Default slog.Default().
	Logger *slog.Logger `json:"-" yaml:"-"`
}

// WithDefaults returns o with zero fields set to their defaults.
func (o Options) WithDefaults() Options {
	if o.Retention == 0 {
		o.Retention = 15 * 24 * time.Hour
	}
	if o.OutOfOrderWindow == 0 {
		o.OutOfOrderWindow = time.Hour
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	if o.BatchSize == 0 {
		o.BatchSize = 5000
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = 4
	}
	if o.MinBackoff == 0 {
		o.MinBackoff = 200 * time.Millisecond
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Validate reports the first option out of range, after defaults.
func (o Options) Validate() error {
	o = o.WithDefaults()
	switch {
	case o.Retention < time.Hour:
		return fmt.Errorf("%w: options.retention %v: want >= 1h", ErrInvalid, o.Retention)
	case o.OutOfOrderWindow < 0:
		return fmt.Errorf("%w: options.outOfOrderWindow %v: want >= 0", ErrInvalid, o.OutOfOrderWindow)
	case o.Timeout < 0:
		return fmt.Errorf("%w: options.timeout %v: want > 0", ErrInvalid, o.Timeout)
	case o.BatchSize < 1:
		return fmt.Errorf("%w: options.batchSize %d: want >= 1", ErrInvalid, o.BatchSize)
	case o.MaxAttempts < 1:
		return fmt.Errorf("%w: options.maxAttempts %d: want >= 1", ErrInvalid, o.MaxAttempts)
	case o.MinBackoff < 0 || o.MaxBackoff < o.MinBackoff:
		return fmt.Errorf("%w: options.minBackoff %v, maxBackoff %v: want 0 < min <= max", ErrInvalid, o.MinBackoff, o.MaxBackoff)
	}
	return nil
}

// Open opens the storage that rawURL names:
//
//	""                                          embedded Prometheus tsdb under dir
//	victoriametrics://host:port[/path]          VictoriaMetrics over HTTP
//	victoriametrics+https://host:port[/path]    VictoriaMetrics over HTTPS
//	http://host:port[/path], https://...        VictoriaMetrics (the same as above)
//	influxdb://host:port?org=O&bucket=B&token=T InfluxDB 2.x over HTTP (influxdb+https: HTTPS)
//
// A user and password in a VictoriaMetrics URL are sent as HTTP basic authentication (for a
// vmauth proxy). A remote server that does not answer its health check gets an error wrapping
// ErrUnreachable; a URL that cannot be used gets one wrapping ErrBadURL that names the part.
func Open(rawURL, dir string, opts Options) (Storage, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.WithDefaults()
	if rawURL == "" {
		if dir == "" {
			return nil, fmt.Errorf("%w: the embedded storage needs a directory", ErrBadURL)
		}
		return OpenEmbedded(dir, opts)
	}
	t, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), opts.Timeout)
	defer cancel()
	switch t.Kind {
	case KindVictoriaMetrics:
		return openVictoria(ctx, t, opts)
	default:
		return openInflux(ctx, t, opts)
	}
}

// Backend kinds a URL names.
const (
	KindEmbedded        = "embedded"
	KindVictoriaMetrics = "victoriametrics"
	KindInfluxDB        = "influxdb"
)

// Target is a parsed remote storage URL.
type Target struct {
	Kind     string // KindVictoriaMetrics or KindInfluxDB
	BaseURL  string // http(s)://host:port[/path], without credentials or query
	User     string // basic authentication (VictoriaMetrics)
	Password string
	Org      string // InfluxDB organization
	Bucket   string // InfluxDB bucket
	Token    string // InfluxDB API token
}

// String renders the target without secrets, for logs and errors.
func (t Target) String() string {
	if t.Kind == KindInfluxDB {
		return fmt.Sprintf("%s %s (org %q, bucket %q)", t.Kind, t.BaseURL, t.Org, t.Bucket)
	}
	return t.Kind + " " + t.BaseURL
}

// urls are the server URLs of the TSDB role.
var urls = backendurl.Role{
	Schemes: []backendurl.Scheme{
		{Name: "victoriametrics", Kind: KindVictoriaMetrics},
		{Name: "victoriametrics+https", Kind: KindVictoriaMetrics, HTTPS: true},
		{Name: "http", Kind: KindVictoriaMetrics},
		{Name: "https", Kind: KindVictoriaMetrics, HTTPS: true},
		{Name: "influxdb", Kind: KindInfluxDB},
		{Name: "influxdb+https", Kind: KindInfluxDB, HTTPS: true},
	},
	Secrets: []string{"token"},
	Err:     ErrBadURL,
}

// ParseURL parses a remote storage URL (see Open for the schemes).
func ParseURL(rawURL string) (Target, error) {
	u, err := urls.Parse(rawURL)
	if err != nil {
		return Target{}, err
	}
	t := Target{Kind: u.Scheme.Kind, BaseURL: u.BaseURL}
	switch t.Kind {
	case KindVictoriaMetrics:
		if len(u.Query) > 0 {
			return Target{}, urls.Errorf(rawURL, "VictoriaMetrics URLs take no query parameters")
		}
		t.User, t.Password = u.Username(), u.Password()
	case KindInfluxDB:
		if u.User != nil {
			return Target{}, urls.Errorf(rawURL, "InfluxDB authenticates with ?token=, not user:password@")
		}
		if err := urls.Params(rawURL, u.Query, "org", "bucket", "token"); err != nil {
			return Target{}, err
		}
		t.Org, t.Bucket, t.Token = u.Query.Get("org"), u.Query.Get("bucket"), u.Query.Get("token")
		for _, p := range []struct{ name, v string }{{"org", t.Org}, {"bucket", t.Bucket}, {"token", t.Token}} {
			if p.v == "" {
				return Target{}, urls.Errorf(rawURL, "parameter %q is required", p.name)
			}
		}
	}
	return t, nil
}
