// Package northbound is the workload that drives a control plane's northbound API with an
// operation mix: it sets up the mix's population, runs one operation per iteration (get, list,
// create, update with the resourceVersion of the previous answer, delete, transaction, watch,
// search) and can tear down what it made.
//
// It speaks plain HTTP/JSON to the documented routes, so it drives any control plane that serves
// them, the reference one or a team's own in staging.
package northbound

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/client"
	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/loadgen"
	"github.com/dsnscale/dsnscale/loadgen/mix"
)

// APIPrefix is the root of the northbound API.
const APIPrefix = "/api/v1"

// Sentinel errors.
var (
	// ErrConfig marks an invalid Config.
	ErrConfig = errors.New("northbound: invalid config")
	// ErrSetup marks a setup that could not create or adopt the population.
	ErrSetup = errors.New("northbound: setup failed")
	// ErrTeardown marks a teardown that left objects behind.
	ErrTeardown = errors.New("northbound: teardown incomplete")
)

// Config configures a Workload.
type Config struct {
	// Target is the control plane's base URL ("http://127.0.0.1:8080"). Required.
	Target string
	// Token, when set, is sent as "Authorization: Bearer <token>".
	Token string
	// User and Password, when set, log in (POST /api/v1/login) for a token, which is renewed
	// before it expires. Exclusive with Token.
	User, Password string
	// CA is the PEM certificate of the authority that signed the target's TLS certificate (the
	// reference control plane's ca.crt); nil trusts the CA registered for the target with
	// TrustTarget, else the system's roots. Ignored with Client, whose transport decides.
	CA []byte
	// Mix is the operation mix (defaults are filled in). Required.
	Mix *mix.Mix
	// RunID makes the names of objects this run creates unique (default: derived from the
	// time). Lowercase letters and digits, at most 12.
	RunID string
	// Client sends the requests (default: a client tuned for load, with Mix.Timeout).
	Client *http.Client
	// SetupConcurrency bounds parallel requests of setup and teardown (default 16).
	SetupConcurrency int
	// Logger receives progress (default: discard).
	Logger *slog.Logger
}

