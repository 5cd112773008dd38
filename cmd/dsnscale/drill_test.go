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

	// The library drill, by its name.
	out := filepath.Join(t.TempDir(), "run")
	code, stdout, stderr = runBinary(t, 5*time.Minute, "drill", "staging-basic", "--target", tf, "--yes", "--out", out)
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
	assert.Equal(t, []string{drill.EntryPlanned, drill.EntryPreflight, drill.EntryConfirmed, drill.EntryBaseline,
		drill.EntryStarted, drill.EntryEnded, drill.EntryRecovered, drill.EntryRestored}, whats)
	assert.Equal(t, "pass", j.Entries[5].Detail)
	assert.Contains(t, j.Entries[6].Detail, "1 faults injected, every one recovered")
	assert.Contains(t, stdout, "restore check: passed")
	assert.FileExists(t, filepath.Join(out, "run.json"))
}

// A drill whose abort condition trips stops at once: its faults are recovered, the fleet
// stopped, the target restored, and it exits 1 with the reason in its journal and its report.
func TestDrillAborts(t *testing.T) {
	s := startStaging(t)
	tf := s.targetFile(t, "staging", nil)
	s.file(t, "crash.yaml", `apiVersion: dsnscale/v1
kind: Scenario
metadata: {name: crash, description: crash a fifth of the fleet for longer than the drill allows it to be down}
seed: 1
fleet: {size: 20, driver: inproc}
controlPlane: {mode: inprocess}
steps:
  - name: boot
    until: {connected: 100%}
    timeout: 60s
  - name: crash
    duration: 90s
    faults:
      - kind: dsn-crash
        target: {count: 4}
        delay: 1s
        duration: 80s
measurements: [lost-dsns]
slos:
  - lost_dsns == 0`)
	df := s.file(t, "abort.yaml", `apiVersion: dsnscale/v1
kind: Drill
metadata: {name: abort, description: crashes a fifth of the fleet and must abort}
scenario: crash.yaml
limits: {maxDSNs: 4, maxShare: 20%, maxFaultDuration: 2m, allowKinds: [dsn-crash]}
abortWhen:
  - {figure: serving, below: 90%, for: 2s}
  - {figure: apiErrorRate, above: 50%, for: 30s}`)

	out := filepath.Join(t.TempDir(), "run")
	start := time.Now()
	code, stdout, stderr := runBinary(t, 5*time.Minute, "drill", df, "--target", tf, "--yes", "--out", out)
	require.Equal(t, exitFailed, code, "%s\n%s", stdout, stderr)
	assert.Less(t, time.Since(start), 80*time.Second, "the drill ended before its fault would have")
	assert.Contains(t, stdout, "ABORTED: drill aborted: abortWhen[0] serving < 90% for 2s: serving was 80%")
	assert.Contains(t, stdout, "restore check: passed")

	data, err := os.ReadFile(filepath.Join(out, drill.JournalFile))
	require.NoError(t, err)
	var j struct{ Entries []drill.Entry }
	require.NoError(t, json.Unmarshal(data, &j))
	byWhat := map[string]drill.Entry{}
	for _, e := range j.Entries {
		byWhat[e.What] = e
	}
	assert.Contains(t, byWhat[drill.EntryBreach].Detail, "abortWhen[0] serving < 90% for 2s: 80.0%")
	assert.Contains(t, byWhat[drill.EntryAborted].Detail, "abortWhen[0] serving < 90% for 2s")
	assert.False(t, byWhat[drill.EntryAborted].At.Before(byWhat[drill.EntryBreach].At.Add(2*time.Second)),
		"aborted once the condition held for its time")
	assert.Contains(t, byWhat[drill.EntryEnded].Detail, "aborted: run aborted: drill aborted: abortWhen[0]")
	assert.Contains(t, byWhat[drill.EntryRecovered].Detail, "every one recovered")
	assert.Contains(t, byWhat[drill.EntryRestored].Detail, "back to its baseline")

	run, err := os.ReadFile(filepath.Join(out, "run.json"))
	require.NoError(t, err)
	var r struct {
		Result, Error string
		Faults        []struct {
			Kind string
			End  time.Time
		}
	}
	require.NoError(t, json.Unmarshal(run, &r))
	assert.Equal(t, "aborted", r.Result)
	assert.Contains(t, r.Error, "abortWhen[0] serving < 90% for 2s")
	require.Len(t, r.Faults, 1)
	assert.False(t, r.Faults[0].End.IsZero(), "the crash was recovered")
}

