package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dsnscale/dsnscale/controlplane/wire"
	"github.com/dsnscale/dsnscale/inventory"
	"github.com/dsnscale/dsnscale/search"
	"github.com/dsnscale/dsnscale/tsdb"
)

// matrix is the answer of the metrics query, shaped like Prometheus' range query.
type matrix struct {
	Status    string     `json:"status"`
	Data      matrixData `json:"data"`
	Truncated bool       `json:"truncated"`
}

type matrixData struct {
	ResultType string         `json:"resultType"`
	Result     []matrixSeries `json:"result"`
}

type matrixSeries struct {
	Metric map[string]string `json:"metric"`
	Values []samplePair      `json:"values"`
}

// samplePair encodes as Prometheus does: [unix seconds, "value"].
type samplePair tsdb.Sample

func (s samplePair) MarshalJSON() ([]byte, error) {
	ms := s.Time.UnixMilli()
	b := make([]byte, 0, 48)
	b = append(b, '[')
	b = strconv.AppendFloat(b, float64(ms)/1000, 'f', -1, 64)
	b = append(b, ',', '"')
	b = strconv.AppendFloat(b, s.Value, 'f', -1, 64)
	b = append(b, '"', ']')
	return b, nil
}

// UnmarshalJSON reads [unix seconds, "value"].
func (s *samplePair) UnmarshalJSON(b []byte) error {
	var pair [2]json.RawMessage
	if err := json.Unmarshal(b, &pair); err != nil {
		return err
	}
	var sec float64
	var val string
	if err := json.Unmarshal(pair[0], &sec); err != nil {
		return fmt.Errorf("sample time: %w", err)
	}
	if err := json.Unmarshal(pair[1], &val); err != nil {
		return fmt.Errorf("sample value: %w", err)
	}
	v, err := strconv.ParseFloat(val, 64)
	if err != nil {
		return fmt.Errorf("sample value: %w", err)
	}
	s.Time = time.UnixMilli(int64(math.Round(sec * 1000))).UTC()
	s.Value = v
	return nil
}

func (h *handler) metricsQuery(ctx context.Context, r *http.Request) (any, error) {
	p, err := parseParams(r, []string{"match", "from", "to", "step", "limit"})
	if err != nil {
		return nil, err
	}
	match := p.Get("match")
	if match == "" {
		return nil, badParam("match", "required: a series selector such as dsn_cpu_percent{dsn=\"rack7-dpu-0042\"}")
	}
	ms, err := ParseSelector(match)
	if err != nil {
		return nil, badParam("match", "%v", err)
	}
	to, err := p.time("to", h.cfg.Now())
	if err != nil {
		return nil, err
	}
	from, err := p.time("from", to.Add(-DefaultQueryRange))
	if err != nil {
		return nil, err
	}
	if to.Before(from) {
		return nil, badParam("to", "%s is before from (%s)", to.UTC().Format(time.RFC3339Nano), from.UTC().Format(time.RFC3339Nano))
	}
	step, err := p.duration("step")
	if err != nil {
		return nil, err
	}
	if step > 0 {
		if step < time.Millisecond || step%time.Millisecond != 0 {
			return nil, badParam("step", "%v: want a whole number of milliseconds, at least 1ms", step)
		}
		if n := to.Sub(from) / step; n >= tsdb.MaxSteps {
			return nil, badParam("step", "%v over %v makes %d points per series, at most %d: widen the step or narrow from..to", step, to.Sub(from), n+1, tsdb.MaxSteps)
		}
	}
	limit, err := p.int("limit", DefaultSeriesLimit, 1, MaxSeriesLimit)
	if err != nil {
		return nil, err
	}
	series, err := h.cfg.TSDB.Select(ctx, tsdb.Query{Matchers: ms, From: from, To: to, Step: step})
	if err != nil {
		return nil, backendError("tsdb", "match", err)
	}
	out := matrix{Status: "success", Data: matrixData{ResultType: "matrix", Result: []matrixSeries{}}}
	if len(series) > limit {
		series, out.Truncated = series[:limit], true
	}
	for _, s := range series {
		ms := matrixSeries{Metric: map[string]string{}, Values: make([]samplePair, len(s.Samples))}
		for _, l := range s.Labels.GetLabels() {
			ms.Metric[l.Name] = l.Value
		}
		for i, smp := range s.Samples {
			ms.Values[i] = samplePair(smp)
		}
		out.Data.Result = append(out.Data.Result, ms)
	}
	return out, nil
}

