package api

import (
	"errors"
	"net/http"

	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/rbac"
	"github.com/dsnscale/dsnscale/controlplane/store"
)

// listBody is the answer to a list: the items of one page and where the next one starts.
type listBody struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   listMeta       `json:"metadata"`
	Items      []model.Object `json:"items"`
}

type listMeta struct {
	// Revision is the store revision the page was read at (0 for DSN lists).
	Revision uint64 `json:"revision,omitempty"`
	// Continue, when set, fetches the next page.
	Continue string `json:"continue,omitempty"`
}

func newList(kind model.Kind, items []*model.Object, rev uint64, next string) listBody {
	out := listBody{APIVersion: model.APIVersion, Kind: string(kind) + "List",
		Metadata: listMeta{Revision: rev, Continue: next}, Items: make([]model.Object, 0, len(items))}
	for _, o := range items {
		out.Items = append(out.Items, *o)
	}
	return out
}

// routeTenant reads {tenant} on namespaced routes; "" elsewhere (and on cross-tenant lists).
func routeTenant(r *http.Request, kind model.Kind) (string, error) {
	if !kind.Namespaced() || r.PathValue("tenant") == "" {
		return "", nil
	}
	return pathName(r, "tenant", false)
}

// routeKey reads the identity of the object an item route names.
func routeKey(r *http.Request, kind model.Kind) (model.Key, error) {
	tenant, err := routeTenant(r, kind)
	if err != nil {
		return model.Key{}, err
	}
	name, err := pathName(r, "name", false)
	if err != nil {
		return model.Key{}, err
	}
	return model.Key{Kind: kind, Tenant: tenant, Name: name}, nil
}

func (s *server) list(kind model.Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q, err := parseQuery(r, "limit", "continue", "labelSelector")
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		p, err := q.list()
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		tenant, err := routeTenant(r, kind)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		res, err := s.store.List(r.Context(), kind, store.ListOptions{Tenant: tenant, Selector: p.selector, Limit: p.limit, Continue: p.cont})
		if err != nil {
			s.writeError(w, r, s.listError(err, p.cont))
			return
		}
		// A page filtered for the caller may hold fewer items than the limit; its continue token
		// still resumes after the last object read.
		writeJSON(w, http.StatusOK, newList(kind, visible(r.Context(), rbac.VerbList, res.Items), res.Revision, res.Continue))
	}
}

func (s *server) get(kind model.Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, err := parseQuery(r); err != nil {
			s.writeError(w, r, err)
			return
		}
		key, err := routeKey(r, kind)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		obj, err := s.store.Get(r.Context(), key)
		if err != nil {
			s.writeError(w, r, notFound(err, key))
			return
		}
		writeJSON(w, http.StatusOK, obj)
	}
}

func (s *server) create(kind model.Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tenant, err := routeTenant(r, kind)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.write(w, r, store.OpCreate, target{kind: kind, tenant: tenant}, http.StatusCreated)
	}
}

func (s *server) update(kind model.Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key, err := routeKey(r, kind)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.write(w, r, store.OpUpdate, target{kind: kind, tenant: key.Tenant, name: key.Name}, http.StatusOK)
	}
}

// write decodes, checks and commits one create or update.
func (s *server) write(w http.ResponseWriter, r *http.Request, typ store.OpType, want target, okStatus int) {
	dryRun, err := dryRunQuery(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	body, err := s.readBody(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	obj, err := model.DecodeObject(body)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	op, fe := prepareWrite(typ, obj, want)
	if fe != nil {
		s.writeError(w, r, fe)
		return
	}
	ops := []store.Op{op}
	objs, _, err := s.store.Commit(r.Context(), ops, relationCheck(ops, []string{""}), dryRun)
	if err != nil {
		s.writeError(w, r, notFound(err, obj.Key()))
		return
	}
	if okStatus == http.StatusCreated && !dryRun {
		w.Header().Set("Location", objectPath(objs[0].Key()))
	}
	writeJSON(w, okStatus, objs[0])
}

func (s *server) delete(kind model.Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q, err := parseQuery(r, "dryRun", "resourceVersion")
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		dryRun, err := q.dryRun()
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		key, err := routeKey(r, kind)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		id := &model.Object{Kind: key.Kind, Metadata: model.Metadata{Name: key.Name, Tenant: key.Tenant}}
		op, fe := prepareDelete(id, q.Get("resourceVersion"))
		if fe != nil {
			e := fieldErrors(fe)
			if e.field == "metadata.resourceVersion" {
				e.field = "resourceVersion"
			}
			s.writeError(w, r, e)
			return
		}
		ops := []store.Op{op}
		objs, _, err := s.store.Commit(r.Context(), ops, relationCheck(ops, []string{""}), dryRun)
		if err != nil {
			s.writeError(w, r, notFound(err, key))
			return
		}
		writeJSON(w, http.StatusOK, objs[0])
	}
}

// notFound names the missing object in a store's not-found error.
func notFound(err error, key model.Key) error {
	ae := toAPIError(err)
	if ae.status == http.StatusNotFound {
		ae.message = key.String() + " not found"
	}
	return ae
}

// objectPath is the URL path of the object at key.
func objectPath(key model.Key) string {
	if key.Kind.Namespaced() {
		return pathTenants + "/" + key.Tenant + "/" + plural(key.Kind) + "/" + key.Name
	}
	return prefix + "/" + plural(key.Kind) + "/" + key.Name
}

// listError makes a store's rejection of a continue token a 400 on the parameter.
func (s *server) listError(err error, cont string) error {
	if cont != "" && errors.Is(err, store.ErrInvalid) {
		return errorf(http.StatusBadRequest, reasonBadRequest, "continue", "%v", err)
	}
	return err
}
