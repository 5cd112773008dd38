package rbac

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/dsnscale/dsnscale/controlplane/model"
)

// MaxBodyBytes bounds the body of a role or binding request.
const MaxBodyBytes = 256 << 10

// Handler serves the RBAC objects under the API, behind Middleware (which lets only the admin
// role change them):
//
//	GET    /api/v1/roles                 {"items": [Role...]}, built-in ones first
//	POST   /api/v1/roles                 create: 201, 409 if the name is taken
//	GET    /api/v1/roles/{name}
//	PUT    /api/v1/roles/{name}          create or replace: 201 or 200
//	DELETE /api/v1/roles/{name}          204
//
// and the same under /api/v1/rolebindings. Built-in objects cannot be changed (409). Invalid
// objects get 422 (400 when malformed) with the field path of the first error.
func Handler(s *Store) http.Handler {
	mux := http.NewServeMux()
	h := &handler{s: s}
	mux.HandleFunc("GET "+APIPrefix+"/roles", h.listRoles)
	mux.HandleFunc("POST "+APIPrefix+"/roles", h.createRole)
	mux.HandleFunc("GET "+APIPrefix+"/roles/{name}", h.getRole)
	mux.HandleFunc("PUT "+APIPrefix+"/roles/{name}", h.putRole)
	mux.HandleFunc("DELETE "+APIPrefix+"/roles/{name}", h.deleteRole)
	mux.HandleFunc("GET "+APIPrefix+"/rolebindings", h.listBindings)
	mux.HandleFunc("POST "+APIPrefix+"/rolebindings", h.createBinding)
	mux.HandleFunc("GET "+APIPrefix+"/rolebindings/{name}", h.getBinding)
	mux.HandleFunc("PUT "+APIPrefix+"/rolebindings/{name}", h.putBinding)
	mux.HandleFunc("DELETE "+APIPrefix+"/rolebindings/{name}", h.deleteBinding)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed",
			fmt.Sprintf("%s %s: roles and role bindings support GET, POST on the collection and GET, PUT, DELETE on an item", r.Method, r.URL.Path))
	})
	return mux
}

type handler struct{ s *Store }

type list[T any] struct {
	Items []T `json:"items"`
}

func (h *handler) listRoles(w http.ResponseWriter, r *http.Request) {
	roles, err := h.s.ListRoles(r.Context())
	if err != nil {
		writeStoreError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, list[Role]{Items: roles})
}

func (h *handler) getRole(w http.ResponseWriter, r *http.Request) {
	role, err := h.s.GetRole(r.Context(), r.PathValue("name"))
	if err != nil {
		writeStoreError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, role)
}

func (h *handler) createRole(w http.ResponseWriter, r *http.Request) {
	var role Role
	if !decodeBody(w, r, &role, "") {
		return
	}
	if err := h.s.CreateRole(r.Context(), role); err != nil {
		writeStoreError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, role)
}

func (h *handler) putRole(w http.ResponseWriter, r *http.Request) {
	var role Role
	if !decodeBody(w, r, &role, r.PathValue("name")) {
		return
	}
	role.Name = r.PathValue("name")
	created, err := h.s.PutRole(r.Context(), role)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	writeJSON(w, putStatus(created), role)
}

func (h *handler) deleteRole(w http.ResponseWriter, r *http.Request) {
	if err := h.s.DeleteRole(r.Context(), r.PathValue("name")); err != nil {
		writeStoreError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) listBindings(w http.ResponseWriter, r *http.Request) {
	bindings, err := h.s.ListBindings(r.Context())
	if err != nil {
		writeStoreError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, list[Binding]{Items: bindings})
}

func (h *handler) getBinding(w http.ResponseWriter, r *http.Request) {
	b, err := h.s.GetBinding(r.Context(), r.PathValue("name"))
	if err != nil {
		writeStoreError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

func (h *handler) createBinding(w http.ResponseWriter, r *http.Request) {
	var b Binding
	if !decodeBody(w, r, &b, "") {
		return
	}
	if err := h.s.CreateBinding(r.Context(), b); err != nil {
		writeStoreError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, b)
}

func (h *handler) putBinding(w http.ResponseWriter, r *http.Request) {
	var b Binding
	if !decodeBody(w, r, &b, r.PathValue("name")) {
		return
	}
	b.Name = r.PathValue("name")
	created, err := h.s.PutBinding(r.Context(), b)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	writeJSON(w, putStatus(created), b)
}

func (h *handler) deleteBinding(w http.ResponseWriter, r *http.Request) {
	if err := h.s.DeleteBinding(r.Context(), r.PathValue("name")); err != nil {
		writeStoreError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func putStatus(created bool) int {
	if created {
		return http.StatusCreated
	}
	return http.StatusOK
}

// decodeBody reads a bounded JSON body strictly into v. pathName, when set, is the name in the
// path, which a name in the body must match.
func decodeBody(w http.ResponseWriter, r *http.Request, v interface{ named() string }, pathName string) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", fmt.Sprintf("request body is over the limit of %d bytes", MaxBodyBytes))
		return false
	}
	if err := model.DecodeStrict(body, v, ""); err != nil {
		writeStoreError(w, err)
		return false
	}
	if pathName != "" && v.named() != "" && v.named() != pathName {
		writeFieldError(w, http.StatusUnprocessableEntity, "Invalid", "name",
			fmt.Sprintf("%q does not match the name in the path, %q", v.named(), pathName))
		return false
	}
	return true
}

func (r *Role) named() string    { return r.Name }
func (b *Binding) named() string { return b.Name }

// writeStoreError maps the package's errors to HTTP answers.
func writeStoreError(w http.ResponseWriter, err error) {
	var fe *model.FieldErrors
	switch {
	case errors.As(err, &fe):
		status, reason := http.StatusUnprocessableEntity, "Invalid"
		if fe.Malformed() {
			status, reason = http.StatusBadRequest, "BadRequest"
		}
		field := ""
		if len(fe.Errors) > 0 {
			field = fe.Errors[0].Field
		}
		writeFieldError(w, status, reason, field, fe.Error())
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, "NotFound", err.Error())
	case errors.Is(err, ErrExists):
		writeFieldError(w, http.StatusConflict, "AlreadyExists", "name", err.Error())
	case errors.Is(err, ErrBuiltIn):
		writeFieldError(w, http.StatusConflict, "Conflict", "name", err.Error())
	default:
		writeError(w, http.StatusServiceUnavailable, "ServiceUnavailable", err.Error())
	}
}
