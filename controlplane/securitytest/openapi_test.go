package securitytest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane"
	"github.com/dsnscale/dsnscale/controlplane/api/openapitest"
	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/pki"
)

// openAPIChecker sends requests to a secure control plane and checks them and their answers
// against the OpenAPI document it serves.
type openAPIChecker struct {
	e      *env
	router routers.Router
	// checked holds the operations ("METHOD /path/{template}") answered with a success.
	checked map[string]bool
}

// bearerOnly accepts a request that the document asks a token of only if it carries one, so
// that a public route described as needing the token, or the reverse, fails the check.
func bearerOnly(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	if in.SecuritySchemeName != "bearerAuth" {
		return in.NewError(errors.New("unknown security scheme"))
	}
	if !strings.HasPrefix(in.RequestValidationInput.Request.Header.Get("Authorization"), "Bearer ") {
		return in.NewError(errors.New("no bearer token"))
	}
	return nil
}

// check sends method path with body (JSON-encoded unless nil) and the bearer token, if any,
// wants status, and returns the answer's body. The request (when it should succeed) and the
// answer must agree with the document.
func (c *openAPIChecker) check(method, path, token string, body any, status int) []byte {
	t := c.e.t
	t.Helper()
	var raw []byte
	if body != nil {
		var err error
		raw, err = json.Marshal(body)
		require.NoError(t, err)
	}
	req, err := http.NewRequest(method, c.e.srv.APIURL()+path, bytes.NewReader(raw))
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	route, b := openapitest.Exchange(t, c.e.hc, c.router, req, raw, status, bearerOnly)
	if status < 300 {
		c.checked[method+" "+route.Path] = true
	}
	return b
}

