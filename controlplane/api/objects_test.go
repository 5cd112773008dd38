package api

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/model"
)

func TestObjectLifecycle(t *testing.T) {
	e := newTestEnv(t)

	r := e.must(http.StatusCreated, "POST", "/api/v1/tenants", tenant("acme"))
	assert.Equal(t, "/api/v1/tenants/acme", r.header.Get("Location"))
	tn := r.object(t)
	assert.NotEmpty(t, tn.Metadata.ResourceVersion)
	assert.Equal(t, strconv.FormatUint(e.store.Revision(), 10), tn.Metadata.ResourceVersion)

	// The tenant may be left out of a namespaced object: the path gives it.
	netBody := strings.Replace(network("acme", "web", "10.0.0.0/24", 10, map[string]string{"tier": "web"}), `"tenant":"acme",`, ``, 1)
	r = e.must(http.StatusCreated, "POST", "/api/v1/tenants/acme/networks", netBody)
	assert.Equal(t, "/api/v1/tenants/acme/networks/web", r.header.Get("Location"))
	created := r.object(t)
	assert.Equal(t, "acme", created.Metadata.Tenant)

	got := e.must(http.StatusOK, "GET", "/api/v1/tenants/acme/networks/web", nil).object(t)
	assert.Equal(t, created.Metadata.ResourceVersion, got.Metadata.ResourceVersion)
	assert.JSONEq(t, `{"cidr":"10.0.0.0/24","vlan":10}`, string(got.Spec))

	// Update with the current resourceVersion succeeds and moves it on.
	upd := strings.Replace(network("acme", "web", "10.0.1.0/24", 11, nil), `"tenant":"acme"`,
		`"tenant":"acme","resourceVersion":"`+got.Metadata.ResourceVersion+`"`, 1)
	updated := e.must(http.StatusOK, "PUT", "/api/v1/tenants/acme/networks/web", upd).object(t)
	assert.NotEqual(t, got.Metadata.ResourceVersion, updated.Metadata.ResourceVersion)

	// The same update again is stale: 409, and the stored object stays.
	r = e.must(http.StatusConflict, "PUT", "/api/v1/tenants/acme/networks/web", upd)
	er := r.err(t)
	assert.Equal(t, "Conflict", er.Reason)
	assert.Equal(t, "metadata.resourceVersion", er.Field)
	again := e.must(http.StatusOK, "GET", "/api/v1/tenants/acme/networks/web", nil).object(t)
	assert.Equal(t, updated.Metadata.ResourceVersion, again.Metadata.ResourceVersion)

	// An update without resourceVersion is unconditional.
	e.must(http.StatusOK, "PUT", "/api/v1/tenants/acme/networks/web", network("acme", "web", "10.0.2.0/24", 12, nil))

	// Create of an existing object: 409 AlreadyExists.
	er = e.must(http.StatusConflict, "POST", "/api/v1/tenants/acme/networks", network("acme", "web", "10.0.0.0/24", 10, nil)).err(t)
	assert.Equal(t, "AlreadyExists", er.Reason)

	// Update of a missing object: 404 naming it.
	er = e.must(http.StatusNotFound, "PUT", "/api/v1/tenants/acme/networks/nope", network("acme", "nope", "10.0.0.0/24", 10, nil)).err(t)
	assert.Equal(t, "NotFound", er.Reason)
	assert.Contains(t, er.Message, "Network/acme/nope")

	// Delete with a stale resourceVersion: 409; with the current one: 200 and the last state.
	cur := e.must(http.StatusOK, "GET", "/api/v1/tenants/acme/networks/web", nil).object(t)
	e.must(http.StatusConflict, "DELETE", "/api/v1/tenants/acme/networks/web?resourceVersion="+updated.Metadata.ResourceVersion, nil)
	last := e.must(http.StatusOK, "DELETE", "/api/v1/tenants/acme/networks/web?resourceVersion="+cur.Metadata.ResourceVersion, nil).object(t)
	assert.Equal(t, "web", last.Metadata.Name)
	er = e.must(http.StatusNotFound, "GET", "/api/v1/tenants/acme/networks/web", nil).err(t)
	assert.Equal(t, "Network/acme/web not found", er.Message)
	e.must(http.StatusNotFound, "DELETE", "/api/v1/tenants/acme/networks/web", nil)

	// Tenants and policies go through the same routes.
	e.must(http.StatusOK, "PUT", "/api/v1/tenants/acme", `{"apiVersion":"dsnscale/v1","kind":"Tenant","metadata":{},"spec":{"displayName":"ACME"}}`)
	assert.JSONEq(t, `{"displayName":"ACME"}`, string(e.must(http.StatusOK, "GET", "/api/v1/tenants/acme", nil).object(t).Spec))
	e.must(http.StatusCreated, "POST", "/api/v1/tenants/acme/policies", policy("acme", "p", [2]string{"", ""}))
	e.must(http.StatusOK, "DELETE", "/api/v1/tenants/acme/policies/p", nil)
	e.must(http.StatusOK, "DELETE", "/api/v1/tenants/acme", nil)
}

