// Package openapitest checks a server's requests and answers against its OpenAPI document, for
// the tests of the API and of the secure control plane.
package openapitest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Exchange sends req, whose body is body (nil for none), with hc and returns the route it took
// in the document and the answer's body. The answer must have status and agree with the
// document; a request meant to succeed (status below 300) must agree with it too, with auth
// checking its security requirements.
func Exchange(t testing.TB, hc *http.Client, router routers.Router, req *http.Request, body []byte, status int,
	auth openapi3filter.AuthenticationFunc) (*routers.Route, []byte) {
	t.Helper()
	method, path := req.Method, req.URL.Path
	route, params, err := router.FindRoute(req)
	require.NoError(t, err, "%s %s is not in the document", method, path)
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: auth}}
	if status < 300 {
		require.NoError(t, openapi3filter.ValidateRequest(context.Background(), in), "%s %s: request", method, path)
		if body != nil { // validation read it
			req.Body = io.NopCloser(bytes.NewReader(body))
		}
	}
	resp, err := hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, status, resp.StatusCode, "%s %s: %s", method, path, b)
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(b)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true},
	}
	assert.NoError(t, openapi3filter.ValidateResponse(context.Background(), out), "%s %s: answer %s", method, path, b)
	return route, b
}
