package rbac

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/dsnscale/dsnscale/controlplane/authn"
	"github.com/dsnscale/dsnscale/controlplane/model"
)

// Attributes are what a request asks to do, for authorization and audit.
type Attributes struct {
	Verb   Verb   `json:"verb,omitempty"`
	Kind   string `json:"kind,omitempty"`
	Tenant string `json:"tenant,omitempty"`
	Name   string `json:"name,omitempty"`
	// Filtered marks a list or watch that spans tenants (or kinds): it is allowed if the caller
	// may see some of it, and the handler filters the answer (Checker.Filter).
	Filtered bool `json:"filtered,omitempty"`
	// Deferred marks a request that only needs an authenticated caller here because the handler
	// authorizes each item itself (transactions; tokens whose tenant is in the body or the
	// store) or there is nothing to authorize (revision, OpenAPI, logout, unknown paths).
	Deferred bool `json:"deferred,omitempty"`
}

// Resolver tells what a request asks to do; false means the request is not subject to RBAC
// (login, health, metrics).
type Resolver func(r *http.Request) (Attributes, bool)

// APIPrefix is where the northbound API lives.
const APIPrefix = "/api/v1"

// PublicAPIPaths are the API paths served without a token, and so not subject to RBAC: login
// (credentials in the body) and DSN admission (a bootstrap token in the body).
var PublicAPIPaths = []string{APIPrefix + "/login", APIPrefix + "/admission"}

// APIResolver resolves the northbound API's routes:
//
//	GET    /api/v1/tenants[/{name}]                     list / get Tenant (tenant = name)
//	POST   /api/v1/tenants                              create Tenant (cluster-wide)
//	PUT    /api/v1/tenants/{name}, DELETE               update, delete Tenant in tenant name
//	*      /api/v1/tenants/{t}/{networks|policies}[/n]  Network, Policy in tenant t
//	GET    /api/v1/{networks|policies}                  list across tenants
//	*      /api/v1/dsns[/{id}], GET /api/v1/convergence DSN (cluster-wide)
//	GET    /api/v1/watch?kind=&tenant=                  watch
//	*      /api/v1/roles[/{name}], /rolebindings[/n]    Role, RoleBinding (cluster-wide)
//	*      /api/v1/users[/{name}]                       User (cluster-wide)
//	GET    /api/v1/audit                                list AuditRecord (cluster-wide)
//	GET    /api/v1/cluster                              list DSN (the control plane's replicas)
//	GET    /api/v1/bootstraptokens?tenant=              list BootstrapToken across tenants
//	*      /api/v1/bootstraptokens[/{id}] otherwise     deferred to the handler
//	POST   /api/v1/transactions                         deferred to the handler
//	POST   /api/v1/login, /api/v1/admission             not subject to RBAC (PublicAPIPaths)
//	anything else under /api/v1                         deferred (authenticated only)
//
// Paths outside /api/v1 (health, metrics) are not subject to RBAC.
func APIResolver(r *http.Request) (Attributes, bool) {
	path := r.URL.Path
	if path != APIPrefix && !strings.HasPrefix(path, APIPrefix+"/") || slices.Contains(PublicAPIPaths, path) {
		return Attributes{}, false
	}
	seg := strings.Split(strings.Trim(strings.TrimPrefix(path, APIPrefix), "/"), "/")
	deferred := Attributes{Deferred: true}
	if len(seg) == 0 || seg[0] == "" {
		return deferred, true
	}
	// Collections are /x and /tenants/t/x; items are /x/name and /tenants/t/x/name.
	item := len(seg)%2 == 0
	verb, ok := verbOf(r.Method, item)
	if !ok || len(seg) > 4 || strings.Contains(path, "//") {
		return deferred, true
	}
	name := ""
	if len(seg) == 2 {
		name = seg[1]
	}
	switch seg[0] {
	case "tenants":
		switch len(seg) {
		case 1:
			return Attributes{Verb: verb, Kind: string(model.KindTenant), Filtered: verb == VerbList}, true
		case 2:
			return Attributes{Verb: verb, Kind: string(model.KindTenant), Tenant: name, Name: name}, true
		}
		kind, known := namespacedKind(seg[2])
		if !known {
			return deferred, true
		}
		a := Attributes{Verb: verb, Kind: kind, Tenant: seg[1]}
		if item {
			a.Name = seg[3]
		}
		return a, true
	case "networks", "policies":
		kind, _ := namespacedKind(seg[0])
		if len(seg) == 1 && verb == VerbList {
			return Attributes{Verb: VerbList, Kind: kind, Filtered: true}, true
		}
	case "dsns":
		if len(seg) <= 2 {
			return Attributes{Verb: verb, Kind: string(model.KindDSN), Name: name}, true
		}
	case "convergence":
		if len(seg) == 1 && r.Method == http.MethodGet {
			return Attributes{Verb: VerbList, Kind: string(model.KindDSN)}, true
		}
	case "watch":
		if len(seg) == 1 && r.Method == http.MethodGet {
			q := r.URL.Query()
			kind, tenant := q.Get("kind"), q.Get("tenant")
			return Attributes{Verb: VerbWatch, Kind: kind, Tenant: tenant, Filtered: kind == "" || tenant == ""}, true
		}
	case "roles":
		if len(seg) <= 2 {
			return Attributes{Verb: verb, Kind: KindRole, Name: name}, true
		}
	case "rolebindings":
		if len(seg) <= 2 {
			return Attributes{Verb: verb, Kind: KindRoleBinding, Name: name}, true
		}
	case "users":
		if len(seg) <= 2 {
			return Attributes{Verb: verb, Kind: KindUser, Name: name}, true
		}
	case "events", "metrics", "inventory":
		// What DSNs report (telemetry, events, their inventory records) is readable by those who
		// may list DSNs.
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			return Attributes{Verb: VerbList, Kind: string(model.KindDSN)}, true
		}
	case "cluster":
		// The control plane's replicas and bus are shown to those who may list DSNs.
		if len(seg) == 1 && r.Method == http.MethodGet {
			return Attributes{Verb: VerbList, Kind: string(model.KindDSN)}, true
		}
	case "audit":
		if len(seg) == 1 && r.Method == http.MethodGet {
			return Attributes{Verb: VerbList, Kind: KindAuditRecord}, true
		}
	case "bootstraptokens":
		if len(seg) == 1 && verb == VerbList {
			tenant := r.URL.Query().Get("tenant")
			return Attributes{Verb: VerbList, Kind: KindBootstrapToken, Tenant: tenant, Filtered: tenant == ""}, true
		}
	}
	return deferred, true
}

