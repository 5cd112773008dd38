package rbac

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// FuzzAPIResolver checks that no path under the API escapes RBAC: everything but the public
// paths is subject to it, and what is not deferred names a verb (and a kind, but for watches of every
// kind).
func FuzzAPIResolver(f *testing.F) {
	for _, s := range []string{"/api/v1/tenants/acme/networks/n", "/api/v1/login", "/api/v1//tenants", "/api/v1/dsns/x/y",
		"/api/v1/watch", "/api/v1/tenants/a/policies", "/api/v1/../healthz", "/api/v1/roles/"} {
		f.Add("GET", s)
		f.Add("PUT", s)
	}
	f.Fuzz(func(t *testing.T, method, path string) {
		if !strings.HasPrefix(path, "/") {
			return
		}
		r := &http.Request{Method: method, URL: &url.URL{Path: path}}
		attrs, ok := APIResolver(r)
		inAPI := path == APIPrefix || strings.HasPrefix(path, APIPrefix+"/")
		if inAPI && !slices.Contains(PublicAPIPaths, path) && !ok {
			t.Fatalf("%s %s escapes RBAC", method, path)
		}
		if !inAPI && ok {
			t.Fatalf("%s %s is outside the API but resolved to %+v", method, path, attrs)
		}
		if ok && !attrs.Deferred && (attrs.Verb == "" || attrs.Kind == "" && attrs.Verb != VerbWatch) {
			t.Fatalf("%s %s resolved to %+v", method, path, attrs)
		}
	})
}
