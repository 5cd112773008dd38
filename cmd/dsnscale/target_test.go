package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane"
	"github.com/dsnscale/dsnscale/controlplane/authn"
	"github.com/dsnscale/dsnscale/controlplane/client"
	"github.com/dsnscale/dsnscale/controlplane/cpproc"
	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/controlplane/pki"
)

// staging is a secure `dsnscale cp serve` started on its own, and what its user has at hand:
// the addresses and the files it names (its CA and the admin password file).
type staging struct {
	p               *cpproc.Process
	caFile, pwFile  string
	apiURL, natsURL string
	dir             string
}

func startStaging(t *testing.T) *staging {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dir := t.TempDir()
	p, err := cpproc.Start(ctx, cpproc.Options{Binary: binary, Dir: dir})
	require.NoError(t, err)
	t.Cleanup(p.Stop)
	data := filepath.Join(dir, "data")
	return &staging{p: p, dir: t.TempDir(), apiURL: p.APIURL(), natsURL: p.NATSURL(),
		caFile: filepath.Join(data, controlplane.CADir, pki.CertFile), pwFile: filepath.Join(data, authn.AdminPasswordFile)}
}

// targetFile writes a target file for s, with lines replacing (by key) the defaults: the CA,
// the admin's login, and a gateway token issued with it.
func (s *staging) targetFile(t *testing.T, name string, over map[string]string) string {
	t.Helper()
	fields := map[string]string{"apiURL": s.apiURL, "busURL": s.natsURL, "caFile": s.caFile,
		"user": cpproc.AdminUser, "passwordFile": s.pwFile, "issue": "gateway"}
	for k, v := range over {
		fields[k] = v
	}
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: dsnscale/v1\nkind: Target\nname: %s\napiURL: %s\nbusURL: %s\n", name, fields["apiURL"], fields["busURL"])
	if fields["caFile"] != "" {
		fmt.Fprintf(&b, "caFile: %s\n", fields["caFile"])
	}
	b.WriteString("credentials:\n")
	for _, k := range []string{"user", "passwordFile", "tokenFile"} {
		if fields[k] != "" {
			fmt.Fprintf(&b, "  %s: %s\n", k, fields[k])
		}
	}
	b.WriteString("admission:\n")
	for _, k := range []string{"issue", "bootstrapTokenFile", "gatewayTokenFile"} {
		if fields[k] != "" {
			fmt.Fprintf(&b, "  %s: %s\n", k, fields[k])
		}
	}
	path := filepath.Join(s.dir, name+".yaml")
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o600))
	return path
}

func (s *staging) file(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(s.dir, name)
	require.NoError(t, os.WriteFile(path, []byte(content+"\n"), 0o600))
	return path
}

// runBinary runs dsnscale with args and returns its exit code, stdout and stderr.
func runBinary(t *testing.T, timeout time.Duration, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), out.String(), errb.String()
	}
	require.NoError(t, err)
	return 0, out.String(), errb.String()
}

