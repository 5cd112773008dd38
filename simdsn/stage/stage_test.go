package stage

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDefaultRegistry(t *testing.T) {
	r := Default()
	assert.Equal(t, []string{DefaultSet}, r.SetNames())
	for _, m := range []string{"crash", "restart", "hang", "slow-apply", "drop-acks", "ack-wrong-revision",
		"corrupt-telemetry", "clock-skew", "disk-degradation", "temperature-rise", "flapping", "flaky-boot", "disk-loss"} {
		_, ok := r.Misbehaviour(m)
		assert.True(t, ok, m)
	}
	b, err := r.Compile(DefaultSet, nil)
	require.NoError(t, err)
	boot := b.Stages[b.Initial]
	assert.Equal(t, "boot", boot.Name)
	assert.Equal(t, Booting, boot.State)
	load, ok := b.Index("load")
	require.True(t, ok)
	assert.Equal(t, load, boot.Next)
	admit, _ := b.Index("admit")
	wait, _ := b.Index("admit-wait")
	assert.Equal(t, wait, b.Stages[admit].On[RetryOutcome])
	assert.Equal(t, -1, b.Stages[admit].On[Resync])
}

func TestCompileOverlayWithParams(t *testing.T) {
	r := Default()
	b, err := r.Compile(DefaultSet, []Overlay{{Name: "slow-apply", Params: map[string]string{"delay": "9s"}}})
	require.NoError(t, err)
	assert.Equal(t, Delay{Base: 9 * time.Second}, b.Apply.Delay)
	again, err := r.Compile(DefaultSet, []Overlay{{Name: "slow-apply", Params: map[string]string{"delay": "9s"}}})
	require.NoError(t, err)
	assert.Same(t, b, again, "compiled behaviours are shared")

	f, err := r.Compile(DefaultSet, []Overlay{{Name: "flapping"}, {Name: "drop-acks", Params: map[string]string{"probability": "0.5"}}})
	require.NoError(t, err)
	serve, _ := f.Index("serve")
	down, _ := f.Index("flap-down")
	assert.Equal(t, down, f.Stages[serve].Next)
	assert.Equal(t, 20*time.Second, f.Stages[serve].Delay.Base)
	assert.Equal(t, 0.5, f.Apply.DropAckProbability)

	_, err = r.Compile(DefaultSet, []Overlay{{Name: "drop-acks", Params: map[string]string{"probability": "1.5"}}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "apply.dropAckProbability: probability 1.5 is outside [0,1]")
	assert.True(t, errors.Is(err, ErrInvalid))

	_, err = r.Compile(DefaultSet, []Overlay{{Name: "slow-apply", Params: map[string]string{"delay": "soon"}}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `apply.delay: "soon" is not a duration`)

	_, err = r.Compile(DefaultSet, []Overlay{{Name: "slow-apply", Params: map[string]string{"colour": "red"}}})
	assert.ErrorContains(t, err, `unknown parameter "colour"`)

	_, err = r.Compile(DefaultSet, []Overlay{{Name: "nope"}})
	assert.ErrorIs(t, err, ErrUnknown)
	_, err = r.Compile("nope", nil)
	assert.ErrorIs(t, err, ErrUnknown)
}

const validSet = `apiVersion: dsnscale/v1
kind: StageSet
name: tiny
stages:
  off: {state: off}
  boot:
    state: booting
    delay: 1s
    next: serve
  serve:
    state: serving
    action: serve
`

func TestStageSetErrors(t *testing.T) {
	tests := []struct {
		name, replace, with, want string
	}{
		{"unknown stage", "next: serve", "next: serv", `tiny.yaml:9: stages.boot.next: unknown stage "serv"; did you mean "serve"? (known: boot, off, serve)`},
		{"unknown field", "delay: 1s", "delya: 1s", `tiny.yaml:8: stages.boot.delya: unknown field; did you mean "delay"?`},
		{"bad state", "state: booting", "state: sleeping", `stages.boot.state: unknown state "sleeping"`},
		{"bad action", "action: serve", "action: dance", `stages.serve.action: unknown action "dance"`},
		{"negative delay", "delay: 1s", "delay: -1s", `stages.boot.delay: base and jitter must not be negative`},
		{"probability", "next: serve", "next: serve\n    transitions: [{to: off, probability: 1.2}]", `stages.boot.transitions[0].probability: probability 1.2 is outside [0,1]`},
		{"probability sum", "next: serve", "next: serve\n    transitions: [{to: off, probability: 0.6}, {to: serve, probability: 0.6}]", `probabilities add up to 1.2`},
		{"unmapped outcome", "action: serve", "action: hello\n    timeout: 1s", `action hello can end with "up-to-date" but on does not say where to go`},
		{"foreign outcome", "action: serve", "action: serve\n    on: {snapshot: boot}", `action serve has no outcome "snapshot"`},
		{"missing timeout", "action: serve", "action: connect\n    on: {ok: boot, error: boot}", `action connect needs a positive timeout`},
		{"wrong version", "dsnscale/v1", "dsnscale/v2", `tiny.yaml:1: apiVersion: must be "dsnscale/v1", got "dsnscale/v2"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := replaceOnce(t, validSet, tt.replace, tt.with)
			err := NewRegistry().AddFile("tiny.yaml", []byte(src))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.True(t, errors.Is(err, ErrInvalid))
		})
	}
	require.NoError(t, NewRegistry().AddFile("tiny.yaml", []byte(validSet)))
}

func TestDuplicatesAndMisbehaviourCheck(t *testing.T) {
	r := Default()
	err := r.AddFile("again.yaml", []byte(replaceOnce(t, validSet, "name: tiny", "name: default")))
	assert.ErrorIs(t, err, ErrDuplicate)

	require.NoError(t, r.AddFile("tiny.yaml", []byte(validSet)))
	// The embedded misbehaviours name stages that the tiny set lacks.
	err = r.Check()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `misbehaviour "crash" over stage set "tiny"`)
	assert.Contains(t, err.Error(), `unknown stage "crashed"`)
}

func TestFromSourcesRoundTrip(t *testing.T) {
	r := Default()
	r2, err := FromSources(r.Sources())
	require.NoError(t, err)
	assert.Equal(t, r.SetNames(), r2.SetNames())
	assert.Equal(t, r.MisbehaviourNames(), r2.MisbehaviourNames())
}

func TestDelayAndBackoff(t *testing.T) {
	d := Delay{Base: 2 * time.Second, Jitter: time.Second}
	assert.Equal(t, time.Second, d.Sample(0))
	assert.Equal(t, 2*time.Second, d.Sample(0.5))
	assert.Equal(t, 0*time.Second, Delay{Base: time.Second, Jitter: 3 * time.Second}.Sample(0))

	b := Backoff{Initial: 250 * time.Millisecond, Max: 30 * time.Second, Factor: 2, Jitter: 0.5}
	assert.Equal(t, 250*time.Millisecond, b.Wait(0, 0, 0))
	assert.Equal(t, 125*time.Millisecond, b.Wait(0, 1, 0))
	assert.Equal(t, 2*time.Second, b.Wait(3, 0, 0))
	assert.Equal(t, 30*time.Second, b.Wait(20, 0, 0))
	assert.Equal(t, 15*time.Second, b.Wait(20, 1, 0))
	// A retry-after hint is a floor.
	for _, u := range []float64{0, 0.3, 0.99} {
		w := b.Wait(0, u, 7*time.Second)
		assert.GreaterOrEqual(t, w, 7*time.Second)
		assert.LessOrEqual(t, w, 7*time.Second+7*time.Second/10)
	}
}

func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	for i := 0; i+len(old) <= len(s); i++ {
		if s[i:i+len(old)] == old {
			return s[:i] + new + s[i+len(old):]
		}
	}
	t.Fatalf("%q not in source", old)
	return ""
}