func TestRelations(t *testing.T) {
	e := newTestEnv(t)
	// A network in a tenant that does not exist.
	er := e.must(http.StatusUnprocessableEntity, "POST", "/api/v1/tenants/ghost/networks", network("ghost", "n", "10.0.0.0/24", 1, nil)).err(t)
	assert.Equal(t, "metadata.tenant", er.Field)
	assert.Contains(t, er.Message, `tenant "ghost" does not exist`)

	e.must(http.StatusCreated, "POST", "/api/v1/tenants", tenant("acme"))
	e.must(http.StatusCreated, "POST", "/api/v1/tenants/acme/networks", network("acme", "web", "10.0.0.0/24", 1, nil))
	e.must(http.StatusCreated, "POST", "/api/v1/tenants/acme/networks", network("acme", "db", "10.0.1.0/24", 2, nil))

	// A rule naming a network that does not exist, with its field path.
	er = e.must(http.StatusUnprocessableEntity, "POST", "/api/v1/tenants/acme/policies",
		policy("acme", "p", [2]string{"web", "db"}, [2]string{"db", ""}, [2]string{"cache", "web"})).err(t)
	assert.Equal(t, "Invalid", er.Reason)
	assert.Equal(t, "spec.rules[2].from.network", er.Field)
	assert.Contains(t, er.Message, `network "cache" does not exist in tenant "acme"`)
	e.must(http.StatusNotFound, "GET", "/api/v1/tenants/acme/policies/p", nil)

	e.must(http.StatusCreated, "POST", "/api/v1/tenants/acme/policies", policy("acme", "p", [2]string{"web", "db"}))

	// Deleting a network a policy names: 409 naming the policy and the field.
	er = e.must(http.StatusConflict, "DELETE", "/api/v1/tenants/acme/networks/db", nil).err(t)
	assert.Contains(t, er.Message, "Policy/acme/p at spec.rules[0].to.network")
	e.must(http.StatusOK, "GET", "/api/v1/tenants/acme/networks/db", nil)

	// Deleting a tenant that still has objects: 409 naming some.
	er = e.must(http.StatusConflict, "DELETE", "/api/v1/tenants/acme", nil).err(t)
	assert.Contains(t, er.Message, "still has 3 objects")
	assert.Contains(t, er.Message, "Network/acme/db")

	// Updating the policy to stop naming db frees it.
	e.must(http.StatusOK, "PUT", "/api/v1/tenants/acme/policies/p", policy("acme", "p", [2]string{"web", ""}))
	e.must(http.StatusOK, "DELETE", "/api/v1/tenants/acme/networks/db", nil)
}

