package northbound

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane"
	"github.com/dsnscale/dsnscale/controlplane/model"
	"github.com/dsnscale/dsnscale/loadgen"
	"github.com/dsnscale/dsnscale/loadgen/mix"
)

// startControlPlane starts the reference control plane on loopback, with security on, and
// returns the workload config that reaches it: its URL, its CA, the admin's credentials.
func startControlPlane(t *testing.T) Config {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cp, err := controlplane.Start(ctx, controlplane.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", BcryptCost: 4})
	require.NoError(t, err)
	t.Cleanup(cp.Stop)
	require.NoError(t, cp.WaitReady(ctx))
	user, pw, err := cp.AdminCredentials()
	require.NoError(t, err)
	return Config{Target: cp.APIURL(), CA: cp.CAPEM(), User: user, Password: pw}
}

const everyOp = `apiVersion: dsnscale/v1
kind: LoadMix
name: every-op
population: {tenants: 2, networksPerTenant: 4, policiesPerTenant: 2, rulesPerPolicy: 3, seed: 9, prefix: e2e}
timeout: 5s
operations:
  - {op: get, kind: Network, weight: 4}
  - {op: get, kind: Policy, weight: 2}
  - {op: get, kind: Tenant, weight: 1}
  - {op: get, kind: DSN, weight: 1}
  - {op: list, kind: Network, weight: 1}
  - {op: list, kind: Tenant, weight: 1}
  - {op: list, kind: DSN, weight: 1}
  - {op: create, kind: Network, weight: 2}
  - {op: create, kind: Policy, weight: 1}
  - {op: create, kind: Tenant, weight: 1}
  - {op: update, kind: Network, weight: 2}
  - {op: update, kind: Policy, weight: 2}
  - {op: update, kind: Tenant, weight: 1}
  - {op: delete, kind: Network, weight: 1}
  - {op: delete, kind: Tenant, weight: 1}
  - {op: transaction, kind: Network, size: 2, weight: 1}
  - {op: watch, weight: 1}
  - {op: search, index: events, weight: 1}
  - {op: search, index: audit, weight: 1}
`

func TestEveryOperationAgainstTheControlPlane(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane")
	}
	base := startControlPlane(t)
	m, err := mix.Parse("every-op.yaml", []byte(everyOp))
	require.NoError(t, err)
	cfg := base
	cfg.Mix, cfg.RunID = m, "e2e1"
	w, err := New(cfg)
	require.NoError(t, err)
	defer w.CloseIdleConnections()

	st, err := w.Setup(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 2+8+4, st.Created)
	assert.Zero(t, st.Adopted)

	// A second workload with the same population adopts what is there.
	cfg.RunID = "e2e2"
	w2, err := New(cfg)
	require.NoError(t, err)
	st2, err := w2.Setup(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 14, st2.Adopted)
	assert.Zero(t, st2.Created)

	// Operations are drawn at random by weight: 400 draws make one of weight 1 in 26 certain
	// to run but about once in ten million (200 left it out about once in 2,500).
	ex, err := loadgen.New(loadgen.ExecutorConfig{Rate: 100, Duration: 4 * time.Second, MaxVUs: 100}, w, loadgen.Options{})
	require.NoError(t, err)
	sum, err := ex.Run(t.Context(), nil)
	require.NoError(t, err)
	t.Logf("summary: %+v", sum.ErrorsByClass)
	for name, op := range sum.Ops {
		t.Logf("%-20s n=%d errors=%v p50=%s", name, op.Count, op.ErrorsByClass, op.Latency.P50)
	}
	assert.Equal(t, int64(400), sum.Completed)
	// An update or transaction can pick an object that a delete running at the same time
	// removes (or whose tenant it removes): "no object" then, never more often than deletes
	// succeeded. The more the machine delays requests, the more such races there are.
	deleted := int64(0)
	for _, name := range []string{"delete/Network", "delete/Tenant"} {
		deleted += sum.Ops[name].Count - sum.Ops[name].Errors
	}
	for name, op := range sum.Ops {
		switch name {
		case "search/events", "search/audit":
			assert.Empty(t, op.ErrorsByClass, "the control plane serves event and audit search: %s", name)
		case "get/DSN":
			assert.Equal(t, op.Count, op.ErrorsByClass[loadgen.ClassNoObject], "no DSNs admitted: %s", name)
		case "delete/Network", "delete/Tenant":
			// Deletes find something only once a create has run.
			assert.Zero(t, op.Errors-op.ErrorsByClass[loadgen.ClassNoObject], "%s: %v", name, op.ErrorsByClass)
		case "update/Network", "update/Tenant", "transaction/Network":
			assert.Zero(t, op.Errors-op.ErrorsByClass[loadgen.ClassNoObject], "%s: %v", name, op.ErrorsByClass)
			assert.LessOrEqual(t, op.ErrorsByClass[loadgen.ClassNoObject], deleted, "%s: more objects missing than were deleted", name)
		default:
			assert.Zero(t, op.Errors, "%s: %v", name, op.ErrorsByClass)
		}
	}
	for _, name := range []string{"get/Network", "update/Policy", "create/Network", "transaction/Network", "watch", "list/DSN"} {
		assert.Positive(t, sum.Ops[name].Count, name)
	}

	td, err := w.Teardown(t.Context())
	require.NoError(t, err)
	assert.GreaterOrEqual(t, td.Deleted, 14)
	// Nothing of the load is left: no tenants at all.
	req, err := http.NewRequest("GET", base.Target+"/api/v1/tenants", nil)
	require.NoError(t, err)
	for k, v := range w.Header() {
		req.Header[k] = v
	}
	resp, err := w.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var list struct {
		Items []model.Object `json:"items"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&list))
	var left []string
	for _, o := range list.Items {
		left = append(left, o.Metadata.Name)
	}
	assert.Empty(t, left)
}

func TestSetupReportsTheFailingObject(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane")
	}
	base := startControlPlane(t)
	m, err := mix.Builtin("get-only")
	require.NoError(t, err)
	m.Setup = mix.SetupSkip
	cfg := base
	cfg.Mix = m
	w, err := New(cfg)
	require.NoError(t, err)
	st, err := w.Setup(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 510, st.Assumed)
	// Nothing was created, so every get is a 404: counted as errors, never fatal.
	out := w.Iterate(t.Context(), loadgen.Iteration{})
	assert.Equal(t, "get/Network", out.Op)
	assert.Equal(t, http.StatusNotFound, out.Status)
}

func TestConfigValidate(t *testing.T) {
	m, err := mix.Builtin("default")
	require.NoError(t, err)
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{Mix: m}, "target: required"},
		{Config{Target: "ftp://x", Mix: m}, `target "ftp://x": scheme must be http or https`},
		{Config{Target: "http://", Mix: m}, `target "http://": no host`},
		{Config{Target: "http://h?x=1", Mix: m}, "must not have a query"},
		{Config{Target: "http://h"}, "mix: required"},
		{Config{Target: "http://h", Mix: m, RunID: "Bad!"}, `run id "Bad!"`},
		{Config{Target: "http://h", Mix: m, Token: "a\nb"}, "token: must be one line"},
		{Config{Target: "http://h", Mix: m, User: "admin"}, "user and password go together"},
		{Config{Target: "http://h", Mix: m, User: "admin", Password: "pw", Token: "t"}, "token and user are exclusive"},
		{Config{Target: "https://h", Mix: m, CA: []byte("not a certificate")}, "ca: "},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		require.ErrorIs(t, err, ErrConfig)
		assert.Contains(t, err.Error(), tt.want)
	}
	require.NoError(t, Config{Target: "http://127.0.0.1:1/", Mix: m}.Validate())
	assert.True(t, strings.HasSuffix(itemPath(model.Key{Kind: model.KindPolicy, Tenant: "t", Name: "p"}), "/tenants/t/policies/p"))
}

// TestTrustedTarget checks that a workload without a CA of its own trusts the one a harness
// registered for its target, and only that target.
func TestTrustedTarget(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane")
	}
	base := startControlPlane(t)
	m, err := mix.Parse("small.yaml", []byte(`apiVersion: dsnscale/v1
kind: LoadMix
name: small
population: {tenants: 1, networksPerTenant: 2, prefix: tt}
operations:
  - {op: get, kind: Network, weight: 1}
`))
	require.NoError(t, err)
	cfg := Config{Target: base.Target, User: base.User, Password: base.Password, Mix: m}
	w, err := New(cfg)
	require.NoError(t, err)
	_, err = w.Setup(t.Context())
	require.Error(t, err, "the target's certificate is not trusted yet")

	TrustTarget(base.Target+"/", base.CA)
	defer TrustTarget(base.Target, nil)
	w, err = New(cfg)
	require.NoError(t, err)
	st, err := w.Setup(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 3, st.Created+st.Adopted)
}
