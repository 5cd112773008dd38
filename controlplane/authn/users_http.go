package authn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/model"
)

// MaxUserBodyBytes bounds the body of a user request.
const MaxUserBodyBytes = 8 << 10

// UserView is a user as the API shows it: everything but the password hash.
type UserView struct {
	Name      string    `json:"name"`
	Groups    []string  `json:"groups"`
	Disabled  bool      `json:"disabled,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

func viewOf(u User) UserView {
	g := u.Groups
	if g == nil {
		g = []string{}
	}
	return UserView{Name: u.Name, Groups: g, Disabled: u.Disabled, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
}

// UserRequest is the body of POST /api/v1/users and PUT /api/v1/users/{name}. On PUT an empty
// password keeps the current one; groups and disabled replace the current ones.
type UserRequest struct {
	Name     string   `json:"name"`
	Password string   `json:"password,omitempty"`
	Groups   []string `json:"groups,omitempty"`
	Disabled bool     `json:"disabled,omitempty"`
}

// UserRevoker revokes every token of a user. *Tokens is one.
type UserRevoker interface {
	RevokeUser(ctx context.Context, user string) error
}

// UsersOptions configures UsersHandler.
type UsersOptions struct {
	// Cost is the bcrypt cost of new passwords; 0 means bcrypt.DefaultCost.
	Cost int
}

// UsersHandler serves the local users under the API, behind Middleware and the RBAC middleware
// (which lets only the admin role change users, since a user's groups decide its roles):
//
//	GET    /api/v1/users          {"items": [UserView...]}
//	POST   /api/v1/users          UserRequest in, 201 with the UserView; 409 if the name is taken
//	GET    /api/v1/users/{name}   UserView
//	PUT    /api/v1/users/{name}   UserRequest in, UserView out; revokes the user's tokens
//	DELETE /api/v1/users/{name}   204; revokes the user's tokens
//
// A change of password, groups or state takes effect at once: the user's tokens are revoked and
// it logs in again.
func UsersHandler(users UserStore, rev UserRevoker, opts UsersOptions) http.Handler {
	h := &usersHandler{users: users, rev: rev, cost: opts.Cost}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/users", h.list)
	mux.HandleFunc("POST /api/v1/users", h.create)
	mux.HandleFunc("GET /api/v1/users/{name}", h.get)
	mux.HandleFunc("PUT /api/v1/users/{name}", h.update)
	mux.HandleFunc("DELETE /api/v1/users/{name}", h.delete)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, ReasonMethod, "",
			fmt.Sprintf("%s %s: users support GET and POST on the collection, GET, PUT and DELETE on a user", r.Method, r.URL.Path))
	})
	return mux
}

type usersHandler struct {
	users UserStore
	rev   UserRevoker
	cost  int
}

func (h *usersHandler) list(w http.ResponseWriter, r *http.Request) {
	us, err := h.users.List(r.Context())
	if err != nil {
		writeUserError(w, err)
		return
	}
	items := make([]UserView, 0, len(us))
	for _, u := range us {
		items = append(items, viewOf(u))
	}
	writeJSON(w, http.StatusOK, struct {
		Items []UserView `json:"items"`
	}{items})
}

func (h *usersHandler) get(w http.ResponseWriter, r *http.Request) {
	u, err := h.users.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		writeUserError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, viewOf(u))
}

// decode reads a UserRequest; pathName, when set, must match the body's name (or fills it).
func (h *usersHandler) decode(w http.ResponseWriter, r *http.Request, pathName string) (UserRequest, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxUserBodyBytes))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, ReasonTooLarge, "", fmt.Sprintf("the body is over %d bytes", MaxUserBodyBytes))
		return UserRequest{}, false
	}
	var req UserRequest
	if err := model.DecodeStrict(body, &req, ""); err != nil {
		field := ""
		var fe *model.FieldErrors
		if errors.As(err, &fe) && len(fe.Errors) > 0 {
			field = fe.Errors[0].Field
		}
		writeError(w, http.StatusBadRequest, ReasonBadRequest, field, err.Error())
		return UserRequest{}, false
	}
	if pathName != "" {
		if req.Name == "" {
			req.Name = pathName
		}
		if req.Name != pathName {
			writeError(w, http.StatusUnprocessableEntity, "Invalid", "name", fmt.Sprintf("%q does not match the path's %q", req.Name, pathName))
			return UserRequest{}, false
		}
	}
	if msg := CheckName(req.Name); msg != "" {
		writeError(w, http.StatusUnprocessableEntity, "Invalid", "name", msg)
		return UserRequest{}, false
	}
	if len(req.Groups) > MaxGroups {
		writeError(w, http.StatusUnprocessableEntity, "Invalid", "groups", fmt.Sprintf("%d groups, at most %d", len(req.Groups), MaxGroups))
		return UserRequest{}, false
	}
	for i, g := range req.Groups {
		if msg := CheckName(g); msg != "" {
			writeError(w, http.StatusUnprocessableEntity, "Invalid", fmt.Sprintf("groups[%d]", i), msg)
			return UserRequest{}, false
		}
	}
	if req.Password != "" {
		if msg := CheckPassword(req.Password); msg != "" {
			writeError(w, http.StatusUnprocessableEntity, "Invalid", "password", msg)
			return UserRequest{}, false
		}
	}
	return req, true
}

func (h *usersHandler) create(w http.ResponseWriter, r *http.Request) {
	req, ok := h.decode(w, r, "")
	if !ok {
		return
	}
	if req.Password == "" {
		writeError(w, http.StatusUnprocessableEntity, "Invalid", "password", "required")
		return
	}
	hash, err := HashPassword(req.Password, h.cost)
	if err != nil {
		writeUserError(w, err)
		return
	}
	if err := h.users.Create(r.Context(), User{Name: req.Name, Groups: req.Groups, PasswordHash: hash, Disabled: req.Disabled}); err != nil {
		writeUserError(w, err)
		return
	}
	u, err := h.users.Get(r.Context(), req.Name)
	if err != nil {
		writeUserError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, viewOf(u))
}

func (h *usersHandler) update(w http.ResponseWriter, r *http.Request) {
	req, ok := h.decode(w, r, r.PathValue("name"))
	if !ok {
		return
	}
	old, err := h.users.Get(r.Context(), req.Name)
	if err != nil {
		writeUserError(w, err)
		return
	}
	u := old
	u.Groups, u.Disabled = req.Groups, req.Disabled
	if req.Password != "" {
		if u.PasswordHash, err = HashPassword(req.Password, h.cost); err != nil {
			writeUserError(w, err)
			return
		}
	}
	if err := h.users.Update(r.Context(), u); err != nil {
		writeUserError(w, err)
		return
	}
	if req.Password != "" || u.Disabled != old.Disabled || !slices.Equal(u.Groups, old.Groups) {
		if err := h.rev.RevokeUser(r.Context(), u.Name); err != nil {
			writeUserError(w, err)
			return
		}
	}
	u, err = h.users.Get(r.Context(), req.Name)
	if err != nil {
		writeUserError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, viewOf(u))
}

func (h *usersHandler) delete(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := h.users.Delete(r.Context(), name); err != nil {
		writeUserError(w, err)
		return
	}
	if err := h.rev.RevokeUser(r.Context(), name); err != nil {
		writeUserError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func writeUserError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, "NotFound", "", err.Error())
	case errors.Is(err, ErrExists):
		writeError(w, http.StatusConflict, "AlreadyExists", "name", err.Error())
	case errors.Is(err, ErrInvalid):
		writeError(w, http.StatusUnprocessableEntity, "Invalid", "", err.Error())
	default:
		writeError(w, http.StatusServiceUnavailable, ReasonUnavailable, "", err.Error())
	}
}
