package api

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/dsnscale/dsnscale/controlplane/model"
)

// readBody returns the request body after checking its media type and size: 415 unless it is
// JSON, 413 over MaxBodyBytes.
func (s *server) readBody(r *http.Request) ([]byte, error) {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		got := ct
		if got == "" {
			got = "none"
		}
		return nil, errorf(http.StatusUnsupportedMediaType, reasonUnsupportedMedia, "",
			"Content-Type must be application/json, got %s", got)
	}
	limit := s.cfg.MaxBodyBytes
	if r.ContentLength > limit {
		return nil, errorf(http.StatusRequestEntityTooLarge, reasonTooLarge, "",
			"request body of %d bytes is over the limit of %d bytes", r.ContentLength, limit)
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errorf(http.StatusRequestEntityTooLarge, reasonTooLarge, "", "request body is over the limit of %d bytes", limit)
		}
		return nil, errorf(http.StatusBadRequest, reasonBadRequest, "", "reading the request body: %v", err)
	}
	return body, nil
}

// query is a request's query parameters, checked against the ones a route accepts.
type query struct{ url.Values }

// parseQuery rejects parameters the route does not know and repeated ones, so that a typo
// ("labelselector") is an error rather than a silently ignored filter.
func parseQuery(r *http.Request, known ...string) (query, error) {
	vals, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return query{}, errorf(http.StatusBadRequest, reasonBadRequest, "", "malformed query string: %v", err)
	}
	for name, vs := range vals {
		ok := false
		for _, k := range known {
			ok = ok || name == k
		}
		if !ok {
			return query{}, errorf(http.StatusBadRequest, reasonBadRequest, name,
				"unknown query parameter %q; this route accepts: %s", name, strings.Join(known, ", "))
		}
		if len(vs) > 1 {
			return query{}, errorf(http.StatusBadRequest, reasonBadRequest, name, "query parameter %q is given %d times", name, len(vs))
		}
	}
	return query{vals}, nil
}

// dryRun reads ?dryRun=true|false.
func (q query) dryRun() (bool, error) {
	switch v := q.Get("dryRun"); v {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	default:
		return false, errorf(http.StatusBadRequest, reasonBadRequest, "dryRun", "must be true or false, got %q", v)
	}
}

// dryRunQuery reads the query of a write, which may carry dryRun and nothing else.
func dryRunQuery(r *http.Request) (bool, error) {
	q, err := parseQuery(r, "dryRun")
	if err != nil {
		return false, err
	}
	return q.dryRun()
}

// uint reads a non-negative integer parameter; absent gives 0.
func (q query) uint(name string) (uint64, error) {
	v := q.Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, errorf(http.StatusBadRequest, reasonBadRequest, name, "must be a non-negative integer, got %q", v)
	}
	return n, nil
}

// listParams are the paging and filtering parameters of a list.
type listParams struct {
	selector map[string]string
	limit    int
	cont     string
}

func (q query) list() (listParams, error) {
	var p listParams
	limit, err := q.uint("limit")
	if err != nil {
		return p, err
	}
	if limit > MaxListLimit {
		return p, errorf(http.StatusBadRequest, reasonBadRequest, "limit", "must be at most %d, got %d", MaxListLimit, limit)
	}
	p.limit = int(limit)
	p.cont = q.Get("continue")
	if len(p.cont) > 1024 {
		return p, errorf(http.StatusBadRequest, reasonBadRequest, "continue", "token of %d bytes is not one this API issued", len(p.cont))
	}
	p.selector, err = parseSelector(q.Get("labelSelector"))
	if err != nil {
		return p, errorf(http.StatusBadRequest, reasonBadRequest, "labelSelector", "%v", err)
	}
	return p, nil
}

// errSelector marks a malformed label selector.
var errSelector = errors.New("invalid label selector")

// parseSelector parses a label selector "k=v,k2=v2" (equality only; "==" is accepted for "=").
// An empty string selects everything.
func parseSelector(s string) (map[string]string, error) {
	if s == "" {
		return nil, nil
	}
	sel := map[string]string{}
	for _, term := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(term, "=")
		if !ok {
			return nil, fmt.Errorf("%w: term %q is not key=value", errSelector, term)
		}
		v = strings.TrimPrefix(v, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if msg := model.CheckLabelKey(k); msg != "" {
			return nil, fmt.Errorf("%w: term %q: key: %s", errSelector, term, msg)
		}
		if msg := model.CheckLabelValue(v); msg != "" {
			return nil, fmt.Errorf("%w: term %q: %s", errSelector, term, msg)
		}
		if old, dup := sel[k]; dup && old != v {
			return nil, fmt.Errorf("%w: key %q wants both %q and %q", errSelector, k, old, v)
		}
		sel[k] = v
	}
	if len(sel) > model.MaxLabels {
		return nil, fmt.Errorf("%w: %d terms, at most %d", errSelector, len(sel), model.MaxLabels)
	}
	return sel, nil
}

// pathName reads and checks a path parameter that names an object or tenant.
func pathName(r *http.Request, param string, dsn bool) (string, error) {
	v := r.PathValue(param)
	check := model.CheckName
	if dsn {
		check = model.CheckDSNID
	}
	if msg := check(v); msg != "" {
		return "", errorf(http.StatusBadRequest, reasonBadRequest, param, "path segment {%s}: %s", param, msg)
	}
	return v, nil
}