func TestRequestErrors(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.MaxBodyBytes = 4096 })
	e.must(http.StatusCreated, "POST", "/api/v1/tenants", tenant("acme"))
	goodNet := network("acme", "web", "10.0.0.0/24", 10, nil)

	tests := []struct {
		name        string
		method      string
		path        string
		body        string
		contentType string
		status      int
		reason      string
		field       string
		contains    string
	}{
		{"malformed JSON", "POST", "/api/v1/tenants", `{"apiVersion":`, "", 400, "BadRequest", "", "malformed JSON"},
		{"not an object", "POST", "/api/v1/tenants", `42`, "", 400, "BadRequest", "", "must be an object"},
		{"unknown field", "POST", "/api/v1/tenants/acme/networks", strings.Replace(goodNet, `"vlan"`, `"mtu":9000,"vlan"`, 1), "", 400, "BadRequest", "spec.mtu", "unknown field"},
		{"wrong type", "POST", "/api/v1/tenants/acme/networks", strings.Replace(goodNet, `"vlan":10`, `"vlan":"10"`, 1), "", 400, "BadRequest", "spec.vlan", "must be an integer"},
		{"wrong envelope type", "POST", "/api/v1/tenants", `{"apiVersion":"dsnscale/v1","kind":"Tenant","metadata":"acme"}`, "", 400, "BadRequest", "metadata", "must be an object"},
		{"kind mismatch", "POST", "/api/v1/tenants/acme/networks", tenant("x"), "", 400, "BadRequest", "kind", `must be "Network" on this path`},
		{"tenant mismatch", "POST", "/api/v1/tenants/acme/networks", network("other", "web", "10.0.0.0/24", 10, nil), "", 400, "BadRequest", "metadata.tenant", "does not match"},
		{"name mismatch", "PUT", "/api/v1/tenants/acme", tenant("other"), "", 400, "BadRequest", "metadata.name", "does not match"},
		{"wrong apiVersion", "POST", "/api/v1/tenants", strings.Replace(tenant("x"), "dsnscale/v1", "v2", 1), "", 400, "BadRequest", "apiVersion", "must be"},
		{"oversized body", "POST", "/api/v1/tenants", `{"apiVersion":"dsnscale/v1","kind":"Tenant","metadata":{"name":"big"},"spec":{"displayName":"` + strings.Repeat("x", 5000) + `"}}`, "", 413, "RequestEntityTooLarge", "", "over the limit of 4096 bytes"},
		{"not JSON", "POST", "/api/v1/tenants", tenant("x"), "text/plain", 415, "UnsupportedMediaType", "", "application/json"},
		{"no content type", "POST", "/api/v1/tenants", tenant("x"), "-", 415, "UnsupportedMediaType", "", "got none"},
		{"invalid vlan", "POST", "/api/v1/tenants/acme/networks", network("acme", "web", "10.0.0.0/24", 5000, nil), "", 422, "Invalid", "spec.vlan", "1-4094"},
		{"invalid cidr", "POST", "/api/v1/tenants/acme/networks", network("acme", "web", "10.0.0.7/24", 10, nil), "", 422, "Invalid", "spec.cidr", "host bits"},
		{"invalid name", "POST", "/api/v1/tenants", tenant("Acme"), "", 422, "Invalid", "metadata.name", "lowercase DNS label"},
		{"resourceVersion on create", "POST", "/api/v1/tenants", `{"apiVersion":"dsnscale/v1","kind":"Tenant","metadata":{"name":"x","resourceVersion":"3"}}`, "", 422, "Invalid", "metadata.resourceVersion", "must be empty on create"},
		{"invalid selector", "GET", "/api/v1/tenants/acme/networks?labelSelector=tier", "", "", 400, "BadRequest", "labelSelector", "not key=value"},
		{"invalid selector value", "GET", "/api/v1/networks?labelSelector=tier=a%20b", "", "", 400, "BadRequest", "labelSelector", "label value"},
		{"bad limit", "GET", "/api/v1/tenants?limit=-1", "", "", 400, "BadRequest", "limit", "non-negative integer"},
		{"huge limit", "GET", "/api/v1/tenants?limit=1000000", "", "", 400, "BadRequest", "limit", "at most"},
		{"bad continue", "GET", "/api/v1/tenants?continue=garbage", "", "", 400, "BadRequest", "continue", "continue token"},
		{"unknown parameter", "GET", "/api/v1/tenants?labelselector=a=b", "", "", 400, "BadRequest", "labelselector", "unknown query parameter"},
		{"repeated parameter", "GET", "/api/v1/tenants?limit=1&limit=2", "", "", 400, "BadRequest", "limit", "given 2 times"},
		{"bad dryRun", "POST", "/api/v1/tenants?dryRun=yes", tenant("x"), "", 400, "BadRequest", "dryRun", "true or false"},
		{"bad delete resourceVersion", "DELETE", "/api/v1/tenants/acme?resourceVersion=x", "", "", 422, "Invalid", "resourceVersion", "decimal revision"},
		{"bad path name", "GET", "/api/v1/tenants/Acme", "", "", 400, "BadRequest", "name", "lowercase DNS label"},
		{"bad path tenant", "GET", "/api/v1/tenants/a_b/networks", "", "", 400, "BadRequest", "tenant", "lowercase DNS label"},
		{"missing object", "GET", "/api/v1/tenants/nope", "", "", 404, "NotFound", "", "Tenant/nope not found"},
		{"unknown route", "GET", "/api/v2/tenants", "", "", 404, "NotFound", "", "no route"},
		{"method not allowed", "POST", "/api/v1/tenants/acme", tenant("acme"), "", 405, "MethodNotAllowed", "", "allowed: DELETE, GET, HEAD, PUT"},
		{"DSN create", "POST", "/api/v1/dsns", `{}`, "", 405, "MethodNotAllowed", "", "created by admission"},
		{"DSN put without labels", "PUT", "/api/v1/dsns/d1", `{}`, "", 422, "Invalid", "labels", "required"},
		{"DSN put with a bad label", "PUT", "/api/v1/dsns/d1", `{"labels":{"site":"a,b"}}`, "", 422, "Invalid", `labels["site"]`, ""},
		{"DSN put with a spec", "PUT", "/api/v1/dsns/d1", `{"labels":{},"spec":{}}`, "", 400, "BadRequest", "spec", ""},
		{"DSN in the tenant API", "POST", "/api/v1/tenants", `{"apiVersion":"dsnscale/v1","kind":"DSN","metadata":{"name":"d1"}}`, "", 422, "Invalid", "kind", "admission"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.store.Revision()
			var body any
			if tc.body != "" {
				body = tc.body
			}
			ct := tc.contentType
			switch ct {
			case "":
				ct = "application/json"
			case "-":
				ct = ""
			}
			r := e.doWith(tc.method, tc.path, body, ct, nil)
			require.Equal(t, tc.status, r.status, "body: %s", r.body)
			er := r.err(t)
			assert.Equal(t, tc.reason, er.Reason)
			assert.Equal(t, tc.field, er.Field)
			assert.Contains(t, er.Message, tc.contains)
			if tc.status == http.StatusMethodNotAllowed {
				assert.NotEmpty(t, r.header.Get("Allow"))
			}
			assert.Equal(t, before, e.store.Revision(), "a rejected request changes nothing")
		})
	}
}