// eventList is the answer of the events query.
type eventList struct {
	Items []search.Document `json:"items"`
	Total int               `json:"total"`
}

const fieldPrefix = "field."

func (h *handler) events(ctx context.Context, r *http.Request) (any, error) {
	p, err := parseParams(r, []string{"q", "dsn", "type", "severity", "kind", "from", "to", "limit"}, fieldPrefix)
	if err != nil {
		return nil, err
	}
	q := search.Query{Text: p.Get("q"), DSN: p.Get("dsn"), Type: p.Get("type"), Severity: p.Get("severity")}
	if len(q.Text) > search.MaxQueryTextSize || !utf8.ValidString(q.Text) {
		return nil, badParam("q", "want UTF-8 text of at most %d bytes", search.MaxQueryTextSize)
	}
	if q.DSN != "" && !wire.ValidID(q.DSN) {
		return nil, badParam("dsn", "%q is not a DSN id (1-128 of [A-Za-z0-9_-])", q.DSN)
	}
	if len(q.Type) > search.MaxShortBytes || !utf8.ValidString(q.Type) {
		return nil, badParam("type", "want UTF-8 of at most %d bytes", search.MaxShortBytes)
	}
	if q.Severity != "" && !slices.Contains(search.Severities, q.Severity) {
		return nil, badParam("severity", "%q: want one of %s", q.Severity, strings.Join(search.Severities, ", "))
	}
	var kinds []search.Kind
	switch k := p.Get("kind"); k {
	case "":
		kinds = []search.Kind{search.KindEvent, search.KindLog}
	case string(search.KindEvent), string(search.KindLog):
		kinds = []search.Kind{search.Kind(k)}
	case string(search.KindAudit):
		return nil, badParam("kind", "audit records are served by GET /api/v1/audit")
	default:
		return nil, badParam("kind", "%q: want event or log", k)
	}
	for name := range p.Values {
		key, ok := strings.CutPrefix(name, fieldPrefix)
		if !ok {
			continue
		}
		v := p.Get(name)
		if !fieldKeyPattern.MatchString(key) {
			return nil, badParam(name, "field name %q: want 1-64 of [A-Za-z0-9_-]", key)
		}
		if v == "" || len(v) > search.MaxFieldValue || !utf8.ValidString(v) {
			return nil, badParam(name, "want a non-empty value of at most %d bytes of UTF-8", search.MaxFieldValue)
		}
		if q.Fields == nil {
			q.Fields = map[string]string{}
		}
		q.Fields[key] = v
	}
	if q.From, err = p.time("from", time.Time{}); err != nil {
		return nil, err
	}
	if q.To, err = p.time("to", time.Time{}); err != nil {
		return nil, err
	}
	for _, t := range []struct {
		name string
		v    time.Time
	}{{"from", q.From}, {"to", q.To}} {
		if !t.v.IsZero() && (t.v.Before(search.MinTime) || !t.v.Before(search.MaxTime)) {
			return nil, badParam(t.name, "want a time from 1970 to 2261")
		}
	}
	if !q.From.IsZero() && !q.To.IsZero() && q.To.Before(q.From) {
		return nil, badParam("to", "is before from")
	}
	if q.Limit, err = p.int("limit", search.DefaultLimit, 1, search.MaxLimit); err != nil {
		return nil, err
	}
	out := eventList{Items: []search.Document{}}
	for _, k := range kinds {
		q.Kind = k
		res, err := h.cfg.Search.Search(ctx, q)
		if err != nil {
			return nil, backendError("search", "q", err)
		}
		out.Items = append(out.Items, res.Hits...)
		out.Total += res.Total
	}
	if len(kinds) > 1 {
		slices.SortStableFunc(out.Items, func(a, b search.Document) int {
			if c := a.Time.Compare(b.Time); c != 0 {
				return c
			}
			return strings.Compare(a.ID, b.ID)
		})
		if len(out.Items) > q.Limit {
			out.Items = out.Items[:q.Limit]
		}
	}
	return out, nil
}

// dsnList is the answer of the inventory list.
type dsnList struct {
	Items    []inventory.DSNRecord `json:"items"`
	Continue string                `json:"continue,omitempty"`
}

