package api

import (
	"context"
	"net/http"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/rbac"
	"github.com/dsnscale/dsnscale/controlplane/store"
)

// reasonForbidden is the reason of a 403 answer.
const reasonForbidden = "Forbidden"

// The API authorizes through the rbac.Checker the RBAC middleware puts in each request's context
// (none without RBAC: everything is allowed). The middleware decides a request as a whole; the
// handlers here drop from lists and watches across tenants what the caller may not see, and
// authorize each operation of a transaction.

// keyTenant is the tenant RBAC places the object at key in.
func keyTenant(key model.Key) string {
	if key.Kind == model.KindTenant {
		return key.Name
	}
	return key.Tenant
}

// visible keeps the objects of items the caller may see with verb, in order.
func visible(ctx context.Context, verb rbac.Verb, items []*model.Object) []*model.Object {
	f := rbac.CheckerFrom(ctx).Filter(verb)
	if f == nil {
		return items
	}
	out := items[:0]
	for _, o := range items {
		if f.AllowsObject(o) {
			out = append(out, o)
		}
	}
	return out
}

// opVerb is the verb a store operation needs.
func opVerb(t store.OpType) rbac.Verb {
	switch t {
	case store.OpCreate:
		return rbac.VerbCreate
	case store.OpDelete:
		return rbac.VerbDelete
	}
	return rbac.VerbUpdate
}

// authorizeOps authorizes each operation of a transaction; the first denied one is answered
// with 403 on its field path, and nothing is committed.
func authorizeOps(r *http.Request, ops []store.Op, paths []string) error {
	c := rbac.CheckerFrom(r.Context())
	if c == nil {
		return nil
	}
	for i, op := range ops {
		key := op.Object.Key()
		if d := c.Authorize(opVerb(op.Type), string(key.Kind), keyTenant(key)); !d.Allowed {
			return errorf(http.StatusForbidden, reasonForbidden, paths[i], "%s", d.Reason)
		}
	}
	return nil
}
