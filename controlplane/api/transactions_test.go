package api

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// txBody builds a transaction body from (op, object JSON) pairs.
func txBody(ops ...[2]string) string {
	parts := make([]string, len(ops))
	for i, op := range ops {
		parts[i] = fmt.Sprintf(`{"op":%q,"object":%s}`, op[0], op[1])
	}
	return `{"operations":[` + strings.Join(parts, ",") + `]}`
}

func TestTransactionCommitsTogether(t *testing.T) {
	e := newTestEnv(t)
	before := e.store.Revision()
	// Relations see the whole batch: the tenant, its networks and a policy naming them at once.
	r := e.must(http.StatusOK, "POST", "/api/v1/transactions", txBody(
		[2]string{"create", tenant("acme")},
		[2]string{"create", network("acme", "web", "10.0.0.0/24", 1, nil)},
		[2]string{"create", network("acme", "db", "10.0.1.0/24", 2, nil)},
		[2]string{"create", policy("acme", "p", [2]string{"web", "db"})},
	))
	var txr transactionResponse
	r.json(t, &txr)
	require.Len(t, txr.Results, 4)
	assert.Equal(t, before+4, txr.Revision)
	assert.Equal(t, e.store.Revision(), txr.Revision)
	for i, res := range txr.Results {
		assert.Equal(t, "create", res.Op)
		assert.Equal(t, fmt.Sprint(before+uint64(i)+1), res.Object.Metadata.ResourceVersion, "consecutive revisions")
	}
	e.must(http.StatusOK, "GET", "/api/v1/tenants/acme/policies/p", nil)

	// Deleting a network with the policy that names it, in one transaction, is fine.
	p := e.must(http.StatusOK, "GET", "/api/v1/tenants/acme/policies/p", nil).object(t)
	e.must(http.StatusOK, "POST", "/api/v1/transactions", txBody(
		[2]string{"delete", fmt.Sprintf(`{"kind":"Policy","metadata":{"name":"p","tenant":"acme","resourceVersion":%q}}`, p.Metadata.ResourceVersion)},
		[2]string{"delete", `{"apiVersion":"dsnscale/v1","kind":"Network","metadata":{"name":"db","tenant":"acme"}}`},
		[2]string{"update", network("acme", "web", "10.0.0.0/24", 7, nil)},
	))
	e.must(http.StatusNotFound, "GET", "/api/v1/tenants/acme/networks/db", nil)

	// And a tenant with everything in it.
	e.must(http.StatusOK, "POST", "/api/v1/transactions", txBody(
		[2]string{"delete", `{"kind":"Network","metadata":{"name":"web","tenant":"acme"}}`},
		[2]string{"delete", `{"kind":"Tenant","metadata":{"name":"acme"}}`},
	))
	e.must(http.StatusNotFound, "GET", "/api/v1/tenants/acme", nil)
}