// otherCA writes the certificate of a CA that signed nothing of the control plane's.
func otherCA(t *testing.T, path string) {
	t.Helper()
	ca, err := pki.OpenCA(t.TempDir(), nil)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, ca.CertPEM(), 0o600))
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// The preflight passes against a secure control plane with only what cp serve prints, and names
// each broken piece in turn.
func TestTargetCheckNamesEachBrokenPiece(t *testing.T) {
	s := startStaging(t)
	good := s.targetFile(t, "staging", nil)
	code, out, errOut := runBinary(t, time.Minute, "target", "check", good)
	require.Equal(t, exitOK, code, "%s\n%s", out, errOut)
	for _, step := range []string{"api", "login", "admission", "bus", "bus-permissions"} {
		assert.Regexp(t, `(?m)^ok +`+step+` `, out)
	}

	// A DSN bootstrap token and a gateway token made through the API, as docs/TARGETS.md says.
	api := s.p.API()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tok, err := api.Token(ctx)
	require.NoError(t, err)
	tokenFile := s.file(t, "api-token", tok)
	_, err = api.Create(ctx, &model.Object{APIVersion: model.APIVersion, Kind: model.KindTenant, Metadata: model.Metadata{Name: "acme"}})
	require.NoError(t, err)
	dsnTok, err := api.CreateBootstrapToken(ctx, clientBootstrap("dsn", "acme"))
	require.NoError(t, err)
	gwTok, err := api.CreateBootstrapToken(ctx, clientBootstrap("gateway", ""))
	require.NoError(t, err)
	for name, over := range map[string]map[string]string{
		"dsn-token":     {"user": "", "passwordFile": "", "tokenFile": tokenFile, "issue": "", "bootstrapTokenFile": s.file(t, "dsn-token", dsnTok.Secret)},
		"gateway-token": {"issue": "", "gatewayTokenFile": s.file(t, "gw-token", gwTok.Secret)},
	} {
		code, out, errOut := runBinary(t, time.Minute, "target", "check", s.targetFile(t, name, over))
		assert.Equal(t, exitOK, code, "%s: %s\n%s", name, out, errOut)
	}

	wrongCA := filepath.Join(s.dir, "other-ca.crt")
	otherCA(t, wrongCA)
	for _, c := range []struct {
		name string
		over map[string]string
		step string
		why  string
	}{
		{"wrong-ca", map[string]string{"caFile": wrongCA}, "api", "not signed by a CA in " + wrongCA},
		{"api-down", map[string]string{"apiURL": "https://" + closedAddr(t)}, "api", "unreachable"},
		{"wrong-password", map[string]string{"passwordFile": s.file(t, "wrong-password", "not-the-password")}, "login", "the user or the password (credentials.passwordFile) is wrong (HTTP 401"},
		{"stale-token", map[string]string{"user": "", "passwordFile": "", "tokenFile": s.file(t, "stale-token", "eyJub3QiOiJhIHRva2VuIn0")}, "login", "it is not accepted"},
		{"bad-bootstrap-token", map[string]string{"issue": "", "bootstrapTokenFile": s.file(t, "bad-token", "not-a-bootstrap-token")}, "admission", "the bootstrap token is refused (HTTP 401"},
		{"bus-down", map[string]string{"busURL": "tls://" + closedAddr(t)}, "bus", "unreachable"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runBinary(t, time.Minute, "target", "check", s.targetFile(t, c.name, c.over))
			require.Equal(t, exitBroken, code, "%s\n%s", out, errOut)
			assert.Regexp(t, `(?m)^FAIL `+c.step+` `, out)
			assert.Contains(t, out, c.why)
			assert.Contains(t, errOut, "dsnscale target check: "+c.step+": ")
		})
	}

	// A bad file changes nothing and says where.
	bad := s.file(t, "bad.yaml", "apiVersion: dsnscale/v1\nkind: Target\napiURL: "+s.apiURL+"\nbusURL: "+s.natsURL+
		"\ncaFlie: x\ncredentials: {tokenFile: t}\nadmission: {issue: gateway}")
	code, _, errOut = runBinary(t, time.Minute, "target", "check", bad)
	require.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "bad.yaml:5: caFlie: unknown field")
	assert.Contains(t, errOut, `did you mean "caFile"`)
	noCA := s.targetFile(t, "no-ca", map[string]string{"caFile": ""})
	code, _, errOut = runBinary(t, time.Minute, "target", "check", noCA)
	require.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "caFile: is required")
	missing := s.targetFile(t, "missing-password", map[string]string{"passwordFile": filepath.Join(s.dir, "nope")})
	code, out, _ = runBinary(t, time.Minute, "target", "check", missing)
	require.Equal(t, exitUsage, code, out)
	assert.Contains(t, out, "credentials.passwordFile")
}

