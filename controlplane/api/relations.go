package api

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/store"
)

// maxReferrersNamed bounds how many referring objects one error names.
const maxReferrersNamed = 5

// relationCheck returns the check the store runs on the state a batch would produce: every
// network and policy written lives in a tenant that exists, every network a policy rule names
// exists in its tenant, and nothing deleted is still referred to. Because it sees the state after
// the whole batch, a transaction may create a tenant and its networks together, or delete a
// network together with the policies that name it. paths[i] prefixes the field paths of errors
// about ops[i].
//
// Missing references give 422; deletes of objects still referred to give 409, naming a referrer.
func relationCheck(ops []store.Op, paths []string) store.CheckFunc {
	return func(after store.View) error {
		var missing, inUse model.FieldErrors
		for i, op := range ops {
			obj, path := op.Object, paths[i]
			switch op.Type {
			case store.OpCreate, store.OpUpdate:
				checkReferences(after, obj, path, &missing)
			case store.OpDelete:
				checkReferrers(after, obj, path, &inUse)
			}
		}
		if missing.Len() > 0 {
			e := fieldErrors(&missing)
			e.status, e.reason = http.StatusUnprocessableEntity, reasonInvalid
			return e
		}
		if inUse.Len() > 0 {
			e := fieldErrors(&inUse)
			e.status, e.reason = http.StatusConflict, reasonConflict
			return e
		}
		return nil
	}
}

// checkReferences checks what a written object refers to.
func checkReferences(after store.View, obj *model.Object, path string, errs *model.FieldErrors) {
	if !obj.Kind.Namespaced() {
		return
	}
	tenant := obj.Metadata.Tenant
	if _, ok := after.Get(model.Key{Kind: model.KindTenant, Name: tenant}); !ok {
		errs.Add(model.JoinPath(path, "metadata.tenant"), fmt.Sprintf("tenant %q does not exist; create it first (or in the same transaction)", tenant))
		return
	}
	if obj.Kind != model.KindPolicy {
		return
	}
	var spec model.PolicySpec
	if err := obj.DecodeSpec(&spec); err != nil {
		// Validation ran before; a spec that no longer decodes is a bug worth a clear error.
		errs.Add(model.JoinPath(path, "spec"), "does not decode: "+err.Error())
		return
	}
	for i, rule := range spec.Rules {
		for _, side := range []struct {
			name string
			peer model.Peer
		}{{"from", rule.From}, {"to", rule.To}} {
			if side.peer.Network == "" {
				continue
			}
			key := model.Key{Kind: model.KindNetwork, Tenant: tenant, Name: side.peer.Network}
			if _, ok := after.Get(key); !ok {
				errs.Add(model.JoinPath(path, fmt.Sprintf("spec.rules[%d].%s.network", i, side.name)),
					fmt.Sprintf("network %q does not exist in tenant %q", side.peer.Network, tenant))
			}
		}
	}
}

// checkReferrers checks that nothing left after the batch refers to a deleted object.
func checkReferrers(after store.View, obj *model.Object, path string, errs *model.FieldErrors) {
	field := model.JoinPath(path, "metadata.name")
	switch obj.Kind {
	case model.KindTenant:
		var names []string
		total := 0
		for _, kind := range []model.Kind{model.KindNetwork, model.KindPolicy} {
			for _, o := range after.List(kind, obj.Metadata.Name) {
				total++
				if len(names) < maxReferrersNamed {
					names = append(names, o.Key().String())
				}
			}
		}
		if total > 0 {
			errs.Add(field, fmt.Sprintf("tenant %q still has %d objects (%s%s); delete them first (or in the same transaction)",
				obj.Metadata.Name, total, strings.Join(names, ", "), more(total, len(names))))
		}
	case model.KindNetwork:
		var refs []string
		total := 0
		for _, pol := range after.List(model.KindPolicy, obj.Metadata.Tenant) {
			var spec model.PolicySpec
			if pol.DecodeSpec(&spec) != nil {
				continue
			}
			for i, rule := range spec.Rules {
				for _, side := range []struct {
					name string
					peer model.Peer
				}{{"from", rule.From}, {"to", rule.To}} {
					if side.peer.Network != obj.Metadata.Name {
						continue
					}
					total++
					if len(refs) < maxReferrersNamed {
						refs = append(refs, fmt.Sprintf("%s at spec.rules[%d].%s.network", pol.Key(), i, side.name))
					}
				}
			}
		}
		if total > 0 {
			errs.Add(field, fmt.Sprintf("network %q is still named by %s%s; change or delete those policies first",
				obj.Metadata.Name, strings.Join(refs, ", "), more(total, len(refs))))
		}
	}
}

func more(total, shown int) string {
	if total > shown {
		return fmt.Sprintf(" and %d more", total-shown)
	}
	return ""
}
