package scenarios

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dsnscale/dsnscale/faults"
	"github.com/dsnscale/dsnscale/internal/strictyaml"
)

// valid is a correct scenario; the table below breaks it one way at a time.
const valid = `apiVersion: dsnscale/v1
kind: Scenario
metadata:
  name: test
  description: a test scenario
params:
  dsns:
    default: "10"
    description: fleet size
  wait: 30s
fleet:
  size: ${dsns}
controlPlane:
  mode: inprocess
steps:
  - name: seed
    until: converged
    timeout: ${wait}
    actions:
      - kind: seed-intent
        params: {tenants: "1"}
  - name: storm
    duration: 20s
    load: {rate: 10/s, mix: get-only}
    faults:
      - kind: dsn-restart
        delay: 5s
        target: {fraction: 50%}
        params: {window: 2s}
    measurements: [storm-recovery, api-latency]
measurements: [lost-dsns]
slos:
  - storm/storm_recovery_seconds <= 60s
  - value: lost_dsns
    op: "=="
    threshold: "0"
`

func TestParseValid(t *testing.T) {
	s, err := Parse("test.yaml", []byte(valid), nil, "")
	require.NoError(t, err)
	assert.Equal(t, 10, s.Fleet.Size)
	assert.Equal(t, DefaultDriver, s.Fleet.Driver)
	assert.Equal(t, 30*time.Second, s.Steps[0].Timeout)
	assert.Equal(t, "converged", s.Steps[0].Until.Condition)
	assert.Equal(t, 0.5, float64(s.Steps[1].Faults[0].Target.Fraction))
	assert.Equal(t, "2s", s.Steps[1].Faults[0].Params["window"])
	require.Len(t, s.SLOs, 2)
	assert.Equal(t, SLO{Name: "storm/storm_recovery_seconds <= 60s", Value: "storm_recovery_seconds", Step: "storm", Op: "<=", Threshold: "60s"}, s.SLOs[0])
	assert.Equal(t, "lost_dsns == 0", s.SLOs[1].Name)
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name    string
		old     string // replaced in valid
		new     string
		set     map[string]string
		wantErr string
	}{
		{"unknown top-level field", "kind: Scenario\n", "kind: Scenario\nfleets: {}\n",
			nil, `test.yaml:3: fleets: unknown field; did you mean "fleet"? (known: apiVersion, kind, metadata, params, seed, fleet, controlPlane, steps, measurements, slos)`},
		{"unknown nested field", "  mode: inprocess\n", "  mode: inprocess\n  replica: 3\n",
			nil, "test.yaml:15: controlPlane.replica: unknown field; did you mean \"replicas\"? (known: mode, url, natsURL, token, tokenFile, target, binary, heartbeatInterval, tsdb, search, inventory, backendProcesses, replicas)"},
		{"harness address not host:port", "  size: ${dsns}\n", "  size: ${dsns}\n  driver: process\n  harness: {listen: nowhere}\n",
			nil, `test.yaml:14: fleet.harness.listen: want host:port, got "nowhere"`},
		{"harness address for the inproc driver", "  size: ${dsns}\n", "  size: ${dsns}\n  harness: {advertise: 10.0.0.1:7000}\n",
			nil, `test.yaml:13: fleet.harness: the inproc driver runs its DSNs inside the harness: it has no units to reach it`},
		{"wrong apiVersion", "apiVersion: dsnscale/v1", "apiVersion: dsnscale/v2",
			nil, `test.yaml:1: apiVersion: must be "dsnscale/v1", got "dsnscale/v2"`},
		{"unknown step field", "    duration: 20s\n", "    duration: 20s\n    repeat: 3\n",
			nil, "test.yaml:24: steps[1].repeat: unknown field (known: name, description, duration, until, timeout, actions, load, faults, measurements)"},
		{"bad duration", "duration: 20s", "duration: 20 seconds",
			nil, `test.yaml:23: steps[1].duration: "20 seconds" is not a duration (such as 30s or 1m30s)`},
		{"bad duration via param", "", "",
			map[string]string{"wait": "soon"}, `test.yaml:18: steps[0].timeout: "soon" is not a duration (such as 30s or 1m30s)`},
		{"fleet size not an integer", "", "",
			map[string]string{"dsns": "ten"}, `test.yaml:12: fleet.size: "ten" is not an integer`},
		{"unknown param set", "", "",
			map[string]string{"dnss": "5"}, "test.yaml: --set dnss: not a parameter of this scenario (declared: dsns, wait)"},
		{"param declared but unused", "timeout: ${wait}", "timeout: 30s",
			nil, "test.yaml:10: params.wait: declared but never used"},
		{"undeclared param used", "size: ${dsns}", "size: ${count}",
			nil, "test.yaml:12: fleet.size: ${count}: no such parameter (declared: dsns, wait)"},
		{"arithmetic in a param", "size: ${dsns}", "size: ${dsns*2}",
			nil, "test.yaml:12: fleet.size: ${dsns*2}: only a parameter name may go inside ${} (no expressions)"},
		{"unknown fault kind", "kind: dsn-restart", "kind: dsn-reboot",
			nil, `test.yaml:26: steps[1].faults[0].kind: unknown fault kind "dsn-reboot"; did you mean "dsn-restart"? (known: ` + strings.Join(faults.Default.Names(), ", ") + ")"},
		{"toxicity outside 0-1", "kind: dsn-restart", "kind: net-latency",
			nil, `test.yaml:29: steps[1].faults[0].params.toxicity: "1.5" is outside 0-1`},
		{"bandwidth of 0", "kind: dsn-restart", "kind: net-bandwidth",
			nil, `test.yaml:29: steps[1].faults[0].params.rate: must be above 0 KB/s`},
		{"network fault on DSNs by id", "target: {fraction: 50%}", "target: {dsns: [dsn-1]}",
			nil, `test.yaml:28: steps[1].faults[0].target.dsns: net-partition acts on links: select units by labels, units, fraction or count`},
		{"overlapping partitions", "        params: {window: 2s}\n", "      - {kind: net-partition, delay: 6s, duration: 2s}\n",
			nil, `test.yaml:29: steps[1].faults[1]: overlaps faults[0] (net-partition): both are net-partition on the fleet path`},
		{"every without a duration", "delay: 5s", "delay: 5s\n        every: 2s",
			nil, `test.yaml:28: steps[1].faults[0].every: a repeated fault needs a duration shorter than every (2s), got 0s`},
		{"probability of 0", "delay: 5s", "delay: 5s\n        probability: 0%",
			nil, `test.yaml:28: steps[1].faults[0].probability: must be above 0%`},
		{"container fault on the inproc driver", "kind: dsn-restart", "kind: container-pause",
			nil, `test.yaml:26: steps[1].faults[0].kind: container-pause needs fleet.driver docker or swarm (the fleet runs on inproc)`},
		{"cp-pause in process", "kind: dsn-restart", "kind: cp-pause",
			nil, `test.yaml:26: steps[1].faults[0].kind: cp-pause needs the control plane in a process of its own (controlPlane.mode process)`},
		{"backend-kill without a backend process", "kind: dsn-restart", "kind: backend-kill",
			nil, `test.yaml:28: steps[1].faults[0].params.backend: the harness runs no tsdb process: set controlPlane.backendProcesses.tsdb`},
		{"backend process with no command", "  mode: inprocess\n", "  mode: inprocess\n  backendProcesses:\n    tsdb: {url: \"http://127.0.0.1:8428\"}\n",
			nil, `test.yaml:16: controlPlane.backendProcesses.tsdb.command: required: the program and its arguments`},
		{"backend process of an unknown backend", "  mode: inprocess\n", "  mode: inprocess\n  backendProcesses:\n    cache: {command: [redis-server], url: \"redis://127.0.0.1:6379\"}\n",
			nil, `test.yaml:16: controlPlane.backendProcesses.cache: unknown backend "cache" (known: tsdb, search, inventory)`},
		{"overlapping control-plane faults", "        params: {window: 2s}\n", "      - {kind: cp-kill, delay: 1s}\n",
			nil, `test.yaml:28: steps[1].faults[1]: overlaps faults[0] (cp-restart): both act on the control plane`},
		{"unknown fault param", "params: {window: 2s}", "params: {spread: 2s}",
			nil, "test.yaml:29: steps[1].faults[0].params.spread: unknown parameter (known: window, parallel)"},
		{"bad fault param", "params: {window: 2s}", "params: {window: 2}",
			nil, `test.yaml:29: steps[1].faults[0].params.window: "2" is not a duration (such as 30s or 1m30s)`},
		{"fault delay outside the step", "delay: 5s", "delay: 25s",
			nil, "test.yaml:27: steps[1].faults[0].delay: 25s is not within the step (20s)"},
		{"fraction over 100%", "fraction: 50%", "fraction: 150%",
			nil, `test.yaml:28: steps[1].faults[0].target.fraction: "150%" is not between 0% and 100%`},
		{"unknown measurement", "[storm-recovery, api-latency]", "[storm-recovery, api-latencies]",
			nil, `test.yaml:30: steps[1].measurements[1]: unknown measurement "api-latencies"; did you mean "api-latency"? (known: acked-writes, api-latency, availability, backend-impact, convergence, cp-drops, cp-health, failover-reown, lost-dsns, no-config, resources, storm-recovery, telemetry, watch-correctness)`},
		{"unknown action", "kind: seed-intent", "kind: seed",
			nil, `test.yaml:20: steps[0].actions[0].kind: unknown action "seed" (known: acked-writes, change-intent, seed-intent)`},
		{"unknown condition", "until: converged", "until: settled",
			nil, `test.yaml:17: steps[0].until: unknown condition "settled" (known: acked, connected, converged, serving)`},
		{"share condition without share", "until: converged", "until: acked",
			nil, "test.yaml:17: steps[0].until: acked takes a share of the fleet: write {acked: 99%}"},
		{"until without timeout", "    timeout: ${wait}\n", "    description: ${wait}\n",
			nil, "test.yaml:16: steps[0].timeout: until needs a timeout in (0, 24h0m0s], got 0s"},
		{"duration and until", "    until: converged\n", "    until: converged\n    duration: 5s\n",
			nil, "test.yaml:18: steps[0].duration: duration and until are exclusive (until takes a timeout)"},
		{"duplicate step names", "  - name: storm", "  - name: seed",
			nil, `test.yaml:22: steps[1].name: step "seed" is already defined`},
		{"SLO on a value nobody measures", "storm/storm_recovery_seconds <= 60s", "storm/storm_recovery_secs <= 60s",
			nil, `test.yaml:33: slos[0].value: no measurement produces "storm_recovery_secs" (did you mean "storm_recovery_seconds"?)`},
		{"SLO on a measurement the step does not take", "storm/storm_recovery_seconds <= 60s", "seed/storm_recovery_seconds <= 60s",
			nil, `test.yaml:33: slos[0].value: "storm_recovery_seconds" comes from measurement storm-recovery, which is not in the measurements of step "seed"`},
		{"SLO on an unknown step", "storm/storm_recovery_seconds <= 60s", "calm/storm_recovery_seconds <= 60s",
			nil, `test.yaml:33: slos[0].step: no step is called "calm"`},
		{"SLO with a bad threshold", "storm/storm_recovery_seconds <= 60s", "storm/storm_recovery_seconds <= soon",
			nil, `test.yaml:33: slos[0].threshold: "soon" is not a duration (such as 60s) or a number of seconds`},
		{"SLO with a bad operator", `op: "=="`, `op: "="`,
			nil, `test.yaml:35: slos[1].op: must be one of < <= > >= == !=, got "="`},
		{"SLO with a bad missing", `op: "=="`, "op: \"==\"\n    missing: ignore",
			nil, `test.yaml:36: slos[1].missing: must be "fail" or "pass", got "ignore"`},
		{"load with a bad rate", "rate: 10/s", "rate: 10",
			nil, `test.yaml:24: steps[1].load.rate: rate "10" has no unit: want N/s, N/m or N/h (for example 2000/s)`},
		{"load with an unknown mix", "mix: get-only", "mix: get-everything",
			nil, `test.yaml:24: steps[1].load.mix: unknown mix "get-everything": built-in mixes are crud, default, get-only, read-heavy, update-only, write-heavy`},
		{"cp fault on an external control plane", "  mode: inprocess\n", "  mode: external\n  url: http://127.0.0.1:9\n  natsURL: nats://127.0.0.1:9\n",
			nil, ""},
		{"bad backend URL", "  mode: inprocess\n", "  mode: inprocess\n  tsdb: ftp://127.0.0.1:9\n",
			nil, `test.yaml:15: controlPlane.tsdb: ingest: bad backend URL: tsdb URL: tsdb: bad storage URL: "ftp://127.0.0.1:9": scheme "ftp": want victoriametrics, victoriametrics+https, http, https, influxdb or influxdb+https`},
		{"wrong type for a list", "measurements: [lost-dsns]", "measurements: lost-dsns",
			nil, `test.yaml:31: measurements: want a list, got "lost-dsns"`},
		{"duplicate key", "  description: a test scenario\n", "  description: a test scenario\n  name: again\n",
			nil, "test.yaml:6: metadata.name: duplicate field"},
		{"yaml syntax", "kind: Scenario\n", "kind: Scenario\n  bad: indent\n",
			nil, "test.yaml:3: mapping values are not allowed in this context"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := valid
			if tt.old != "" {
				require.Contains(t, text, tt.old)
				text = strings.Replace(text, tt.old, tt.new, 1)
			}
			switch tt.name {
			case "toxicity outside 0-1":
				text = strings.Replace(text, "params: {window: 2s}", "params: {toxicity: \"1.5\"}", 1)
			case "bandwidth of 0":
				text = strings.Replace(text, "params: {window: 2s}", "params: {rate: \"0\"}", 1)
			case "backend-kill without a backend process":
				text = strings.Replace(text, "        target: {fraction: 50%}\n", "", 1)
				text = strings.Replace(text, "params: {window: 2s}", "params: {backend: tsdb}", 1)
			case "container fault on the inproc driver", "cp-pause in process":
				text = strings.Replace(text, "        target: {fraction: 50%}\n        params: {window: 2s}\n", "", 1)
			case "network fault on DSNs by id", "overlapping partitions":
				text = strings.Replace(text, "kind: dsn-restart", "kind: net-partition", 1)
				text = strings.Replace(text, "        params: {window: 2s}\n", "", 1)
			case "overlapping control-plane faults":
				text = strings.Replace(text, "kind: dsn-restart", "kind: cp-restart", 1)
				text = strings.Replace(text, "        target: {fraction: 50%}\n", "", 1)
				text = strings.Replace(text, "params: {window: 2s}", "params: {down: 5s}", 1)
			}
			if tt.name == "cp fault on an external control plane" {
				text = strings.Replace(text, "kind: dsn-restart", "kind: cp-kill", 1)
				text = strings.Replace(text, "        target: {fraction: 50%}\n        params: {window: 2s}\n", "", 1)
				tt.wantErr = `test.yaml:28: steps[1].faults[0].kind: cp-kill on a control plane the harness does not run needs the target's kill and start hooks (or controlPlane.mode inprocess or process)`
			}
			_, err := Parse("test.yaml", []byte(text), tt.set, "")
			require.Error(t, err)
			require.ErrorIs(t, err, ErrInvalid)
			assert.Contains(t, strings.Split(err.Error(), "\n"), tt.wantErr)
		})
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	text := strings.Replace(valid, "kind: dsn-restart", "kind: dsn-reboot", 1)
	text = strings.Replace(text, "[lost-dsns]", "[lost]", 1)
	_, err := Parse("test.yaml", []byte(text), nil, "")
	var es strictyaml.Errors
	require.True(t, errors.As(err, &es))
	require.Len(t, es, 3, "%s", err)
	assert.Equal(t, 26, es[0].Line)
	assert.Equal(t, "measurements[0]", es[1].Path)
	assert.Equal(t, "slos[1].value", es[2].Path, "the SLO on lost_dsns now names a measurement the run does not take")
}

