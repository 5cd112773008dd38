package tsdb

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/promutils"
	"github.com/influxdata/influxdb-client-go/v2/api/write"
)

// Victoria is a VictoriaMetrics server. Samples go in as InfluxDB line protocol through
// /api/v2/write; VictoriaMetrics names the series <measurement>_<field>, so a metric name is
// split at its last underscore (dsn_cpu_seconds is sent as measurement dsn_cpu, field seconds)
// and must contain one that is neither first nor last. This relies on the server's default
// -influxMeasurementFieldSeparator=_ with -influxSkipSingleField and -influxSkipMeasurement off.
//
// Reads use the Prometheus HTTP API: raw samples through /api/v1/query with a range selector,
// stepped points through /api/v1/query_range with last_over_time, label sets through
// /api/v1/series. Queries ask the server to skip its result cache (nocache=1). Samples become
// visible to queries seconds after they are written (the server's in-memory buffers; Sync
// flushes them), and
// a server without latency_offset support (before v1.85) hides points within
// -search.latencyOffset (30s) of now from stepped queries.
type Victoria struct {
	target Target
	http   *http.Client
	w      *lineWriter
	opts   Options
	closed closeFlag
}

var _ Storage = (*Victoria)(nil)

func openVictoria(ctx context.Context, t Target, opts Options) (*Victoria, error) {
	hc := &http.Client{Timeout: opts.Timeout}
	v := &Victoria{target: t, http: hc, opts: opts}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.BaseURL+"/health", nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadURL, t, err)
	}
	v.authorize(req)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, unreachable(t, err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, unreachable(t, fmt.Errorf("GET /health: HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body))))
	}
	v.w = newLineWriter(t, opts, hc)
	return v, nil
}

func (v *Victoria) authorize(req *http.Request) {
	if v.target.User != "" || v.target.Password != "" {
		req.SetBasicAuth(v.target.User, v.target.Password)
	}
}

// Appender starts a write transaction; Commit sends its points.
func (v *Victoria) Appender() Appender {
	return &remoteAppender{w: v.w, toPt: victoriaPoint, closed: v.closed.isClosed}
}

// Close releases the HTTP client.
func (v *Victoria) Close() error {
	if !v.closed.close() {
		v.w.close()
	}
	return nil
}

// Sync asks the server to flush its in-memory buffers (/internal/force_flush), so committed
// samples are visible to queries at once rather than after a few seconds. A server that protects
// the endpoint with -forceFlushAuthKey refuses it with ErrBackend.
func (v *Victoria) Sync(ctx context.Context) error {
	if v.closed.isClosed() {
		return ErrClosed
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.target.BaseURL+"/internal/force_flush", nil)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBackend, err)
	}
	v.authorize(req)
	resp, err := v.http.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %s/internal/force_flush: %w", ErrBackend, v.target.BaseURL, err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: %s/internal/force_flush: HTTP %d: %s", ErrBackend, v.target.BaseURL, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}

// victoriaPoint splits the metric name into measurement and field, as VictoriaMetrics joins them.
func victoriaPoint(ls *promutils.Labels, t time.Time, val float64) (*write.Point, error) {
	name := ls.Get(MetricNameLabel)
	i := strings.LastIndexByte(name, '_')
	if i <= 0 || i == len(name)-1 {
		return nil, fmt.Errorf("%w: metric name %q: VictoriaMetrics receives line protocol and rebuilds the name as "+
			"<measurement>_<field>, so the name needs an underscore that is neither first nor last", ErrInvalid, name)
	}
	tags := make(map[string]string, ls.Len()-1)
	for _, l := range ls.GetLabels() {
		if l.Name != MetricNameLabel {
			tags[l.Name] = l.Value
		}
	}
	return write.NewPoint(name[:i], tags, map[string]any{name[i+1:]: val}, t), nil
}

