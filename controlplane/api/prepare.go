package api

import (
	"fmt"
	"strconv"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/store"
)

// target is what a route says of the object a write is about; empty fields say nothing.
type target struct {
	kind   model.Kind
	tenant string
	name   string
}

// prepareWrite checks a create or update and returns its store op. Empty metadata.tenant and
// metadata.name are taken from the route; anything that disagrees with the route is malformed.
func prepareWrite(typ store.OpType, obj *model.Object, want target) (store.Op, *model.FieldErrors) {
	var errs model.FieldErrors
	md := &obj.Metadata
	if md.Tenant == "" && want.tenant != "" {
		md.Tenant = want.tenant
	}
	if md.Name == "" && want.name != "" {
		md.Name = want.name
	}
	switch {
	case obj.Kind == model.KindDSN:
		errs.Add("kind", "DSNs are created by admission over the southbound protocol, not by the API")
		return store.Op{}, &errs
	case want.kind != "" && obj.Kind != want.kind:
		errs.AddMalformed("kind", fmt.Sprintf("must be %q on this path, got %q", want.kind, obj.Kind))
	case want.tenant != "" && md.Tenant != want.tenant:
		errs.AddMalformed("metadata.tenant", fmt.Sprintf("%q does not match the tenant %q in the path", md.Tenant, want.tenant))
	case want.name != "" && md.Name != want.name:
		errs.AddMalformed("metadata.name", fmt.Sprintf("%q does not match the name %q in the path", md.Name, want.name))
	}
	if typ == store.OpCreate && md.ResourceVersion != "" {
		errs.Add("metadata.resourceVersion", "must be empty on create: the store sets it")
	}
	if err := model.Validate(obj); err != nil {
		if fe, ok := err.(*model.FieldErrors); ok {
			errs.Append("", fe)
		} else {
			errs.Add("", err.Error())
		}
	}
	if errs.Len() > 0 {
		return store.Op{}, &errs
	}
	md.CreationRevision = 0 // the store's to set
	return store.Op{Type: typ, Object: obj}, nil
}

// prepareDelete checks a delete and returns its store op. Only the identity (kind, tenant, name)
// and an optional resourceVersion precondition matter; a spec or labels are ignored.
func prepareDelete(obj *model.Object, rv string) (store.Op, *model.FieldErrors) {
	var errs model.FieldErrors
	if obj.APIVersion != "" && obj.APIVersion != model.APIVersion {
		errs.AddMalformed("apiVersion", fmt.Sprintf("must be %q, got %q", model.APIVersion, obj.APIVersion))
	}
	switch obj.Kind {
	case model.KindTenant, model.KindNetwork, model.KindPolicy:
	case model.KindDSN:
		errs.Add("kind", "DSNs are decommissioned with DELETE /api/v1/dsns/{id}, not in a transaction")
	default:
		errs.AddMalformed("kind", fmt.Sprintf("must be Tenant, Network or Policy, got %q", obj.Kind))
	}
	if msg := model.CheckName(obj.Metadata.Name); msg != "" {
		errs.Add("metadata.name", msg)
	}
	switch {
	case obj.Kind.Namespaced():
		if msg := model.CheckName(obj.Metadata.Tenant); msg != "" {
			errs.Add("metadata.tenant", msg)
		}
	case obj.Metadata.Tenant != "":
		errs.Add("metadata.tenant", fmt.Sprintf("must be empty: a %s does not live in a tenant", obj.Kind))
	}
	var expected uint64
	if rv != "" {
		n, err := strconv.ParseUint(rv, 10, 64)
		if err != nil || n == 0 {
			errs.Add("metadata.resourceVersion", fmt.Sprintf("must be a decimal revision, got %q", rv))
		}
		expected = n
	}
	if errs.Len() > 0 {
		return store.Op{}, &errs
	}
	id := &model.Object{APIVersion: model.APIVersion, Kind: obj.Kind,
		Metadata: model.Metadata{Name: obj.Metadata.Name, Tenant: obj.Metadata.Tenant}}
	return store.Op{Type: store.OpDelete, Object: id, ExpectedRevision: expected}, nil
}
