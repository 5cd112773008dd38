package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/drill"
)

func drillFile(s *staging, t *testing.T, name, limits string) string {
	return s.file(t, name+".yaml", fmt.Sprintf(`apiVersion: dsnscale/v1
kind: Drill
metadata: {name: %s, description: a restart storm on a fifth of a small fleet}
scenario: smoke
set: {dsns: "20"}
%s`, name, limits))
}

// A drill is checked against its limits and its target before anything starts, asks for a
// confirmation, and keeps a journal beside its report.
func TestDrillGuardRails(t *testing.T) {
	s := startStaging(t)
	tf := s.targetFile(t, "staging", nil)
	ok := drillFile(s, t, "staging-basic", "limits: {maxDSNs: 5, maxShare: 25%, maxFaultDuration: 2m, allowKinds: [dsn-restart]}")

	for _, c := range []struct{ name, limits, want string }{
		{"no-limits", "", "limits: are required"},
		{"too-many", "limits: {maxDSNs: 2, maxShare: 25%, maxFaultDuration: 2m, allowKinds: [dsn-restart]}",
			"steps[restart].faults[0] dsn-restart: acts on 4 DSNs (fraction 20%), more than maxDSNs 2"},
		{"too-large-a-share", "limits: {maxDSNs: 5, maxShare: 10%, maxFaultDuration: 2m, allowKinds: [dsn-restart]}",
			"acts on 20.0% of the fleet (fraction 20%), more than maxShare 10.0%"},
		{"too-long", "limits: {maxDSNs: 5, maxShare: 25%, maxFaultDuration: 30s, allowKinds: [dsn-restart]}",
			"lasts up to 1m0s, longer than maxFaultDuration 30s"},
		{"kind-forbidden", "limits: {maxDSNs: 5, maxShare: 25%, maxFaultDuration: 2m, allowKinds: [dsn-crash]}",
			"kind dsn-restart is not allowed (allowKinds: dsn-crash)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runBinary(t, time.Minute, "drill", drillFile(s, t, c.name, c.limits), "--target", tf, "--yes")
			require.Equal(t, exitUsage, code, "%s\n%s", stdout, stderr)
			assert.Contains(t, stderr, c.want)
			assert.NotContains(t, stdout, "starting", "nothing started")
		})
	}

	code, stdout, stderr := runBinary(t, time.Minute, "drill", ok, "--target", tf)
	require.Equal(t, exitUsage, code, "%s\n%s", stdout, stderr)
	assert.Contains(t, stderr, "not on a terminal: give --yes")
	assert.Contains(t, stdout, "to stop: Ctrl-C", "the plan is shown first")

	down := s.targetFile(t, "down", map[string]string{"apiURL": "https://" + closedAddr(t)})
	code, _, stderr = runBinary(t, time.Minute, "drill", ok, "--target", down, "--yes")
	require.Equal(t, exitBroken, code, stderr)
	assert.Contains(t, stderr, "target down: api: ")

	out := filepath.Join(t.TempDir(), "run")
	code, stdout, stderr = runBinary(t, 5*time.Minute, "drill", ok, "--target", tf, "--yes", "--out", out)
	require.Equal(t, exitOK, code, "%s\n%s", stdout, stderr)
	data, err := os.ReadFile(filepath.Join(out, drill.JournalFile))
	require.NoError(t, err)
	var j struct { // what a reader of drill.json finds
		Drill, Target, By string
		Entries           []drill.Entry
	}
	require.NoError(t, json.Unmarshal(data, &j))
	assert.Equal(t, "staging-basic", j.Drill)
	assert.Equal(t, "staging", j.Target)
	assert.NotEmpty(t, j.By)
	var whats []string
	for i, e := range j.Entries {
		whats = append(whats, e.What)
		if i > 0 {
			assert.False(t, e.At.Before(j.Entries[i-1].At))
		}
	}
	assert.Equal(t, []string{drill.EntryPlanned, drill.EntryPreflight, drill.EntryConfirmed, drill.EntryStarted, drill.EntryEnded}, whats)
	assert.Equal(t, "pass", j.Entries[len(j.Entries)-1].Detail)
	assert.FileExists(t, filepath.Join(out, "run.json"))
}