// Select implements Querier.
func (v *Victoria) Select(ctx context.Context, q Query) ([]Series, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	if v.closed.isClosed() {
		return nil, ErrClosed
	}
	from, to := millis(q.From), millis(q.To)
	form := url.Values{"nocache": {"1"}, "latency_offset": {"0s"}}
	path := "/api/v1/query"
	if q.Step == 0 {
		// A range selector at /api/v1/query returns the stored samples in (to-window, to].
		window := to.Sub(from) + time.Millisecond
		form.Set("query", fmt.Sprintf("%s[%dms]", selector(q.Matchers), window.Milliseconds()))
		form.Set("time", promTime(to))
	} else {
		path = "/api/v1/query_range"
		form.Set("query", fmt.Sprintf("last_over_time(%s[%dms])", selector(q.Matchers), q.Step.Milliseconds()))
		form.Set("start", promTime(from))
		form.Set("end", promTime(to))
		form.Set("step", fmt.Sprintf("%dms", q.Step.Milliseconds()))
	}
	var data struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string   `json:"metric"`
			Values [][]json.RawMessage `json:"values"`
		} `json:"result"`
	}
	if err := v.call(ctx, path, form, &data); err != nil {
		return nil, err
	}
	if data.ResultType != "matrix" {
		return nil, fmt.Errorf("%w: %s%s: result type %q, want matrix", ErrBackend, v.target.BaseURL, path, data.ResultType)
	}
	out := make([]Series, 0, len(data.Result))
	for _, r := range data.Result {
		s := Series{Labels: fromMap(r.Metric)}
		for _, pair := range r.Values {
			smp, err := parsePromPoint(pair)
			if err != nil {
				return nil, fmt.Errorf("%w: %s%s: series %s: %v", ErrBackend, v.target.BaseURL, path, s.Labels.String(), err)
			}
			if smp.Time.Before(from) || smp.Time.After(to) {
				continue // servers differ on whether the window's lower bound is inclusive
			}
			s.Samples = append(s.Samples, smp)
		}
		if len(s.Samples) > 0 {
			out = append(out, s)
		}
	}
	sortSeries(out)
	return out, nil
}

// Series implements Querier.
func (v *Victoria) Series(ctx context.Context, from, to time.Time, matchers ...Matcher) ([]*promutils.Labels, error) {
	if err := validateMatchers(matchers); err != nil {
		return nil, err
	}
	if to.Before(from) {
		return nil, fmt.Errorf("%w: series %s: to (%v) is before from (%v)", ErrInvalid, selector(matchers), to, from)
	}
	if v.closed.isClosed() {
		return nil, ErrClosed
	}
	form := url.Values{
		"match[]": {selector(matchers)},
		"start":   {promTime(millis(from))},
		"end":     {promTime(millis(to))},
	}
	var data []map[string]string
	if err := v.call(ctx, "/api/v1/series", form, &data); err != nil {
		return nil, err
	}
	out := make([]*promutils.Labels, len(data))
	for i, m := range data {
		out[i] = fromMap(m)
	}
	sortLabelSets(out)
	return out, nil
}

// maxResponseBytes bounds a query response read into memory.
const maxResponseBytes = 512 << 20

// call POSTs form to path and decodes the Prometheus API envelope's data into data.
func (v *Victoria) call(ctx context.Context, path string, form url.Values, data any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, v.target.BaseURL+path, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBackend, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	v.authorize(req)
	resp, err := v.http.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %s%s: %w", ErrBackend, v.target.BaseURL, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return fmt.Errorf("%w: %s%s: reading response: %w", ErrBackend, v.target.BaseURL, path, err)
	}
	if len(body) > maxResponseBytes {
		return fmt.Errorf("%w: %s%s: response larger than %d bytes; narrow the query", ErrBackend, v.target.BaseURL, path, maxResponseBytes)
	}
	var env struct {
		Status    string          `json:"status"`
		Data      json.RawMessage `json:"data"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("%w: %s%s: HTTP %d: undecodable response %q: %v", ErrBackend, v.target.BaseURL, path, resp.StatusCode, truncate(body, 200), err)
	}
	if resp.StatusCode != http.StatusOK || env.Status != "success" {
		return fmt.Errorf("%w: %s%s: HTTP %d: %s: %s", ErrBackend, v.target.BaseURL, path, resp.StatusCode, env.ErrorType, env.Error)
	}
	if err := json.Unmarshal(env.Data, data); err != nil {
		return fmt.Errorf("%w: %s%s: undecodable data: %v", ErrBackend, v.target.BaseURL, path, err)
	}
	return nil
}

// promTime renders t as the Prometheus API's seconds with millisecond decimals.
func promTime(t time.Time) string {
	ms := t.UnixMilli()
	return fmt.Sprintf("%d.%03d", ms/1000, ms%1000)
}

// parsePromPoint decodes a [seconds, "value"] pair.
func parsePromPoint(pair []json.RawMessage) (Sample, error) {
	if len(pair) != 2 {
		return Sample{}, fmt.Errorf("point %v: want [time, value]", pair)
	}
	secs, err := strconv.ParseFloat(string(pair[0]), 64)
	if err != nil {
		return Sample{}, fmt.Errorf("point time %s: %v", pair[0], err)
	}
	var vs string
	if err := json.Unmarshal(pair[1], &vs); err != nil {
		return Sample{}, fmt.Errorf("point value %s: %v", pair[1], err)
	}
	val, err := strconv.ParseFloat(vs, 64)
	if err != nil {
		return Sample{}, fmt.Errorf("point value %q: %v", vs, err)
	}
	return Sample{Time: time.UnixMilli(int64(math.Round(secs * 1000))).UTC(), Value: val}, nil
}

func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "..."
}
