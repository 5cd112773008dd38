package api

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/api/openapitest"
	"github.com/dsnscale/dsnscale/controlplane/rbac"
)

func loadOpenAPI(t *testing.T, e *testEnv) *openapi3.T {
	t.Helper()
	r := e.must(http.StatusOK, "GET", "/api/v1/openapi.json", nil)
	doc, err := openapi3.NewLoader().LoadFromData(r.body)
	require.NoError(t, err)
	require.NoError(t, doc.Validate(context.Background()))
	return doc
}

func TestOpenAPIDocumentIsValid(t *testing.T) {
	e := newTestEnv(t)
	doc := loadOpenAPI(t, e)
	assert.Equal(t, "3.0.3", doc.OpenAPI)

	// Every route the mux serves is described, with its method.
	s := &server{allowed: map[string][]string{}, mux: http.NewServeMux(), registry: e.reg}
	s.metrics = &metrics{}
	s.routes()
	for path, methods := range s.allowed {
		item := doc.Paths.Find(path)
		require.NotNil(t, item, "path %s is not in the document", path)
		for _, m := range methods {
			assert.NotNil(t, item.GetOperation(m), "%s %s is not in the document", m, path)
		}
	}
	// And nothing else but the security routes that package controlplane serves in front of
	// the API, which are tested against a real control plane in package securitytest.
	security := map[string][]string{}
	for _, r := range securityRoutes() {
		assert.NotContains(t, s.allowed, r.path, "security route %s %s is served by the API itself", r.method, r.path)
		security[r.path] = append(security[r.path], r.method)
	}
	for path, item := range doc.Paths.Map() {
		for m := range item.Operations() {
			assert.Contains(t, append(s.allowed[path], security[path]...), m, "document lists %s %s, which the API does not serve", m, path)
		}
	}
}

// TestOpenAPISecurity checks that the document asks for the login token on every route but the
// ones the control plane serves without one.
func TestOpenAPISecurity(t *testing.T) {
	doc := loadOpenAPI(t, newTestEnv(t))
	scheme := doc.Components.SecuritySchemes[bearerScheme]
	require.NotNil(t, scheme, "no %s security scheme", bearerScheme)
	assert.Equal(t, "http", scheme.Value.Type)
	assert.Equal(t, "bearer", scheme.Value.Scheme)
	require.Len(t, doc.Security, 1)
	assert.Contains(t, doc.Security[0], bearerScheme)

	// What authn.Middleware lets through without a token (see controlplane/security.go).
	public := append([]string{"/healthz", "/readyz"}, rbac.PublicAPIPaths...)
	for _, p := range public {
		require.NotNil(t, doc.Paths.Find(p), "public path %s is not in the document", p)
	}
	for path, item := range doc.Paths.Map() {
		for m, o := range item.Operations() {
			if slices.Contains(public, path) {
				if assert.NotNil(t, o.Security, "%s %s is public", m, path) {
					assert.Empty(t, *o.Security, "%s %s is public", m, path)
				}
				continue
			}
			assert.Nil(t, o.Security, "%s %s needs the token, as the document's security says", m, path)
			assert.NotNil(t, o.Responses.Value("401"), "%s %s needs a token: it answers 401 without one", m, path)
		}
	}
}

// TestOpenAPIDescribesRealAnswers checks real requests and answers against the document, so that
// it stays true to what the API does.
func TestOpenAPIDescribesRealAnswers(t *testing.T) {
	e := newTestEnv(t)
	e.fleet.add("d1", map[string]string{"site": "a"}, 3)
	doc := loadOpenAPI(t, e)
	router, err := legacy.NewRouter(doc)
	require.NoError(t, err)

	check := func(method, path, body string, status int) {
		t.Helper()
		var raw []byte
		if body != "" {
			raw = []byte(body)
		}
		req, err := http.NewRequest(method, e.url+path, bytes.NewReader(raw))
		require.NoError(t, err)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		// The API alone serves without security: no token is sent, none is checked.
		openapitest.Exchange(t, http.DefaultClient, router, req, raw, status, openapi3filter.NoopAuthenticationFunc)
	}
	var _ routers.Router = router

	check("POST", "/api/v1/tenants", tenant("acme"), 201)
	check("POST", "/api/v1/tenants/acme/networks", network("acme", "web", "10.0.0.0/24", 10, map[string]string{"tier": "web"}), 201)
	check("POST", "/api/v1/tenants/acme/policies", policy("acme", "p", [2]string{"web", ""}), 201)
	check("GET", "/api/v1/tenants/acme/networks?limit=1", "", 200)
	check("GET", "/api/v1/networks?labelSelector=tier=web", "", 200)
	check("GET", "/api/v1/tenants/acme/policies/p", "", 200)
	check("PUT", "/api/v1/tenants/acme/networks/web?dryRun=true", network("acme", "web", "10.0.0.0/24", 11, nil), 200)
	check("POST", "/api/v1/transactions", txBody([2]string{"create", tenant("beta")}, [2]string{"create", network("beta", "n", "10.0.0.0/24", 1, nil)}), 200)
	check("DELETE", "/api/v1/tenants/beta/networks/n", "", 200)
	check("GET", "/api/v1/tenants", "", 200)
	check("GET", "/api/v1/revision", "", 200)
	check("GET", "/api/v1/dsns?limit=5", "", 200)
	check("GET", "/api/v1/dsns/d1", "", 200)
	check("GET", "/api/v1/convergence?revision=2", "", 200)
	check("GET", "/healthz", "", 200)
	check("GET", "/readyz", "", 200)
	// Errors are described too.
	check("GET", "/api/v1/tenants/nope", "", 404)
	check("POST", "/api/v1/tenants/acme/networks", network("acme", "x", "10.0.0.0/24", 0, nil), 422)
	check("POST", "/api/v1/tenants", `{"bad"`, 400)
	check("POST", "/api/v1/tenants", tenant("acme"), 409)
	check("DELETE", "/api/v1/tenants/acme/networks/web", "", 409)
}