// A scenario runs against a separately started secure control plane with --target, and with
// the target inline in the scenario.
func TestRunAgainstSecureTarget(t *testing.T) {
	s := startStaging(t)
	tf := s.targetFile(t, "staging", nil)
	out := t.TempDir()
	code, stdout, stderr := runBinary(t, 5*time.Minute, "run", "smoke", "--set", "dsns=20", "--target", tf, "--out", filepath.Join(out, "a"))
	require.Equal(t, exitOK, code, "%s\n%s", stdout, stderr)
	assert.Contains(t, stdout, "PASS")

	plan := s.file(t, "inline.yaml", fmt.Sprintf(`apiVersion: dsnscale/v1
kind: Scenario
metadata: {name: inline-target, description: five DSNs boot against a target given inline}
fleet: {size: 5}
controlPlane:
  mode: external
  target:
    apiURL: %s
    busURL: %s
    caFile: %s
    credentials: {user: admin, passwordFile: %s}
    admission: {issue: gateway}
steps:
  - name: boot
    until: {connected: 100%%}
    timeout: 60s
measurements: [lost-dsns]
slos:
  - lost_dsns == 0
`, s.apiURL, s.natsURL, s.caFile, s.pwFile))
	code, stdout, stderr = runBinary(t, 5*time.Minute, "run", plan, "--plan")
	require.Equal(t, exitOK, code, "%s\n%s", stdout, stderr)
	assert.Contains(t, stdout, "external, inline target: "+s.apiURL)
	code, stdout, stderr = runBinary(t, 5*time.Minute, "run", plan, "--out", filepath.Join(out, "b"))
	require.Equal(t, exitOK, code, "%s\n%s", stdout, stderr)

	// sim takes the same file.
	code, stdout, stderr = runBinary(t, 2*time.Minute, "sim", "--target", tf, "--count", "5", "--boot-spread", "1s", "--duration", "6s", "--progress", "plain")
	require.Equal(t, exitOK, code, "%s\n%s", stdout, stderr)
	assert.Contains(t, stdout, "bus "+s.natsURL+" (shared connections)")
	assert.Regexp(t, `serving=5/5`, stdout)
	code, _, stderr = runBinary(t, time.Minute, "sim", "--target", tf, "--cp", s.natsURL)
	require.Equal(t, exitUsage, code)
	assert.Contains(t, stderr, "--cp cannot be given with --target")

	// A fleet that cannot be admitted fails its step with the control plane's reason, long
	// before the step's timeout, instead of sitting at "admitting".
	badTarget := s.targetFile(t, "bad-admission", map[string]string{"issue": "", "bootstrapTokenFile": s.file(t, "bad-token", "not-a-bootstrap-token")})
	bad := s.file(t, "bad-admission-scenario.yaml", fmt.Sprintf(`apiVersion: dsnscale/v1
kind: Scenario
metadata: {name: bad-admission, description: a fleet whose bootstrap token the control plane refuses}
fleet: {size: 10, admissionDeadline: 3s}
controlPlane: {mode: external, target: %s}
steps:
  - name: boot
    until: {connected: 100%%}
    timeout: 10m
measurements: [lost-dsns]
slos:
  - lost_dsns == 0
`, badTarget))
	started := time.Now()
	code, stdout, stderr = runBinary(t, 5*time.Minute, "run", bad, "--out", filepath.Join(out, "c"))
	require.Equal(t, exitFailed, code, "%s\n%s", stdout, stderr)
	assert.Less(t, time.Since(started), 5*time.Minute, "the step failed before its timeout")
	assert.Regexp(t, `step boot: DSNs not admitted: \d+ DSNs admitting, \d+ of them for longer than 3s; why: \d+ × connect: bus: identity of <dsn>: `+
		`agent: identity: admission of <dsn>: 401 Unauthorized: token: the bootstrap token is not valid`, stdout, "on the console, counted by reason")
	runJSON, err := os.ReadFile(filepath.Join(out, "c", "run.json"))
	require.NoError(t, err)
	assert.Contains(t, string(runJSON), "the bootstrap token is not valid", "in the report")

	code, stdout, stderr = runBinary(t, time.Minute, "validate", tf)
	require.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "ok (target staging")
}

func clientBootstrap(role, tenant string) client.BootstrapTokenSpec {
	return client.BootstrapTokenSpec{Role: role, Tenant: tenant, Uses: 100, Description: "test " + role}
}
