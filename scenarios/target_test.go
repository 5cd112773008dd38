package scenarios

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/target"
)

func withCP(cp string) string {
	return strings.Replace(valid, "controlPlane:\n  mode: inprocess\n", cp, 1)
}

const targetFile = `apiVersion: dsnscale/v1
kind: Target
name: staging
apiURL: https://cp.example:8443
busURL: tls://cp.example:4222
caFile: ca.crt
credentials: {tokenFile: token}
admission: {issue: gateway}
`

func TestControlPlaneTarget(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "staging.yaml"), []byte(targetFile), 0o600))

	s, err := Parse("test.yaml", []byte(withCP("controlPlane:\n  mode: external\n  target: staging.yaml\n")), nil, dir)
	require.NoError(t, err)
	require.NotNil(t, s.ControlPlane.Target)
	assert.Equal(t, "staging", s.ControlPlane.Target.Name)
	assert.Equal(t, filepath.Join(dir, "ca.crt"), s.ControlPlane.Target.Target.CAFile, "relative to the target file")

	s, err = Parse("test.yaml", []byte(withCP("controlPlane:\n  mode: external\n  target:\n    apiURL: https://cp:1\n    busURL: tls://cp:2\n"+
		"    caFile: ca.crt\n    credentials: {tokenFile: tok}\n    admission: {gatewayTokenFile: gw}\n")), nil, dir)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "tok"), s.ControlPlane.Target.Target.Credentials.TokenFile, "relative to the scenario")
	assert.Equal(t, target.AdmitGatewayToken, s.ControlPlane.Target.Target.Admission.Mode())

	for _, c := range []struct{ name, cp, want string }{
		{"inline problem at its line", "controlPlane:\n  mode: external\n  target:\n    apiURL: https://cp:1\n    busURL: https://cp:2\n    caFile: ca.crt\n    credentials: {tokenFile: tok}\n    admission: {issue: gateway}\n",
			"test.yaml:17: controlPlane.target.busURL: must be a tls:// URL where DSNs connect"},
		{"missing file", "controlPlane:\n  mode: external\n  target: nope.yaml\n", "controlPlane.target: target: invalid: open " + filepath.Join(dir, "nope.yaml")},
		{"with url", "controlPlane:\n  mode: external\n  url: https://cp:1\n  target: staging.yaml\n", "controlPlane.url: cannot be set with controlPlane.target"},
		{"not external", "controlPlane:\n  mode: process\n  target: staging.yaml\n", "controlPlane.target: is only for mode external"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("test.yaml", []byte(withCP(c.cp)), nil, dir)
			require.ErrorIs(t, err, ErrInvalid)
			assert.Contains(t, err.Error(), c.want)
		})
	}

	// run --target replaces the control plane.
	s, err = Parse("test.yaml", []byte(valid), nil, "")
	require.NoError(t, err)
	require.NoError(t, UseTarget(s, filepath.Join(dir, "staging.yaml")))
	assert.Equal(t, CPExternal, s.ControlPlane.Mode)
	assert.Contains(t, describeCP(s.ControlPlane), "target staging")
	require.ErrorIs(t, UseTarget(s, filepath.Join(dir, "nope.yaml")), target.ErrInvalid)
}
