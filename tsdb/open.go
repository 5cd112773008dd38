package tsdb

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
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

// ParseURL parses a remote storage URL (see Open for the schemes).
func ParseURL(rawURL string) (Target, error) {
	if !strings.Contains(rawURL, "://") {
		return Target{}, fmt.Errorf("%w: %q: no scheme; want victoriametrics://, http://, https:// or influxdb://", ErrBadURL, redact(rawURL))
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return Target{}, fmt.Errorf("%w: %q: %v", ErrBadURL, redact(rawURL), err)
	}
	var t Target
	httpScheme := "http"
	switch u.Scheme {
	case "victoriametrics", "http":
		t.Kind = KindVictoriaMetrics
	case "victoriametrics+https", "https":
		t.Kind, httpScheme = KindVictoriaMetrics, "https"
	case "influxdb":
		t.Kind = KindInfluxDB
	case "influxdb+https":
		t.Kind, httpScheme = KindInfluxDB, "https"
	case "":
		return Target{}, fmt.Errorf("%w: %q: no scheme; want victoriametrics://, http://, https:// or influxdb://", ErrBadURL, redact(rawURL))
	default:
		return Target{}, fmt.Errorf("%w: %q: scheme %q: want victoriametrics, victoriametrics+https, http, https, influxdb or influxdb+https", ErrBadURL, redact(rawURL), u.Scheme)
	}
	if u.Opaque != "" {
		return Target{}, fmt.Errorf("%w: %q: want scheme://host:port", ErrBadURL, redact(rawURL))
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host == "" {
		return Target{}, fmt.Errorf("%w: %q: host %q: want host:port", ErrBadURL, redact(rawURL), u.Host)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return Target{}, fmt.Errorf("%w: %q: port %q: want 1-65535", ErrBadURL, redact(rawURL), port)
	}
	if u.Fragment != "" {
		return Target{}, fmt.Errorf("%w: %q: unexpected fragment %q", ErrBadURL, redact(rawURL), u.Fragment)
	}
	t.BaseURL = httpScheme + "://" + u.Host + strings.TrimRight(u.EscapedPath(), "/")
	q := u.Query()
	switch t.Kind {
	case KindVictoriaMetrics:
		if len(q) > 0 {
			return Target{}, fmt.Errorf("%w: %q: VictoriaMetrics URLs take no query parameters", ErrBadURL, redact(rawURL))
		}
		if u.User != nil {
			t.User = u.User.Username()
			t.Password, _ = u.User.Password()
		}
	case KindInfluxDB:
		if u.User != nil {
			return Target{}, fmt.Errorf("%w: %q: InfluxDB authenticates with ?token=, not user:password@", ErrBadURL, redact(rawURL))
		}
		for k, v := range q {
			switch k {
			case "org", "bucket", "token":
				if len(v) != 1 || v[0] == "" {
					return Target{}, fmt.Errorf("%w: %q: parameter %q: want exactly one non-empty value", ErrBadURL, redact(rawURL), k)
				}
			default:
				return Target{}, fmt.Errorf("%w: %q: unknown parameter %q; want org, bucket, token", ErrBadURL, redact(rawURL), k)
			}
		}
		t.Org, t.Bucket, t.Token = q.Get("org"), q.Get("bucket"), q.Get("token")
		for _, p := range []struct{ name, v string }{{"org", t.Org}, {"bucket", t.Bucket}, {"token", t.Token}} {
			if p.v == "" {
				return Target{}, fmt.Errorf("%w: %q: parameter %q is required", ErrBadURL, redact(rawURL), p.name)
			}
		}
	}
	return t, nil
}

// redact hides a password or token in a URL that goes into an error message.
func redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		if strings.ContainsAny(rawURL, "@") || strings.Contains(rawURL, "token") {
			return "<unparsable URL>"
		}
		return rawURL
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("token") {
		q.Set("token", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}
