package admission

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/dsnscale/dsnscale/controlplane/authn"
	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/rbac"
)

// HandlerOptions configures Handler.
type HandlerOptions struct {
	// TenantExists, if set, is asked whether a token's tenant exists before the token is made.
	TenantExists func(ctx context.Context, tenant string) (bool, error)
	// Clock reads the time for token states; nil means time.Now.
	Clock func() time.Time
}

// View is a token as the API answers it: the token and its state.
type View struct {
	Token
	State string `json:"state"`
}

// Created is the answer to a creation: the secret, shown this once, and the token.
type Created struct {
	Secret string `json:"token"`
	View   View   `json:"bootstrapToken"`
}

// Handler serves bootstrap tokens under the API, behind authn.Middleware and rbac.Middleware.
// It authorizes each token by its tenant with the request's rbac.Checker (kind
// rbac.KindBootstrapToken), since the tenant is in the body or the store, not the path:
//
//	POST   /api/v1/bootstraptokens        Spec in, 201 Created out
//	GET    /api/v1/bootstraptokens        {"items": [View...]}, ?tenant= to narrow; only the
//	                                      tenants the caller may list
//	GET    /api/v1/bootstraptokens/{id}   View; 404 for a token the caller may not see
//	DELETE /api/v1/bootstraptokens/{id}   revoke: 200 with the View
func Handler(s *Store, opts HandlerOptions) http.Handler {
	h := &handler{s: s, opts: opts}
	if h.opts.Clock == nil {
		h.opts.Clock = time.Now
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/bootstraptokens", h.create)
	mux.HandleFunc("GET /api/v1/bootstraptokens", h.list)
	mux.HandleFunc("GET /api/v1/bootstraptokens/{id}", h.get)
	mux.HandleFunc("DELETE /api/v1/bootstraptokens/{id}", h.revoke)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "",
			fmt.Sprintf("%s %s: bootstrap tokens support POST and GET on the collection, GET and DELETE on a token", r.Method, r.URL.Path))
	})
	return mux
}

type handler struct {
	s    *Store
	opts HandlerOptions
}

func (h *handler) view(t Token) View { return View{Token: t, State: t.State(h.opts.Clock())} }

// MaxBodyBytes bounds a token creation request.
const MaxBodyBytes = 64 << 10

func (h *handler) create(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "", fmt.Sprintf("request body is over the limit of %d bytes", MaxBodyBytes))
		return
	}
	var spec Spec
	if err := model.DecodeStrict(body, &spec, ""); err != nil {
		writeErr(w, err)
		return
	}
	if err := spec.Validate(); err != nil {
		writeErr(w, err)
		return
	}
	// A gateway token (tenant "") is cluster-wide: only rules over every tenant grant it.
	if d := rbac.CheckerFrom(r.Context()).Authorize(rbac.VerbCreate, rbac.KindBootstrapToken, spec.Tenant); !d.Allowed {
		writeError(w, http.StatusForbidden, "Forbidden", "", d.Reason)
		return
	}
	if h.opts.TenantExists != nil && spec.Tenant != "" {
		ok, err := h.opts.TenantExists(r.Context(), spec.Tenant)
		if err != nil {
			writeErr(w, fmt.Errorf("%w: %v", ErrUnavailable, err))
			return
		}
		if !ok {
			writeError(w, http.StatusUnprocessableEntity, "Invalid", "tenant", fmt.Sprintf("tenant %q does not exist", spec.Tenant))
			return
		}
	}
	secret, tok, err := h.s.Create(r.Context(), spec, authn.UserOf(r))
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, Created{Secret: secret, View: h.view(tok)})
}

func (h *handler) list(w http.ResponseWriter, r *http.Request) {
	tenant := r.URL.Query().Get("tenant")
	toks, err := h.s.List(r.Context())
	if err != nil {
		writeErr(w, err)
		return
	}
	f := rbac.CheckerFrom(r.Context()).Filter(rbac.VerbList)
	items := []View{}
	for _, t := range toks {
		if (tenant == "" || t.Tenant == tenant) && f.Allows(rbac.KindBootstrapToken, t.Tenant) {
			items = append(items, h.view(t))
		}
	}
	writeJSON(w, http.StatusOK, struct {
		Items []View `json:"items"`
	}{items})
}

// visible loads the token id if the caller may do verb on it; otherwise it answers 404, so that
// ids of other tenants' tokens cannot be probed.
func (h *handler) visible(w http.ResponseWriter, r *http.Request, verb rbac.Verb) (Token, bool) {
	tok, err := h.s.Get(r.Context(), r.PathValue("id"))
	if err == nil && !rbac.CheckerFrom(r.Context()).Authorize(verb, rbac.KindBootstrapToken, tok.Tenant).Allowed {
		err = fmt.Errorf("%w: token %q", ErrNotFound, r.PathValue("id"))
	}
	if err != nil {
		writeErr(w, err)
		return Token{}, false
	}
	return tok, true
}

func (h *handler) get(w http.ResponseWriter, r *http.Request) {
	if tok, ok := h.visible(w, r, rbac.VerbGet); ok {
		writeJSON(w, http.StatusOK, h.view(tok))
	}
}

func (h *handler) revoke(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.visible(w, r, rbac.VerbDelete); !ok {
		return
	}
	tok, err := h.s.Revoke(r.Context(), r.PathValue("id"))
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, h.view(tok))
}

type errorBody struct {
	Code    int    `json:"code"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func writeErr(w http.ResponseWriter, err error) {
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
		writeError(w, status, reason, field, fe.Error())
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, "NotFound", "", err.Error())
	default:
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "", err.Error())
	}
}

func writeError(w http.ResponseWriter, status int, reason, field, message string) {
	writeJSON(w, status, errorBody{Code: status, Reason: reason, Message: message, Field: field})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(errorBody{Code: status, Reason: "InternalError", Message: "encoding the answer: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