// TestOpenAPIDescribesTheSecurityRoutes checks real requests and answers of every security
// route of a control plane with security on against the OpenAPI document it serves, so that
// the document lists them and stays true to what they do.
func TestOpenAPIDescribesTheSecurityRoutes(t *testing.T) {
	e := start(t, nil, controlplane.RateLimits{})
	ctx := e.ctx()
	admin, err := e.admin.Token(ctx)
	require.NoError(t, err)
	_, err = e.admin.Create(ctx, obj(model.KindTenant, "", "acme", model.TenantSpec{}))
	require.NoError(t, err)

	raw, err := e.admin.OpenAPI(ctx)
	require.NoError(t, err)
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	require.NoError(t, err)
	require.NoError(t, doc.Validate(ctx))
	router, err := legacy.NewRouter(doc)
	require.NoError(t, err)
	c := &openAPIChecker{e: e, router: router, checked: map[string]bool{}}

	// Login and logout.
	user, pw, err := e.srv.AdminCredentials()
	require.NoError(t, err)
	var login struct{ Token string }
	require.NoError(t, json.Unmarshal(c.check("POST", "/api/v1/login", "", map[string]string{"user": user, "password": pw}, 200), &login))
	c.check("POST", "/api/v1/login", "", map[string]string{"user": user, "password": "not-the-password"}, 401)
	c.check("POST", "/api/v1/login", "", map[string]string{"user": user}, 400)
	c.check("POST", "/api/v1/logout", login.Token, nil, 204)
	c.check("GET", "/api/v1/users", login.Token, nil, 401)
	c.check("GET", "/api/v1/users", "", nil, 401)

	// Bootstrap tokens and admission.
	var created struct {
		Token          string
		BootstrapToken struct{ ID string }
	}
	require.NoError(t, json.Unmarshal(c.check("POST", "/api/v1/bootstraptokens", admin,
		map[string]any{"tenant": "acme", "dsn": "dsn-o", "labels": map[string]string{"site": "s1"}, "description": "openapi"}, 201), &created))
	tokenPath := "/api/v1/bootstraptokens/" + created.BootstrapToken.ID
	c.check("POST", "/api/v1/bootstraptokens", admin, map[string]any{"tenant": "nope"}, 422)
	c.check("GET", "/api/v1/bootstraptokens", admin, nil, 200)
	c.check("GET", "/api/v1/bootstraptokens?tenant=acme", admin, nil, 200)
	key, err := pki.NewKey()
	require.NoError(t, err)
	csr, err := pki.NewCSRFor(key, pki.Identity{Name: "dsn-o", Role: pki.RoleDSN})
	require.NoError(t, err)
	admit := map[string]any{"token": created.Token, "dsn": "dsn-o", "labels": map[string]string{"rack": "r1"}, "csr": string(csr)}
	c.check("POST", "/api/v1/admission", "", admit, 200)
	c.check("POST", "/api/v1/admission", "", admit, 401) // single use
	c.check("POST", "/api/v1/admission", "", map[string]any{"token": created.Token, "dsn": "dsn-o"}, 400)
	c.check("GET", tokenPath, admin, nil, 200)
	c.check("DELETE", tokenPath, admin, nil, 200)
	c.check("GET", "/api/v1/bootstraptokens/nope", admin, nil, 404)

	// Users.
	c.check("POST", "/api/v1/users", admin, map[string]any{"name": "olivia", "password": "a-long-password", "groups": []string{"ops"}}, 201)
	c.check("POST", "/api/v1/users", admin, map[string]any{"name": "olivia", "password": "a-long-password"}, 409)
	c.check("POST", "/api/v1/users", admin, map[string]any{"name": "short", "password": "short"}, 422)
	c.check("GET", "/api/v1/users", admin, nil, 200)
	c.check("GET", "/api/v1/users/olivia", admin, nil, 200)
	c.check("PUT", "/api/v1/users/olivia", admin, map[string]any{"groups": []string{"ops", "dev"}, "disabled": true}, 200)

	// Roles and role bindings.
	role := map[string]any{"name": "reader", "rules": []any{map[string]any{"verbs": []string{"get", "list"}, "kinds": []string{"Network"}, "tenants": []string{"acme"}}}}
	binding := map[string]any{"name": "readers", "role": "reader", "subjects": []any{map[string]string{"kind": "Group", "name": "ops"}}}
	for _, r := range []struct {
		coll string
		obj  map[string]any
	}{{"/api/v1/roles", role}, {"/api/v1/rolebindings", binding}} {
		name := r.obj["name"].(string)
		c.check("POST", r.coll, admin, r.obj, 201)
		c.check("POST", r.coll, admin, r.obj, 409)
		c.check("GET", r.coll, admin, nil, 200)
		c.check("GET", r.coll+"/"+name, admin, nil, 200)
		c.check("PUT", r.coll+"/"+name, admin, r.obj, 200)
		other := maps.Clone(r.obj)
		other["name"] = name + "-2"
		c.check("PUT", r.coll+"/"+name+"-2", admin, other, 201)
		builtIn := maps.Clone(r.obj)
		delete(builtIn, "name") // PUT takes the path's
		c.check("PUT", r.coll+"/admin", admin, builtIn, 409)
		c.check("POST", r.coll, admin, map[string]any{"name": "empty"}, 422)
		c.check("DELETE", r.coll+"/"+name+"-2", admin, nil, 204)
		c.check("GET", r.coll+"/"+name+"-2", admin, nil, 404)
	}
	c.check("DELETE", "/api/v1/users/olivia", admin, nil, 204)

	// The audit trail, once the calls above are in it.
	require.Eventually(t, func() bool {
		res, err := e.admin.Audit(ctx, url.Values{"user": {user}, "verb": {"create"}})
		return err == nil && len(res.Items) > 0
	}, 10*time.Second, 50*time.Millisecond, "the calls never reached the audit trail")
	q := url.Values{"user": {user}, "verb": {"create"}, "verdict": {"allowed"}, "kind": {"Role"}, "text": {"roles"}, "limit": {"5"},
		"from": {time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)}, "to": {time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}}
	var found struct{ Total int }
	require.NoError(t, json.Unmarshal(c.check("GET", "/api/v1/audit?"+q.Encode(), admin, nil, 200), &found))
	assert.Positive(t, found.Total, "the audit query found no record to check")
	c.check("GET", "/api/v1/audit?verdict=maybe", admin, nil, 400)
	c.check("GET", "/api/v1/audit?color=red", admin, nil, 400)

	// Every security operation of the document was checked against a real answer.
	for path, item := range doc.Paths.Map() {
		for m, o := range item.Operations() {
			if len(o.Tags) > 0 {
				assert.True(t, c.checked[m+" "+path], "%s %s (%s) is not checked against a real answer", m, path, o.OperationID)
			}
		}
	}
}