func TestDryRunStoresNothing(t *testing.T) {
	e := newTestEnv(t)
	e.must(http.StatusCreated, "POST", "/api/v1/tenants", tenant("acme"))
	cur := e.must(http.StatusCreated, "POST", "/api/v1/tenants/acme/networks", network("acme", "web", "10.0.0.0/24", 1, nil)).object(t)
	rev := e.store.Revision()

	r := e.must(http.StatusCreated, "POST", "/api/v1/tenants/acme/networks?dryRun=true", network("acme", "db", "10.0.1.0/24", 2, nil))
	assert.Equal(t, "db", r.object(t).Metadata.Name)
	assert.Empty(t, r.header.Get("Location"))
	e.must(http.StatusNotFound, "GET", "/api/v1/tenants/acme/networks/db", nil)

	e.must(http.StatusOK, "PUT", "/api/v1/tenants/acme/networks/web?dryRun=true", network("acme", "web", "10.9.0.0/24", 9, nil))
	assert.JSONEq(t, `{"cidr":"10.0.0.0/24","vlan":1}`, string(e.must(http.StatusOK, "GET", "/api/v1/tenants/acme/networks/web", nil).object(t).Spec))

	e.must(http.StatusOK, "DELETE", "/api/v1/tenants/acme/networks/web?dryRun=true", nil)
	e.must(http.StatusOK, "GET", "/api/v1/tenants/acme/networks/web", nil)

	// A dry run is validated fully, relations included.
	e.must(http.StatusUnprocessableEntity, "POST", "/api/v1/tenants/acme/policies?dryRun=true", policy("acme", "p", [2]string{"nope", ""}))
	e.must(http.StatusConflict, "DELETE", "/api/v1/tenants/acme?dryRun=true", nil)
	e.must(http.StatusConflict, "PUT", "/api/v1/tenants/acme/networks/web?dryRun=true",
		strings.Replace(network("acme", "web", "10.0.0.0/24", 1, nil), `"tenant":"acme"`, `"tenant":"acme","resourceVersion":"1"`, 1))

	tx := e.must(http.StatusOK, "POST", "/api/v1/transactions?dryRun=true", fmt.Sprintf(`{"operations":[
		{"op":"create","object":%s},{"op":"delete","object":{"kind":"Network","metadata":{"name":"web","tenant":"acme"}}}]}`,
		network("acme", "db", "10.0.1.0/24", 2, nil)))
	var txr transactionResponse
	tx.json(t, &txr)
	assert.True(t, txr.DryRun)
	assert.Len(t, txr.Results, 2)

	assert.Equal(t, rev, e.store.Revision(), "dry runs store nothing")
	got := e.must(http.StatusOK, "GET", "/api/v1/tenants/acme/networks/web", nil).object(t)
	assert.Equal(t, cur.Metadata.ResourceVersion, got.Metadata.ResourceVersion)
}