// Validate checks the configuration.
func (c Config) Validate() error {
	u, err := url.Parse(c.Target)
	switch {
	case c.Target == "":
		return fmt.Errorf("%w: target: required: the control plane's URL, such as http://127.0.0.1:8080", ErrConfig)
	case err != nil:
		return fmt.Errorf("%w: target %q: %w", ErrConfig, c.Target, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%w: target %q: scheme must be http or https", ErrConfig, c.Target)
	case u.Host == "":
		return fmt.Errorf("%w: target %q: no host", ErrConfig, c.Target)
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("%w: target %q: must not have a query or fragment", ErrConfig, c.Target)
	case c.Mix == nil:
		return fmt.Errorf("%w: mix: required", ErrConfig)
	case len(c.RunID) > 12 || strings.Trim(c.RunID, "abcdefghijklmnopqrstuvwxyz0123456789") != "":
		return fmt.Errorf("%w: run id %q: at most 12 lowercase letters and digits", ErrConfig, c.RunID)
	case c.SetupConcurrency < 0:
		return fmt.Errorf("%w: setup concurrency %d is negative", ErrConfig, c.SetupConcurrency)
	case strings.ContainsAny(c.Token, "\r\n"):
		return fmt.Errorf("%w: token: must be one line", ErrConfig)
	case (c.User == "") != (c.Password == ""):
		return fmt.Errorf("%w: user and password go together", ErrConfig)
	case c.User != "" && c.Token != "":
		return fmt.Errorf("%w: token and user are exclusive: a token, or credentials to log in with", ErrConfig)
	}
	if c.CA != nil && c.Client == nil {
		if _, err := tlsConfig(c.CA); err != nil {
			return err
		}
	}
	if err := c.Mix.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}

// Workload runs a mix against a control plane. It implements loadgen.Workload.
type Workload struct {
	cfg    Config
	mix    mix.Mix
	base   string // target without a trailing slash, plus APIPrefix
	client *http.Client
	stream *http.Client // for watches: no client timeout, a context deadline instead
	auth   string
	login  *login // with credentials
	gen    *mix.Generator
	log    *slog.Logger

	ops     []weighted
	total   float64
	pools   map[model.Kind]*pool
	tenants []string            // the population's tenants
	nets    map[string][]string // the population's networks by tenant
	dsns    atomic.Pointer[[]string]

	serial atomic.Uint64 // numbers created objects and updates
	maxRev atomic.Uint64 // highest revision seen in an answer
}

type weighted struct {
	upTo float64 // cumulative weight
	name string
	op   mix.Operation
}

// New builds a workload; call Setup before the load.
func New(cfg Config) (*Workload, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := cfg.Mix.WithDefaults()
	if cfg.RunID == "" {
		cfg.RunID = strconv.FormatInt(time.Now().UnixNano()/int64(time.Millisecond)%(1<<40), 36)
	}
	if cfg.SetupConcurrency == 0 {
		cfg.SetupConcurrency = 16
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	w := &Workload{
		cfg:   cfg,
		mix:   m,
		base:  strings.TrimRight(cfg.Target, "/") + APIPrefix,
		gen:   mix.NewGenerator(m.Population),
		log:   cfg.Logger,
		pools: map[model.Kind]*pool{model.KindTenant: {}, model.KindNetwork: {}, model.KindPolicy: {}},
		nets:  map[string][]string{},
	}
	if cfg.Token != "" {
		w.auth = "Bearer " + cfg.Token
	}
	w.client = cfg.Client
	if w.client == nil {
		if cfg.CA == nil {
			cfg.CA = trustedCA(cfg.Target)
		}
		tr := NewTransport()
		if cfg.CA != nil {
			tc, err := tlsConfig(cfg.CA)
			if err != nil {
				return nil, err
			}
			tc.ClientSessionCache = tr.TLSClientConfig.ClientSessionCache
			tr.TLSClientConfig = tc
		}
		w.client = &http.Client{Transport: tr, Timeout: m.Timeout}
	}
	if cfg.User != "" {
		w.login = &login{api: client.New(cfg.Target, w.client, client.WithUserAgent("dsnscale-loadgen")), user: cfg.User, password: cfg.Password}
	}
	w.stream = &http.Client{Transport: w.client.Transport}
	for _, op := range m.Operations {
		w.total += op.Weight
		w.ops = append(w.ops, weighted{upTo: w.total, name: op.Name(), op: op})
	}
	p := m.Population
	for t := 0; t < p.Tenants; t++ {
		name := w.gen.TenantName(t)
		w.tenants = append(w.tenants, name)
		for j := 0; j < p.NetworksPerTenant; j++ {
			w.nets[name] = append(w.nets[name], w.gen.NetworkName(j))
		}
	}
	w.dsns.Store(&[]string{})
	return w, nil
}

// NewTransport returns an HTTP transport for load: many idle connections per host (one per
// virtual user), no proxy (traffic goes where the target says), no compression, and TLS
// sessions resumed across connections, as browsers and API clients do.
func NewTransport() *http.Transport {
	return &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 10000,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS12, ClientSessionCache: tls.NewLRUClientSessionCache(sessionCacheSize)},
	}
}

// sessionCacheSize bounds the TLS sessions a workload keeps for resumption.
const sessionCacheSize = 1024

// Mix returns the mix the workload runs (defaults filled).
func (w *Workload) Mix() mix.Mix { return w.mix }

// RunID returns the id that names this run's created objects.
func (w *Workload) RunID() string { return w.cfg.RunID }

// ItemURLs returns the full URLs of the objects of kind the workload knows, for a peer load
// generator aimed at the same objects.
func (w *Workload) ItemURLs(kind model.Kind) []string {
	p := w.pools[kind]
	if p == nil {
		return nil
	}
	var out []string
	for _, e := range p.snapshot() {
		out = append(out, w.base+e.path)
	}
	return out
}

// Header returns the headers every request carries (for a peer load generator); with
// credentials, the token of the moment.
func (w *Workload) Header() http.Header {
	h := http.Header{"Accept": {"application/json"}, "User-Agent": {"dsnscale-loadgen"}}
	if auth, err := w.authorization(context.Background()); err == nil && auth != "" {
		h.Set("Authorization", auth)
	}
	return h
}

// CloseIdleConnections closes the client's idle connections.
func (w *Workload) CloseIdleConnections() { w.client.CloseIdleConnections() }

// Iterate runs one operation of the mix, chosen at random by weight.
func (w *Workload) Iterate(ctx context.Context, it loadgen.Iteration) loadgen.Outcome {
	x := rand.Float64() * w.total
	i := 0
	for i < len(w.ops)-1 && x >= w.ops[i].upTo {
		i++
	}
	op := &w.ops[i]
	out := w.do(ctx, op.op)
	out.Op = op.name
	return out
}

