package target

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane/pki"
	"github.com/dsnscale/dsnscale/simdsn/bus"
)

const good = `apiVersion: dsnscale/v1
kind: Target
name: staging
apiURL: https://cp.example:8443
busURL: tls://cp.example:4222
caFile: ca.crt
credentials:
  user: admin
  passwordFile: secrets/admin-password
admission:
  bootstrapTokenFile: /abs/dsn-token
`

func TestParseResolvesPathsAgainstTheFile(t *testing.T) {
	f, err := Parse("/etc/dsnscale/staging.yaml", []byte(good))
	require.NoError(t, err)
	assert.Equal(t, "staging", f.Name)
	assert.Equal(t, "/etc/dsnscale/ca.crt", f.CAFile)
	assert.Equal(t, "/etc/dsnscale/secrets/admin-password", f.Credentials.PasswordFile)
	assert.Equal(t, "/abs/dsn-token", f.Admission.BootstrapTokenFile)
	assert.Equal(t, "password", f.Credentials.Kind())
	assert.Equal(t, AdmitDSNToken, f.Admission.Mode())
	assert.Equal(t, bus.PerDSN, f.Conn(), "a DSN token admits DSNs one by one, each on its own connection")
}

func TestParseRejectsWithFileLineAndField(t *testing.T) {
	for _, c := range []struct{ name, doc, want string }{
		{"unknown field", "apiVersion: dsnscale/v1\nkind: Target\napiURL: https://a:1\nbusURL: tls://a:2\ncaFlie: x\ncredentials: {tokenFile: t}\nadmission: {issue: gateway}\n",
			`t.yaml:5: caFlie: unknown field; did you mean "caFile"?`},
		{"wrong kind", "apiVersion: dsnscale/v1\nkind: Scenario\napiURL: https://a:1\nbusURL: tls://a:2\ncaFile: c\ncredentials: {tokenFile: t}\nadmission: {issue: gateway}\n",
			`t.yaml:2: kind: must be "Target", got "Scenario"`},
		{"bus scheme", "apiVersion: dsnscale/v1\nkind: Target\napiURL: https://a:1\nbusURL: nats://a:2\ncaFile: c\ncredentials: {tokenFile: t}\nadmission: {issue: gateway}\n",
			`t.yaml:4: busURL: must be a tls:// URL where DSNs connect, got "nats://a:2"`},
		{"no CA", "apiVersion: dsnscale/v1\nkind: Target\napiURL: https://a:1\nbusURL: tls://a:2\ncredentials: {tokenFile: t}\nadmission: {issue: gateway}\n",
			`caFile: is required`},
		{"no credentials", "apiVersion: dsnscale/v1\nkind: Target\napiURL: https://a:1\nbusURL: tls://a:2\ncaFile: c\nadmission: {issue: gateway}\n",
			`credentials: one of user with passwordFile, tokenFile, or clientCertFile with clientKeyFile is required`},
		{"user without password", "apiVersion: dsnscale/v1\nkind: Target\napiURL: https://a:1\nbusURL: tls://a:2\ncaFile: c\ncredentials: {user: admin}\nadmission: {issue: gateway}\n",
			`t.yaml:6: credentials.passwordFile: is required with user`},
		{"two credentials", "apiVersion: dsnscale/v1\nkind: Target\napiURL: https://a:1\nbusURL: tls://a:2\ncaFile: c\ncredentials: {user: a, passwordFile: p, tokenFile: t}\nadmission: {issue: gateway}\n",
			`t.yaml:6: credentials: user/passwordFile, tokenFile and clientCertFile/clientKeyFile are exclusive`},
		{"no admission", "apiVersion: dsnscale/v1\nkind: Target\napiURL: https://a:1\nbusURL: tls://a:2\ncaFile: c\ncredentials: {tokenFile: t}\n",
			`admission: one of bootstrapTokenFile, gatewayTokenFile`},
		{"two admissions", "apiVersion: dsnscale/v1\nkind: Target\napiURL: https://a:1\nbusURL: tls://a:2\ncaFile: c\ncredentials: {tokenFile: t}\nadmission: {issue: gateway, gatewayTokenFile: g}\n",
			`t.yaml:7: admission: bootstrapTokenFile, gatewayTokenFile, gatewayCertFile/gatewayKeyFile and issue are exclusive`},
		{"half a gateway identity", "apiVersion: dsnscale/v1\nkind: Target\napiURL: https://a:1\nbusURL: tls://a:2\ncaFile: c\ncredentials: {tokenFile: t}\nadmission: {gatewayCertFile: c}\n",
			`t.yaml:7: admission: gatewayCertFile and gatewayKeyFile go together`},
		{"issue what", "apiVersion: dsnscale/v1\nkind: Target\napiURL: https://a:1\nbusURL: tls://a:2\ncaFile: c\ncredentials: {tokenFile: t}\nadmission: {issue: dsn}\n",
			`t.yaml:7: admission.issue: must be gateway, got "dsn"`},
		{"plain http", "apiVersion: dsnscale/v1\nkind: Target\napiURL: http://a:1\nbusURL: tls://a:2\ncaFile: ca.crt\ncredentials: {tokenFile: t}\nadmission: {issue: gateway}\n",
			`t.yaml:3: apiURL: must be an https:// URL of the northbound API, got "http://a:1" (a control plane run --insecure needs no target`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(c.doc))
			require.ErrorIs(t, err, ErrInvalid)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}

func TestFleetSecurityReadsTheAdmissionFiles(t *testing.T) {
	dir := t.TempDir()
	f, err := Parse(filepath.Join(dir, "t.yaml"), []byte("apiVersion: dsnscale/v1\nkind: Target\napiURL: https://a:1\nbusURL: tls://a:2\ncaFile: c\n"+
		"credentials: {tokenFile: t}\nadmission: {gatewayTokenFile: missing}\n"))
	require.NoError(t, err)
	writeCA(t, filepath.Join(dir, "c"))
	_, err = f.FleetSecurity(t.Context(), nil, "")
	require.ErrorIs(t, err, ErrCredentials)
	assert.Contains(t, err.Error(), "admission.gatewayTokenFile")
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("apiVersion: dsnscale/v1\nkind: Target\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tf, err := Parse("f.yaml", data)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalid)
			return
		}
		require.NotEmpty(t, tf.APIURL)
		require.NotEmpty(t, tf.Admission.Mode())
		require.NotEmpty(t, tf.Credentials.Kind())
	})
}

// writeCA writes a self-signed CA certificate to path.
func writeCA(t *testing.T, path string) {
	t.Helper()
	ca, err := pki.OpenCA(t.TempDir(), nil)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, ca.CertPEM(), 0o600))
}