func TestListPagingAndSelectors(t *testing.T) {
	e := newTestEnv(t)
	for _, tn := range []string{"a", "b"} {
		e.must(http.StatusCreated, "POST", "/api/v1/tenants", tenant(tn))
		for i := range 7 {
			tier := "web"
			if i%2 == 1 {
				tier = "db"
			}
			e.must(http.StatusCreated, "POST", "/api/v1/tenants/"+tn+"/networks",
				network(tn, fmt.Sprintf("n%d", i), fmt.Sprintf("10.%d.0.0/16", i), i+1, map[string]string{"tier": tier, "zone": "z1"}))
		}
	}
	var names []string
	cont, pages := "", 0
	for {
		path := "/api/v1/tenants/a/networks?limit=3"
		if cont != "" {
			path += "&continue=" + cont
		}
		var page listBody
		e.must(http.StatusOK, "GET", path, nil).json(t, &page)
		pages++
		assert.Equal(t, "NetworkList", page.Kind)
		assert.LessOrEqual(t, len(page.Items), 3)
		assert.NotZero(t, page.Metadata.Revision)
		for _, it := range page.Items {
			assert.Equal(t, "a", it.Metadata.Tenant)
			names = append(names, it.Metadata.Name)
		}
		if cont = page.Metadata.Continue; cont == "" {
			break
		}
		require.Less(t, pages, 10)
	}
	assert.Equal(t, []string{"n0", "n1", "n2", "n3", "n4", "n5", "n6"}, names)
	assert.Equal(t, 3, pages)

	var sel listBody
	e.must(http.StatusOK, "GET", "/api/v1/tenants/a/networks?labelSelector=tier%3Ddb,zone%3Dz1", nil).json(t, &sel)
	require.Len(t, sel.Items, 3)
	for _, it := range sel.Items {
		assert.Equal(t, "db", it.Metadata.Labels["tier"])
	}

	var all listBody
	e.must(http.StatusOK, "GET", "/api/v1/networks?labelSelector=tier=web", nil).json(t, &all)
	assert.Len(t, all.Items, 8)

	var tenants listBody
	e.must(http.StatusOK, "GET", "/api/v1/tenants", nil).json(t, &tenants)
	assert.Len(t, tenants.Items, 2)

	var none listBody
	e.must(http.StatusOK, "GET", "/api/v1/tenants/c/networks", nil).json(t, &none)
	assert.NotNil(t, none.Items)
	assert.Empty(t, none.Items)
	assert.Contains(t, string(e.must(http.StatusOK, "GET", "/api/v1/tenants/c/networks", nil).body), `"items":[]`)
}

func TestStoreUnavailable(t *testing.T) {
	e := newTestEnv(t)
	require.NoError(t, e.store.Close())
	r := e.do("POST", "/api/v1/tenants", tenant("acme"))
	require.Equal(t, http.StatusServiceUnavailable, r.status, "%s", r.body)
	assert.Equal(t, "1", r.header.Get("Retry-After"))
	assert.Equal(t, "ServiceUnavailable", r.err(t).Reason)
}

func TestObjectPathsMatchRoutes(t *testing.T) {
	for _, k := range []model.Key{{Kind: model.KindTenant, Name: "a"}, {Kind: model.KindNetwork, Tenant: "t", Name: "n"}} {
		p := objectPath(k)
		assert.True(t, strings.HasPrefix(p, prefix))
		assert.Equal(t, strings.Count(itemPath(k.Kind), "/"), strings.Count(p, "/"))
	}
}
