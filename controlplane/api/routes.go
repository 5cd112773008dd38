package api

import (
	"net/http"
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dsnscale/dsnscale/controlplane/model"
)

// Paths of the API.
const (
	prefix           = "/api/v1"
	pathTenants      = prefix + "/tenants"
	pathTenant       = prefix + "/tenants/{name}"
	pathTransactions = prefix + "/transactions"
	pathWatch        = prefix + "/watch"
	pathOpenAPI      = prefix + "/openapi.json"
	pathConvergence  = prefix + "/convergence"
	pathRevision     = prefix + "/revision"
	pathDSNs         = prefix + "/dsns"
	pathDSN          = prefix + "/dsns/{id}"
)

// routeClass says which limits apply to a route.
type routeClass int

const (
	limited   routeClass = iota // counted against MaxInFlight
	unlimited                   // health, metrics and watches: never refused for load
)

// plural is the path segment of a kind's collection: "tenants", "networks", "policies", "dsns".
func plural(kind model.Kind) string {
	if kind == model.KindPolicy {
		return "policies"
	}
	return strings.ToLower(string(kind)) + "s"
}

// collectionPath is where objects of kind are listed and created.
func collectionPath(kind model.Kind) string {
	if kind.Namespaced() {
		return pathTenants + "/{tenant}/" + plural(kind)
	}
	return prefix + "/" + plural(kind)
}

// itemPath is where one object of kind lives.
func itemPath(kind model.Kind) string { return collectionPath(kind) + "/{name}" }

// objectKinds are the kinds the API stores; DSNs are the Fleet's.
var objectKinds = []model.Kind{model.KindTenant, model.KindNetwork, model.KindPolicy}

func (s *server) routes() {
	s.handle(http.MethodGet, "/healthz", unlimited, s.healthz)
	s.handle(http.MethodGet, "/readyz", unlimited, s.readyz)
	s.handle(http.MethodGet, "/metrics", unlimited,
		promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{Registry: s.registry}).ServeHTTP)
	s.handle(http.MethodGet, pathOpenAPI, limited, s.getOpenAPI)
	s.handle(http.MethodGet, pathRevision, limited, s.getRevision)
	s.handle(http.MethodGet, pathConvergence, limited, s.getConvergence)
	s.handle(http.MethodGet, pathWatch, unlimited, s.watch)
	s.handle(http.MethodPost, pathTransactions, limited, s.transaction)
	for _, kind := range objectKinds {
		s.handle(http.MethodGet, collectionPath(kind), limited, s.list(kind))
		s.handle(http.MethodPost, collectionPath(kind), limited, s.create(kind))
		s.handle(http.MethodGet, itemPath(kind), limited, s.get(kind))
		s.handle(http.MethodPut, itemPath(kind), limited, s.update(kind))
		s.handle(http.MethodDelete, itemPath(kind), limited, s.delete(kind))
		if kind.Namespaced() { // across all tenants
			s.handle(http.MethodGet, prefix+"/"+plural(kind), limited, s.list(kind))
		}
	}
	s.handle(http.MethodGet, pathDSNs, limited, s.listDSNs)
	s.handle(http.MethodGet, pathDSN, limited, s.getDSN)
	s.handle(http.MethodPut, pathDSN, limited, s.putDSN)
	s.handle(http.MethodDelete, pathDSN, limited, s.deleteDSN)

	paths := make([]string, 0, len(s.allowed))
	for p := range s.allowed {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		s.mux.Handle(p, s.instrument(p, unlimited, s.methodNotAllowed(p, s.allowed[p])))
	}
	s.mux.Handle("/", s.instrument("unmatched", unlimited, func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, errorf(http.StatusNotFound, reasonNotFound, "", "no route for %s %s; the API lives under %s (see %s)", r.Method, r.URL.Path, prefix, pathOpenAPI))
	}))
}

// handle registers h for method and path, instrumented with the route pattern as its label.
func (s *server) handle(method, path string, class routeClass, h http.HandlerFunc) {
	pattern := method + " " + path
	s.mux.Handle(pattern, s.instrument(pattern, class, h))
	s.allowed[path] = append(s.allowed[path], method)
}

func (s *server) methodNotAllowed(path string, methods []string) http.HandlerFunc {
	allow := append([]string(nil), methods...)
	for _, m := range methods {
		if m == http.MethodGet {
			allow = append(allow, http.MethodHead)
		}
	}
	sort.Strings(allow)
	allowHeader := strings.Join(allow, ", ")
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allowHeader)
		msg := "method " + r.Method + " is not allowed on " + path + "; allowed: " + allowHeader
		if path == pathDSNs || path == pathDSN {
			msg = "DSNs are created by admission over the southbound protocol, not by the API; " +
				"the API can only get, list, relabel (PUT) and decommission (DELETE) them"
		}
		s.writeError(w, r, errorf(http.StatusMethodNotAllowed, reasonMethodNotAllowed, "", "%s", msg))
	}
}

func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(); err != nil {
			s.writeError(w, r, unavailable(err, "not ready: %v", err))
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *server) getOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(s.openAPI)
}
