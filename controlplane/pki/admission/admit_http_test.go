package admission

import (
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/pki"
)

func TestAdmitHandler(t *testing.T) {
	e := newEnv(t)
	srv := httptest.NewServer(AdmitHandler(e.adm))
	defer srv.Close()
	secret, _ := e.create(t, Spec{Tenant: "acme", Labels: map[string]string{"site": "par1"}})
	key, err := pki.NewKey()
	require.NoError(t, err)
	csr, err := pki.NewCSR(key, "dsn-1")
	require.NoError(t, err)
	body := func(token, dsn, csr string) string {
		b, _ := json.Marshal(AdmitRequest{Token: token, DSN: dsn, CSR: csr})
		return string(b)
	}
	post := func(payload string) (int, map[string]any) {
		resp, err := http.Post(srv.URL+AdmitPath, "application/json", strings.NewReader(payload))
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, json.Unmarshal(b, &m), string(b))
		return resp.StatusCode, m
	}

	tests := []struct {
		name    string
		payload string
		code    int
		field   string
	}{
		{"bad token", body("dsnbt.0123456789abcdef.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "dsn-1", string(csr)), 401, "token"},
		{"CSR for someone else", body(secret, "dsn-2", string(csr)), 422, "csr"},
		{"garbage CSR", body(secret, "dsn-1", "junk"), 422, "csr"},
		{"bad id", body(secret, "dsn 1", string(csr)), 422, "dsn"},
		{"missing token", body("", "dsn-1", string(csr)), 400, "token"},
		{"unknown field", `{"token":"x","dsn":"d","csr":"c","role":"admin"}`, 400, "role"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, m := post(tt.payload)
			require.Equal(t, tt.code, code, m)
			require.Equal(t, tt.field, m["field"], m)
		})
	}

	code, m := post(body(secret, "dsn-1", string(csr)))
	require.Equal(t, http.StatusOK, code, m)
	require.Equal(t, "acme", m["tenant"])
	cert, err := pki.ParseCertificatePEM([]byte(m["certificate"].(string)))
	require.NoError(t, err)
	id, err := e.ca.Verify([]*x509.Certificate{cert})
	require.NoError(t, err)
	require.Equal(t, "dsn-1", id.Name)
	require.Equal(t, string(e.ca.CertPEM()), m["ca"])

	code, m = post(body(secret, "dsn-1", string(csr)))
	require.Equal(t, http.StatusUnauthorized, code, "a replayed single-use token")
	require.Contains(t, m["message"], "already used")
}