func (w *Workload) do(ctx context.Context, op mix.Operation) loadgen.Outcome {
	switch op.Op {
	case mix.OpGet:
		return w.get(ctx, op.Kind)
	case mix.OpList:
		return w.list(ctx, op.Kind, op.Size)
	case mix.OpCreate:
		return w.create(ctx, op.Kind)
	case mix.OpUpdate:
		return w.update(ctx, op.Kind)
	case mix.OpDelete:
		return w.delete(ctx, op.Kind)
	case mix.OpTransaction:
		return w.transaction(ctx, op.Kind, op.Size)
	case mix.OpWatch:
		return w.watch(ctx)
	case mix.OpSearch:
		return w.search(ctx, op.Index, op.Query)
	}
	return loadgen.Outcome{Class: loadgen.ClassOther, Err: fmt.Errorf("operation %q not supported", op.Op)}
}

// response is what one request brought back.
type response struct {
	status int
	body   []byte // kept only when asked for
	in     int64
	out    int64
	err    error
	detail string // a failed answer's message
}

func (r response) outcome() loadgen.Outcome {
	return loadgen.Outcome{Status: r.status, Err: r.err, Detail: r.detail, BytesIn: r.in, BytesOut: r.out}
}

// maxDetail bounds what is kept of a failed answer's message.
const maxDetail = 300

// failureDetail reads a failed answer's body and returns its message (the API's error body
// has one), or the start of the body; it returns the bytes read.
func failureDetail(body io.Reader) (string, int64) {
	b, _ := io.ReadAll(io.LimitReader(body, 16<<10))
	n, _ := io.Copy(io.Discard, body)
	var e struct {
		Message string `json:"message"`
	}
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &e) == nil && e.Message != "" {
		msg = e.Message
	}
	if len(msg) > maxDetail {
		msg = msg[:maxDetail] + "…"
	}
	return msg, int64(len(b)) + n
}

func (r response) ok() bool { return r.err == nil && r.status >= 200 && r.status < 300 }

// send makes one request; keep says whether to keep the body of a successful answer.
func (w *Workload) send(ctx context.Context, method, path string, body []byte, keep bool) response {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, w.base+path, rd)
	if err != nil {
		return response{err: err}
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "dsnscale-loadgen")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth, err := w.authorization(ctx); err != nil {
		return response{err: err}
	} else if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return response{err: err, out: int64(len(body))}
	}
	defer resp.Body.Close()
	r := response{status: resp.StatusCode, out: int64(len(body))}
	switch {
	case keep && resp.StatusCode < 300:
		r.body, r.err = io.ReadAll(resp.Body)
		r.in = int64(len(r.body))
	case resp.StatusCode >= 400:
		r.detail, r.in = failureDetail(resp.Body)
	default:
		r.in, r.err = io.Copy(io.Discard, resp.Body)
	}
	return r
}

func (w *Workload) sendJSON(ctx context.Context, method, path string, v any) response {
	b, err := json.Marshal(v)
	if err != nil {
		return response{err: err}
	}
	return w.send(ctx, method, path, b, true)
}

// decodeObject reads an object answer and notes its revision.
func (w *Workload) decodeObject(body []byte) (*model.Object, error) {
	var o model.Object
	if err := json.Unmarshal(body, &o); err != nil {
		return nil, fmt.Errorf("decoding the answer: %w", err)
	}
	w.noteRevision(o.Metadata.ResourceVersion)
	return &o, nil
}

func (w *Workload) noteRevision(rv string) {
	n, err := strconv.ParseUint(rv, 10, 64)
	if err != nil {
		return
	}
	for {
		cur := w.maxRev.Load()
		if n <= cur || w.maxRev.CompareAndSwap(cur, n) {
			return
		}
	}
}

// itemPath is an object's path below the API root.
func itemPath(k model.Key) string {
	if k.Kind.Namespaced() {
		return "/tenants/" + url.PathEscape(k.Tenant) + "/" + plural(k.Kind) + "/" + url.PathEscape(k.Name)
	}
	return "/" + plural(k.Kind) + "/" + url.PathEscape(k.Name)
}

// collectionPath is where objects of kind in tenant are listed and created.
func collectionPath(kind model.Kind, tenant string) string {
	if kind.Namespaced() {
		return "/tenants/" + url.PathEscape(tenant) + "/" + plural(kind)
	}
	return "/" + plural(kind)
}

func plural(k model.Kind) string {
	if k == model.KindPolicy {
		return "policies"
	}
	return strings.ToLower(string(k)) + "s"
}

func (w *Workload) randomTenant() string { return w.tenants[rand.IntN(len(w.tenants))] }