func (h *handler) inventoryDSNs(ctx context.Context, r *http.Request) (any, error) {
	p, err := parseParams(r, []string{"labelSelector", "state", "site", "softwareVersion", "limit", "continue"})
	if err != nil {
		return nil, err
	}
	f := inventory.Filter{State: p.Get("state"), Site: p.Get("site"), SoftwareVersion: p.Get("softwareVersion"), After: p.Get("continue")}
	if f.Labels, err = parseLabelSelector(p.Get("labelSelector")); err != nil {
		return nil, err
	}
	if f.State != "" && !slices.Contains(inventory.States, f.State) {
		return nil, badParam("state", "%q: want one of %s", f.State, strings.Join(inventory.States, ", "))
	}
	for _, s := range []struct{ name, v string }{{"site", f.Site}, {"softwareVersion", f.SoftwareVersion}} {
		if len(s.v) > inventory.MaxShortLen || !utf8.ValidString(s.v) {
			return nil, badParam(s.name, "want UTF-8 of at most %d bytes", inventory.MaxShortLen)
		}
	}
	if f.After != "" && !wire.ValidID(f.After) {
		return nil, badParam("continue", "%q is not a token this API issued", f.After)
	}
	if f.Limit, err = p.int("limit", inventory.DefaultPageSize, 1, inventory.MaxPageSize); err != nil {
		return nil, err
	}
	if err := f.Validate(); err != nil {
		return nil, badParam("labelSelector", "%v", err)
	}
	page, err := h.cfg.Inventory.ListDSNs(ctx, f)
	if err != nil {
		return nil, backendError("inventory", "", err)
	}
	if page.DSNs == nil {
		page.DSNs = []inventory.DSNRecord{}
	}
	return dsnList{Items: page.DSNs, Continue: page.Next}, nil
}

// parseLabelSelector parses "k=v,k2=v2" (equality only, as the DSN list of the API takes it).
func parseLabelSelector(s string) (map[string]string, error) {
	if s == "" {
		return nil, nil
	}
	sel := map[string]string{}
	for _, term := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(term, "=")
		if !ok {
			return nil, badParam("labelSelector", "term %q is not key=value", term)
		}
		v = strings.TrimPrefix(v, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if k == "" {
			return nil, badParam("labelSelector", "term %q has an empty key", term)
		}
		if old, dup := sel[k]; dup && old != v {
			return nil, badParam("labelSelector", "key %q wants both %q and %q", k, old, v)
		}
		sel[k] = v
	}
	if err := (inventory.Filter{Labels: sel}).Validate(); err != nil {
		return nil, badParam("labelSelector", "%v", err)
	}
	return sel, nil
}

// dsnDetail is the answer for one DSN of the inventory.
type dsnDetail struct {
	DSN        inventory.DSNRecord       `json:"dsn"`
	Admissions []inventory.Admission     `json:"admissions"`
	Versions   []inventory.VersionChange `json:"versions"`
}

func (h *handler) inventoryDSN(ctx context.Context, r *http.Request) (any, error) {
	if _, err := parseParams(r, nil); err != nil {
		return nil, err
	}
	id := r.PathValue("id")
	if !wire.ValidID(id) {
		return nil, badParam("id", "path segment {id}: %q is not a DSN id (1-128 of [A-Za-z0-9_-])", id)
	}
	rec, err := h.cfg.Inventory.GetDSN(ctx, id)
	if err != nil {
		return nil, backendError("inventory", "id", err)
	}
	adm, err := h.cfg.Inventory.AdmissionHistory(ctx, id, historyLimit)
	if err != nil {
		return nil, backendError("inventory", "id", err)
	}
	vers, err := h.cfg.Inventory.VersionHistory(ctx, id)
	if err != nil {
		return nil, backendError("inventory", "id", err)
	}
	if adm == nil {
		adm = []inventory.Admission{}
	}
	if vers == nil {
		vers = []inventory.VersionChange{}
	}
	return dsnDetail{DSN: rec, Admissions: adm, Versions: vers}, nil
}

func (h *handler) inventorySummary(ctx context.Context, r *http.Request) (any, error) {
	if _, err := parseParams(r, nil); err != nil {
		return nil, err
	}
	s, err := h.cfg.Inventory.Summarize(ctx)
	if err != nil {
		return nil, backendError("inventory", "", err)
	}
	return s, nil
}