// verbOf maps an HTTP method to a verb on a collection (item false) or an item.
func verbOf(method string, item bool) (Verb, bool) {
	switch method {
	case http.MethodGet, http.MethodHead:
		if item {
			return VerbGet, true
		}
		return VerbList, true
	case http.MethodPost:
		return VerbCreate, !item
	case http.MethodPut, http.MethodPatch:
		return VerbUpdate, item
	case http.MethodDelete:
		return VerbDelete, item
	}
	return "", false
}

func namespacedKind(plural string) (string, bool) {
	switch plural {
	case "networks":
		return string(model.KindNetwork), true
	case "policies":
		return string(model.KindPolicy), true
	}
	return "", false
}

// Options configures Middleware.
type Options struct {
	// Resolve tells what requests ask; nil means APIResolver.
	Resolve Resolver
	// OnDecision, if set, is called with each decision the middleware makes (for audit
	// records), and by Checkers for each decision they make.
	OnDecision func(r *http.Request, attrs Attributes, d Decision)
}

// Middleware authorizes each request that Resolve resolves, for the principal authn.Middleware
// put in its context: a request without one gets 401, a denied one 403 with the API's JSON
// error; an allowed or deferred one goes on with a Checker in its context (CheckerFrom).
func Middleware(a *Authorizer, opts Options) func(http.Handler) http.Handler {
	resolve := opts.Resolve
	if resolve == nil {
		resolve = APIResolver
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			attrs, ok := resolve(r)
			if !ok {
				next.ServeHTTP(w, r)
				return
			}
			p, ok := authn.FromContext(r.Context())
			if !ok {
				writeError(w, http.StatusUnauthorized, "Unauthorized", "authentication required")
				return
			}
			c := &Checker{a: a, p: p, r: r, onDecision: opts.OnDecision}
			if !attrs.Deferred {
				var d Decision
				if attrs.Filtered {
					d = a.AuthorizeAny(p, attrs.Verb, attrs.Kind)
				} else {
					d = a.Authorize(p, attrs.Verb, attrs.Kind, attrs.Tenant)
				}
				if opts.OnDecision != nil {
					opts.OnDecision(r, attrs, d)
				}
				if !d.Allowed {
					writeError(w, http.StatusForbidden, "Forbidden", d.Reason)
					return
				}
			}
			if s, ok := r.Context().Value(slotKey{}).(*slot); ok {
				s.c = c
				next.ServeHTTP(w, r)
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), checkerKey{}, c)))
		})
	}
}

type checkerKey struct{}

// Checker authorizes the items of one request for its caller. A nil *Checker (no RBAC
// configured) allows everything.
type Checker struct {
	a          *Authorizer
	p          *authn.Principal
	r          *http.Request
	onDecision func(*http.Request, Attributes, Decision)
}

// CheckerFrom returns the Checker Middleware put in ctx, or nil if there is none.
func CheckerFrom(ctx context.Context) *Checker {
	if c, ok := ctx.Value(checkerKey{}).(*Checker); ok {
		return c
	}
	if s, ok := ctx.Value(slotKey{}).(*slot); ok {
		return s.c
	}
	return nil
}

type slotKey struct{}

// slot is room for a request's Checker, made in its context before Middleware runs.
type slot struct{ c *Checker }

// WithSlot returns ctx with room for the Checker that Middleware makes. A server that adds
// other values to its requests' contexts first can add this one with them, and Middleware then
// fills it in instead of copying each request to add the Checker.
func WithSlot(ctx context.Context) context.Context {
	return context.WithValue(ctx, slotKey{}, &slot{})
}

// Authorize decides one item: verb on an object of kind in tenant.
func (c *Checker) Authorize(verb Verb, kind, tenant string) Decision {
	if c == nil {
		return Decision{Allowed: true, Reason: "no RBAC configured"}
	}
	d := c.a.Authorize(c.p, verb, kind, tenant)
	if c.onDecision != nil {
		c.onDecision(c.r, Attributes{Verb: verb, Kind: kind, Tenant: tenant}, d)
	}
	return d
}

// Filter returns the filter of what the caller may see with verb (nil without RBAC).
func (c *Checker) Filter(verb Verb) *Filter {
	if c == nil {
		return nil
	}
	return c.a.Filter(c.p, verb)
}

// errorBody is the API's JSON error.
type errorBody struct {
	Code    int    `json:"code"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func writeError(w http.ResponseWriter, status int, reason, message string) {
	writeFieldError(w, status, reason, "", message)
}

func writeFieldError(w http.ResponseWriter, status int, reason, field, message string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="dsnscale"`)
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
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
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
