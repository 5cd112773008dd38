package ingest

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/lib/promutils"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/inventory"
	"github.com/dsnscale/dsnscale/search"
	"github.com/dsnscale/dsnscale/tsdb"
)

func TestBadQueryParametersAreNamed(t *testing.T) {
	b := startBus(t)
	in, _ := start(t, b, nil)
	h := in.Handler()
	for _, tc := range []struct {
		path, field, msg string
	}{
		{"/api/v1/metrics/query", "match", "required"},
		{"/api/v1/metrics/query?" + q("match", "up", "matc", "x"), "matc", "unknown query parameter"},
		{"/api/v1/metrics/query?match=up&match=down", "match", "given 2 times"},
		{"/api/v1/metrics/query?" + q("match", `up{dsn="a"`), "match", "missing '}'"},
		{"/api/v1/metrics/query?" + q("match", `up{dsn=a}`), "match", "want a double-quoted string"},
		{"/api/v1/metrics/query?" + q("match", `rate(up[5m])`), "match", "only a series selector"},
		{"/api/v1/metrics/query?" + q("match", `{dsn=~".*"}`), "match", "matches the empty value"},
		{"/api/v1/metrics/query?" + q("match", `up{dsn=~"("}`), "match", "missing closing )"},
		{"/api/v1/metrics/query?" + q("match", "up", "from", "yesterday"), "from", "neither an RFC 3339 time"},
		{"/api/v1/metrics/query?" + q("match", "up", "to", "-5"), "to", "neither an RFC 3339 time"},
		{"/api/v1/metrics/query?" + q("match", "up", "from", "200", "to", "100"), "to", "before from"},
		{"/api/v1/metrics/query?" + q("match", "up", "step", "fast"), "step", "neither a duration"},
		{"/api/v1/metrics/query?" + q("match", "up", "step", "-1s"), "step", "negative"},
		{"/api/v1/metrics/query?" + q("match", "up", "step", "1500us"), "step", "whole number of milliseconds"},
		{"/api/v1/metrics/query?" + q("match", "up", "from", "0", "to", "100000", "step", "1s"), "step", "points per series"},
		{"/api/v1/metrics/query?" + q("match", "up", "limit", "0"), "limit", "from 1 to 10000"},
		{"/api/v1/events?" + q("dsn", "not a dsn"), "dsn", "not a DSN id"},
		{"/api/v1/events?" + q("severity", "fatal"), "severity", "want one of debug"},
		{"/api/v1/events?" + q("kind", "audit"), "kind", "/api/v1/audit"},
		{"/api/v1/events?" + q("kind", "metric"), "kind", "want event or log"},
		{"/api/v1/events?" + q("field.a b", "x"), "field.a b", "field name"},
		{"/api/v1/events?" + q("field.ok", ""), "field.ok", "non-empty"},
		{"/api/v1/events?" + q("limit", "100001"), "limit", "from 1 to 10000"},
		{"/api/v1/events?" + q("q", strings.Repeat("w", search.MaxQueryTextSize+1)), "q", "at most"},
		{"/api/v1/events?" + q("from", "3000-01-01T00:00:00Z"), "from", "1970 to 2261"},
		{"/api/v1/events?" + q("from", "100", "to", "50"), "to", "before from"},
		{"/api/v1/events?" + q("text", "x"), "text", "unknown query parameter"},
		{"/api/v1/inventory/dsns?" + q("state", "happy"), "state", "want one of admitted"},
		{"/api/v1/inventory/dsns?" + q("labelSelector", "site"), "labelSelector", "not key=value"},
		{"/api/v1/inventory/dsns?" + q("labelSelector", "-x=y"), "labelSelector", "label key"},
		{"/api/v1/inventory/dsns?" + q("continue", "a/b"), "continue", "not a token"},
		{"/api/v1/inventory/dsns?" + q("limit", "x"), "limit", "from 1 to 10000"},
		{"/api/v1/inventory/dsns/bad%20id", "id", "not a DSN id"},
		{"/api/v1/inventory/summary?" + q("x", "1"), "x", "unknown query parameter"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			var e errorBody
			require.Equal(t, http.StatusBadRequest, get(t, h, tc.path, &e))
			assert.Equal(t, errorBody{Code: 400, Reason: "BadRequest", Field: tc.field, Message: e.Message}, e)
			assert.Contains(t, e.Message, tc.msg)
		})
	}

	t.Run("method", func(t *testing.T) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/v1/events", nil))
		assert.Equal(t, http.StatusMethodNotAllowed, rec.Code)
		assert.Equal(t, "GET, HEAD", rec.Header().Get("Allow"))
	})
	t.Run("unknown DSN", func(t *testing.T) {
		var e errorBody
		require.Equal(t, http.StatusNotFound, get(t, h, "/api/v1/inventory/dsns/nobody", &e))
		assert.Equal(t, "NotFound", e.Reason)
	})
}

// failing backends answer every read with err, so the handler's mapping of backend failures can
// be checked without breaking a real backend.
type failing struct{ err error }

func (f failing) Select(context.Context, tsdb.Query) ([]tsdb.Series, error) { return nil, f.err }
func (f failing) Series(context.Context, time.Time, time.Time, ...tsdb.Matcher) ([]*promutils.Labels, error) {
	return nil, f.err
}
func (f failing) Search(context.Context, search.Query) (search.Result, error) {
	return search.Result{}, f.err
}
func (f failing) GetDSN(context.Context, string) (inventory.DSNRecord, error) {
	return inventory.DSNRecord{}, f.err
}
func (f failing) ListDSNs(context.Context, inventory.Filter) (inventory.Page, error) {
	return inventory.Page{}, f.err
}
func (f failing) Summarize(context.Context) (inventory.Summary, error) {
	return inventory.Summary{}, f.err
}
func (f failing) AdmissionHistory(context.Context, string, int) ([]inventory.Admission, error) {
	return nil, f.err
}
func (f failing) VersionHistory(context.Context, string) ([]inventory.VersionChange, error) {
	return nil, f.err
}

func TestBackendFailuresAre503(t *testing.T) {
	down := failing{errors.Join(tsdb.ErrBackend, search.ErrBackend, inventory.ErrBackend, errors.New("connection refused"))}
	h, err := NewHandler(HandlerConfig{TSDB: down, Search: down, Inventory: down})
	require.NoError(t, err)
	for _, path := range []string{
		"/api/v1/metrics/query?match=up", "/api/v1/events", "/api/v1/inventory/dsns", "/api/v1/inventory/dsns/d1", "/api/v1/inventory/summary",
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		assert.Equal(t, http.StatusServiceUnavailable, rec.Code, path)
		assert.Equal(t, "1", rec.Header().Get("Retry-After"), path)
		assert.Contains(t, rec.Body.String(), "connection refused", path)
	}

	// A closed embedded backend is unavailable too.
	b := startBus(t)
	in, _ := start(t, b, nil)
	require.NoError(t, in.TSDB().Close())
	var e errorBody
	require.Equal(t, http.StatusServiceUnavailable, get(t, in.Handler(), "/api/v1/metrics/query?match=up", &e))
	assert.Contains(t, e.Message, "tsdb backend is unavailable")

	_, err = NewHandler(HandlerConfig{Search: down, Inventory: down})
	require.ErrorIs(t, err, ErrConfig)
}
