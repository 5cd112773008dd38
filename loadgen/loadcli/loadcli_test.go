package loadcli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/controlplane"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(t.Context(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestBadInputExits2(t *testing.T) {
	dir := t.TempDir()
	badMix := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(badMix, []byte("apiVersion: dsnscale/v1\nkind: LoadMix\npopulation: {tenants: 1}\noperations:\n  - {op: get, kind: Network, weight: 1, extra: 1}\n"), 0o600))
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"rate without unit", []string{"--target", "http://127.0.0.1:1", "--rate", "2000", "--duration", "1s"}, `invalid value "2000" for flag -rate: invalid executor config: rate "2000" has no unit: want N/s, N/m or N/h`},
		{"rate bad unit", []string{"--rate", "5/d"}, `unit "d" is not s, m or h`},
		{"negative rate", []string{"--rate", "-5/s"}, `rate "-5/s" is negative`},
		{"missing duration", []string{"--target", "http://127.0.0.1:1", "--rate", "10/s"}, "--duration: required: a positive duration such as 30s"},
		{"missing rate", []string{"--target", "http://127.0.0.1:1", "--duration", "1s"}, "--rate: required: a positive rate such as 100/s"},
		{"vus on arrival rate", []string{"--rate", "1/s", "--duration", "1s", "--vus", "3"}, "--vus: not used by constant-arrival-rate"},
		{"unknown executor", []string{"--executor", "warp"}, `unknown executor type: type: "warp"`},
		{"bad stages", []string{"--executor", "ramping-arrival-rate", "--stages", "10s"}, `--stages: stage 1 "10s": want DURATION:TARGET`},
		{"bad stage rate", []string{"--executor", "ramping-arrival-rate", "--stages", "10s:5"}, `--stages: stage 1: invalid executor config: rate "5" has no unit`},
		{"bad stage vus", []string{"--executor", "ramping-vus", "--stages", "10s:x"}, `--stages: stage 1: "x" is not a number of VUs`},
		{"stage duration", []string{"--executor", "ramping-vus", "--stages", "0s:3"}, `--stages[0].duration: must be positive, got 0s`},
		{"unknown mix", []string{"--rate", "1/s", "--duration", "1s", "--mix", "nosuch"}, `--mix: unknown mix "nosuch"`},
		{"bad mix file", []string{"--rate", "1/s", "--duration", "1s", "--mix", badMix}, badMix + `:5: operations[0].extra: unknown field (known: op, kind, weight, size, index, query)`},
		{"bad setup", []string{"--rate", "1/s", "--duration", "1s", "--setup", "maybe", "--target", "http://x"}, `--setup: must be "create" or "skip", got "maybe"`},
		{"no target", []string{"--rate", "1/s", "--duration", "1s"}, "--target: required"},
		{"bad target", []string{"--rate", "1/s", "--duration", "1s", "--target", "ftp://x"}, `--target "ftp://x": scheme must be http or https`},
		{"bad seed", []string{"--seed", "-1"}, `invalid value "-1" for flag -seed: must be a non-negative integer`},
		{"extra argument", []string{"--rate", "1/s", "now"}, `unexpected argument "now"`},
		{"unknown flag", []string{"--rats", "1/s"}, "flag provided but not defined: -rats"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runCLI(t, tt.args...)
			assert.Equal(t, ExitUsage, code)
			assert.Empty(t, out)
			assert.Contains(t, errs, tt.want)
		})
	}
}

func TestHelpExits0(t *testing.T) {
	code, _, errs := runCLI(t, "--help")
	assert.Equal(t, ExitOK, code)
	assert.Contains(t, errs, "usage: dsnscale load")
	assert.Contains(t, errs, "read-heavy")
}

func TestPlanPrintsWithoutATarget(t *testing.T) {
	code, out, _ := runCLI(t, "--rate", "120/m", "--duration", "30s", "--mix", "crud", "--plan")
	require.Equal(t, ExitOK, code)
	assert.Contains(t, out, "60 iterations, peak 2/s")
	assert.Contains(t, out, "delete/Tenant")

	code, out, _ = runCLI(t, "--executor", "ramping-vus", "--stages", "10s:5,10s:0", "--plan", "--json")
	require.Equal(t, ExitOK, code)
	var rep Report
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	assert.Equal(t, 5, rep.Plan.MaxVUs)
}

func TestUnreachableTargetExits3(t *testing.T) {
	code, _, errs := runCLI(t, "--target", "http://127.0.0.1:1", "--rate", "1/s", "--duration", "1s", "--mix", "get-only")
	assert.Equal(t, ExitFailure, code)
	assert.Contains(t, errs, "setup: northbound: setup failed: Tenant/lg-t")
	assert.Contains(t, errs, "connection refused")
}

func TestLoadAgainstTheControlPlane(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cp, err := controlplane.Start(ctx, controlplane.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", BcryptCost: 4})
	require.NoError(t, err)
	defer cp.Stop()
	require.NoError(t, cp.WaitReady(ctx))
	// The credential flow of a user of cp serve: its CA file and the admin password it wrote.
	creds := []string{"--ca", cp.CAFile(), "--user", "admin", "--password-file", cp.AdminPasswordFile()}

	code, _, errs := runCLI(t, "--target", cp.APIURL(), "--rate", "10/s", "--duration", "1s", "--mix", "get-only")
	require.Equal(t, ExitFailure, code, "without credentials the setup is refused")
	assert.Contains(t, errs, "setup")

	code, out, errs := runCLI(t, append(creds, "--target", cp.APIURL(), "--rate", "100/s", "--duration", "1s", "--mix", "read-heavy",
		"--teardown", "--json", "--seed", "5")...)
	require.Equal(t, ExitOK, code, errs)
	var rep Report
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	require.NotNil(t, rep.Summary)
	assert.Equal(t, int64(100), rep.Summary.Completed)
	assert.Zero(t, rep.Summary.Errors, rep.Summary.ErrorsByClass)
	assert.Equal(t, 10+200+100, rep.Setup.Created)
	require.NotNil(t, rep.Teardown)
	assert.Equal(t, 310, rep.Teardown.Deleted)
	assert.Positive(t, rep.Summary.Latency.P50)

	code, out, errs = runCLI(t, append(creds, "--target", cp.APIURL(), "--executor", "constant-vus", "--vus", "2", "--duration", "500ms", "--mix", "get-only")...)
	require.Equal(t, ExitOK, code, errs)
	assert.Contains(t, out, "executor     constant-vus (closed model)")
	assert.Contains(t, out, "get/Network")
	assert.Contains(t, errs, "setup: 510 created")

	// Cut short, a run still prints what it did, and fails.
	short, cancelRun := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancelRun()
	var sout, serr bytes.Buffer
	code = Run(short, append(creds, "--target", cp.APIURL(), "--rate", "50/s", "--duration", "1m", "--mix", "get-only", "--setup", "skip"), &sout, &serr)
	assert.Equal(t, ExitFailure, code)
	assert.Contains(t, serr.String(), "run: context deadline exceeded")
	assert.Contains(t, sout.String(), "iterations   3000 planned")
}

func FuzzParseStages(f *testing.F) {
	for _, s := range []string{"30s:500/s,1m:0/s", "10s:5", "1s:", ":1/s", "1s:1/s,,", "5m:10/m"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, vus bool) {
		st, err := parseStages(s, vus)
		if err != nil {
			require.Contains(t, err.Error(), "--stages: stage ")
			return
		}
		require.NotEmpty(t, st)
	})
}