func TestParams(t *testing.T) {
	s, err := Parse("test.yaml", []byte(valid), map[string]string{"dsns": "25", "wait": "1m30s"}, "")
	require.NoError(t, err)
	assert.Equal(t, 25, s.Fleet.Size)
	assert.Equal(t, 90*time.Second, s.Steps[0].Timeout)
	assert.Equal(t, map[string]string{"dsns": "25", "wait": "1m30s"}, s.Values)

	for _, tt := range []struct{ in, want string }{
		{"plain", "plain"},
		{"${dsns} DSNs", "25 DSNs"},
		{"$${dsns}", "${dsns}"},
		{"cost: $5", "cost: $5"},
		{"${dsns}${wait}", "251m30s"},
	} {
		got, err := substitute(tt.in, s.Values)
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.want, got, tt.in)
	}
	_, err = substitute("${dsns", s.Values)
	assert.EqualError(t, err, `unterminated ${ in "${dsns"`)

	_, err = ParseSet([]string{"dsns"})
	require.ErrorIs(t, err, ErrInvalid)
	set, err := ParseSet([]string{"dsns=5", "wait=a=b"})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"dsns": "5", "wait": "a=b"}, set)
}

func TestLoadFromFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "mine.yaml")
	require.NoError(t, os.WriteFile(p, []byte(valid), 0o644))
	s, err := Load(p, nil)
	require.NoError(t, err)
	assert.Equal(t, p, s.Source)
	assert.Equal(t, dir, s.Dir)

	_, err = Load(filepath.Join(dir, "missing.yaml"), nil)
	require.ErrorIs(t, err, ErrNotFound)
	_, err = Load("no-such-scenario", nil)
	require.ErrorIs(t, err, ErrNotFound)
	assert.Contains(t, err.Error(), "smoke")
}

func TestThresholds(t *testing.T) {
	for _, tt := range []struct {
		text, unit string
		want       float64
		err        string
	}{
		{"60s", "s", 60, ""},
		{"1m30s", "s", 90, ""},
		{"2.5", "s", 2.5, ""},
		{"500ms", "s", 0.5, ""},
		{"99.9%", "%", 99.9, ""},
		{"100", "%", 100, ""},
		{"101%", "%", 0, `"101%" is not between 0% and 100%`},
		{"512MiB", "bytes", 512 << 20, ""},
		{"1e9", "bytes", 0, `"1e9" is not a size (such as 512MiB or 1e9)`},
		{"0", "", 0, ""},
		{"five", "", 0, `"five" is not a number`},
	} {
		got, err := ParseThreshold(tt.text, tt.unit)
		if tt.err != "" {
			assert.EqualError(t, err, tt.err, tt.text)
			continue
		}
		require.NoError(t, err, tt.text)
		assert.InDelta(t, tt.want, got, 1e-9, tt.text)
	}
}
