package scenarios

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Against a target, a control-plane fault needs the hooks the target declares for it.
func TestUseTargetNeedsHooks(t *testing.T) {
	dir := t.TempDir()
	const base = `apiVersion: dsnscale/v1
kind: Target
name: staging
apiURL: https://cp.example:8443
busURL: tls://cp.example:4222
caFile: ca.crt
credentials: {user: admin, passwordFile: pw}
admission: {issue: gateway}
`
	plain := filepath.Join(dir, "plain.yaml")
	require.NoError(t, os.WriteFile(plain, []byte(base), 0o600))
	hooked := filepath.Join(dir, "hooked.yaml")
	require.NoError(t, os.WriteFile(hooked, []byte(base+`hooks:
  kill: {command: ["true"], timeout: 5s}
  start: {command: ["true"], timeout: 5s}
`), 0o600))

	s, err := Load("cp-restart", map[string]string{"dsns": "4"})
	require.NoError(t, err)
	err = UseTarget(s, plain)
	require.ErrorIs(t, err, ErrInvalid)
	assert.Contains(t, err.Error(), "steps[outage].faults[0]: cp-restart on a control plane the harness does not run needs the target's kill and start hooks")

	s, err = Load("cp-restart", map[string]string{"dsns": "4"})
	require.NoError(t, err)
	require.NoError(t, UseTarget(s, hooked))
}