func TestTransactionAllOrNothing(t *testing.T) {
	e := newTestEnv(t)
	e.must(http.StatusCreated, "POST", "/api/v1/tenants", tenant("acme"))
	e.must(http.StatusCreated, "POST", "/api/v1/tenants/acme/networks", network("acme", "web", "10.0.0.0/24", 1, nil))
	goodOps := [][2]string{
		{"create", tenant("beta")},
		{"create", network("beta", "n1", "10.1.0.0/24", 1, nil)},
		{"update", network("acme", "web", "10.0.0.0/24", 2, nil)},
	}
	with := func(i int, op [2]string) string {
		ops := append([][2]string(nil), goodOps...)
		if i == len(ops) {
			ops = append(ops, op)
		} else {
			ops[i] = op
		}
		return txBody(ops...)
	}
	tests := []struct {
		name     string
		body     string
		status   int
		field    string
		contains string
	}{
		{"semantic error in one op", with(1, [2]string{"create", network("beta", "n1", "10.1.0.0/24", 0, nil)}), 422, "operations[1].object.spec.vlan", "1-4094"},
		{"unknown field in one op", with(2, [2]string{"update", strings.Replace(network("acme", "web", "10.0.0.0/24", 2, nil), `"vlan"`, `"vlam":1,"vlan"`, 1)}), 400, "operations[2].object.spec.vlam", "unknown field"},
		{"relation error in one op", with(3, [2]string{"create", policy("beta", "p", [2]string{"n1", "n2"})}), 422, "operations[3].object.spec.rules[0].to.network", `network "n2" does not exist`},
		{"missing tenant in one op", with(1, [2]string{"create", network("gamma", "n1", "10.1.0.0/24", 1, nil)}), 422, "operations[1].object.metadata.tenant", `tenant "gamma" does not exist`},
		{"update of a missing object", with(2, [2]string{"update", network("acme", "nope", "10.0.0.0/24", 2, nil)}), 404, "operations[2].object.metadata.name", "Network/acme/nope"},
		{"create of an existing object", with(3, [2]string{"create", tenant("acme")}), 409, "operations[3].object.metadata.name", "already exists"},
		{"stale resourceVersion", with(2, [2]string{"update", strings.Replace(network("acme", "web", "10.0.0.0/24", 2, nil), `"tenant":"acme"`, `"tenant":"acme","resourceVersion":"1"`, 1)}), 409, "operations[2].object.metadata.resourceVersion", "conflict"},
		{"delete of a tenant with objects", with(2, [2]string{"delete", `{"kind":"Tenant","metadata":{"name":"acme"}}`}), 409, "operations[2].object.metadata.name", `tenant "acme" still has 1 objects (Network/acme/web)`},
		{"write into a tenant deleted alongside", with(3, [2]string{"delete", `{"kind":"Tenant","metadata":{"name":"acme"}}`}), 422, "operations[2].object.metadata.tenant", `tenant "acme" does not exist`},
		{"same object twice", with(3, [2]string{"delete", `{"kind":"Network","metadata":{"name":"web","tenant":"acme"}}`}), 422, "operations[3].object", "already touched by operations[2]"},
		{"bad op", with(0, [2]string{"upsert", tenant("beta")}), 422, "operations[0].op", "create, update or delete"},
		{"missing object", txBody(goodOps...)[:len(txBody(goodOps...))-2] + `,{"op":"create"}]}`, 422, "operations[3].object", "required"},
		{"DSN op", with(3, [2]string{"create", `{"apiVersion":"dsnscale/v1","kind":"DSN","metadata":{"name":"d1"}}`}), 422, "operations[3].object.kind", "admission"},
		{"no ops", `{"operations":[]}`, 422, "operations", "at least one"},
		{"unknown top-level field", `{"operations":[],"atomic":true}`, 400, "atomic", "unknown field"},
		{"ops not an array", `{"operations":{}}`, 400, "operations", "must be an array"},
		{"malformed", `{"operations":[`, 400, "", "malformed JSON"},
		{"too many ops", `{"operations":[` + strings.TrimSuffix(strings.Repeat(`{"op":"create","object":`+tenant("x")+`},`, MaxTransactionOps+1), ",") + `]}`, 422, "operations", "at most 1000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.store.Revision()
			r := e.do("POST", "/api/v1/transactions", tc.body)
			require.Equal(t, tc.status, r.status, "%s", r.body)
			er := r.err(t)
			assert.Equal(t, tc.field, er.Field, "%s", r.body)
			assert.Contains(t, er.Message, tc.contains)
			assert.Equal(t, before, e.store.Revision(), "nothing committed")
			e.must(http.StatusNotFound, "GET", "/api/v1/tenants/beta", nil)
			web := e.must(http.StatusOK, "GET", "/api/v1/tenants/acme/networks/web", nil).object(t)
			assert.JSONEq(t, `{"cidr":"10.0.0.0/24","vlan":1}`, string(web.Spec))
		})
	}
	// The good operations alone go through.
	e.must(http.StatusOK, "POST", "/api/v1/transactions", txBody(goodOps...))
	e.must(http.StatusOK, "GET", "/api/v1/tenants/beta/networks/n1", nil)
}