// A control-plane fault against a target goes through the hooks it declares: a pause beyond
// the drill's error budget aborts it, the resume hook recovers it, and the target is restored.
func TestDrillHooks(t *testing.T) {
	s := startStaging(t)
	pid := s.p.PID()
	s.file(t, "pause.sh", fmt.Sprintf("#!/bin/sh\nkill -STOP %d", pid))
	s.file(t, "resume.sh", fmt.Sprintf("#!/bin/sh\nkill -CONT %d", pid))
	require.NoError(t, os.Chmod(filepath.Join(s.dir, "pause.sh"), 0o755))
	require.NoError(t, os.Chmod(filepath.Join(s.dir, "resume.sh"), 0o755))
	plain := s.targetFile(t, "staging", nil)
	hooked := s.file(t, "hooked.yaml", mustRead(t, plain)+`hooks:
  pause: {command: [./pause.sh], timeout: 10s}
  resume: {command: [./resume.sh], timeout: 10s}`)
	s.file(t, "pause.yaml", `apiVersion: dsnscale/v1
kind: Scenario
metadata: {name: pause, description: freeze the control plane for longer than the drill's error budget}
seed: 1
fleet: {size: 10, driver: inproc}
controlPlane: {mode: process}
steps:
  - name: boot
    until: {connected: 100%}
    timeout: 60s
  - name: pause
    duration: 90s
    faults:
      - kind: cp-pause
        delay: 1s
        duration: 80s`)
	df := s.file(t, "pause-drill.yaml", `apiVersion: dsnscale/v1
kind: Drill
metadata: {name: pause, description: freezes the control plane and must abort}
scenario: pause.yaml
limits: {maxDSNs: 10, maxShare: 100%, maxFaultDuration: 2m, allowKinds: [cp-pause]}
abortWhen:
  - {figure: apiErrorRate, above: 50%, for: 3s}`)

	code, stdout, stderr := runBinary(t, time.Minute, "drill", df, "--target", plain, "--yes")
	require.Equal(t, exitUsage, code, "%s\n%s", stdout, stderr)
	assert.Contains(t, stderr, "steps[pause].faults[0]: cp-pause on a control plane the harness does not run needs the target's pause and resume hooks")

	out := filepath.Join(t.TempDir(), "run")
	start := time.Now()
	code, stdout, stderr = runBinary(t, 5*time.Minute, "drill", df, "--target", hooked, "--yes", "--out", out)
	require.Equal(t, exitFailed, code, "%s\n%s", stdout, stderr)
	assert.Less(t, time.Since(start), 80*time.Second, "the drill ended before its fault would have")
	assert.Contains(t, stdout, "hook pause: "+filepath.Join(s.dir, "pause.sh")+" (timeout 10s)", "the plan names the hooks")
	assert.Contains(t, stdout, "ABORTED: drill aborted: abortWhen[0] apiErrorRate > 50% for 3s")
	assert.Contains(t, stdout, "restore check: passed")
	data, err := os.ReadFile(filepath.Join(out, drill.JournalFile))
	require.NoError(t, err)
	var j struct{ Entries []drill.Entry }
	require.NoError(t, json.Unmarshal(data, &j))
	var whats []string
	for _, e := range j.Entries {
		whats = append(whats, e.What)
	}
	assert.Contains(t, whats, drill.EntryAborted)
	assert.Contains(t, whats, drill.EntryRestored)
	// A hook that fails breaks the run, and says how.
	s.file(t, "broken.sh", "#!/bin/sh\necho no such replica cp-9 >&2\nexit 1")
	require.NoError(t, os.Chmod(filepath.Join(s.dir, "broken.sh"), 0o755))
	broken := s.file(t, "broken.yaml", mustRead(t, plain)+`hooks:
  pause: {command: [./broken.sh], timeout: 10s}
  resume: {command: [./resume.sh], timeout: 10s}`)
	s.file(t, "short.yaml", `apiVersion: dsnscale/v1
kind: Scenario
metadata: {name: short, description: freeze the control plane for a few seconds}
seed: 1
fleet: {size: 10, driver: inproc}
controlPlane: {mode: process}
steps:
  - name: boot
    until: {connected: 100%}
    timeout: 60s
  - name: pause
    duration: 5s
    faults:
      - kind: cp-pause
        delay: 1s`)
	short := s.file(t, "short-drill.yaml", `apiVersion: dsnscale/v1
kind: Drill
metadata: {name: pause, description: its pause hook fails}
scenario: short.yaml
limits: {maxDSNs: 10, maxShare: 100%, maxFaultDuration: 2m, allowKinds: [cp-pause]}`)
	out = filepath.Join(t.TempDir(), "run")
	code, stdout, stderr = runBinary(t, 5*time.Minute, "drill", short, "--target", broken, "--yes", "--out", out)
	require.Equal(t, exitBroken, code, "%s\n%s", stdout, stderr)
	assert.Contains(t, stdout, "drill pause: ABORTED: ")
	assert.Contains(t, stdout, "broken.sh): exit status 1: no such replica cp-9")
	assert.Contains(t, mustRead(t, filepath.Join(out, drill.JournalFile)), "no such replica cp-9")

	// The resume hook ran: the control plane answers again.
	code, stdout, stderr = runBinary(t, time.Minute, "target", "check", plain)
	require.Equal(t, exitOK, code, "%s\n%s", stdout, stderr)
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}
