// Package stage describes how a simulated DSN behaves, as data: a StageSet file lists the stages
// of the DSN's life (the state each reports, the action it takes, delays with jitter, the
// outcomes that lead to other stages, probabilistic transitions), and a Misbehaviour file lays
// changes over a StageSet (a slower apply, dropped acks, a forced crash) for as long as it is
// active. A new misbehaviour is a new file, not new code.
//
// The actions are the fixed vocabulary the DSN runtime implements (connect, hello,
// fetch-snapshot, apply, serve, backoff, ...); everything else (which action follows which, how
// long each takes, how often things fail) lives in the files. A default set is embedded.
package stage

import (
	"errors"
	"fmt"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/dsnscale/dsnscale/internal/strictyaml"
)

// APIVersion is the apiVersion of stage files.
const APIVersion = "dsnscale/v1"

// File kinds.
const (
	KindStageSet     = "StageSet"
	KindMisbehaviour = "Misbehaviour"
)

// Sentinel errors.
var (
	// ErrInvalid wraps every problem found in a stage file or a compiled behaviour.
	ErrInvalid = errors.New("invalid stage definition")
	// ErrUnknown is returned for a stage set or misbehaviour name the registry does not hold.
	ErrUnknown = errors.New("unknown stage set or misbehaviour")
	// ErrDuplicate is returned when a name is registered twice.
	ErrDuplicate = errors.New("duplicate name")
)

// State is what a DSN reports about itself.
type State uint8

// DSN states.
const (
	Off State = iota
	Booting
	Admitting
	Syncing
	Serving
	Restarting
	Crashed
	Hung
	numStates
)

var stateNames = [numStates]string{"off", "booting", "admitting", "syncing", "serving", "restarting", "crashed", "hung"}

// String returns the state's name as files and records spell it.
func (s State) String() string {
	if s < numStates {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", s)
}

// ParseState returns the state named s.
func ParseState(s string) (State, bool) {
	for i, n := range stateNames {
		if n == s {
			return State(i), true
		}
	}
	return 0, false
}

// StateNames lists the state names in order.
func StateNames() []string { return append([]string(nil), stateNames[:]...) }

// Down reports whether the DSN's process is not running in this state (its memory is lost and
// its connection closed when it enters it).
func (s State) Down() bool { return s == Off || s == Restarting || s == Crashed }

// DataPlane reports whether the DSN forwards traffic in this state (with whatever config it has).
func (s State) DataPlane() bool { return s == Admitting || s == Syncing || s == Serving }

// Action is what a stage does when it is entered.
type Action uint8

// Actions the runtime implements.
const (
	ActNone Action = iota
	ActLoadCache
	ActConnect
	ActHello
	ActFetchSnapshot
	ActApply
	ActServe
	ActBackoff
	ActDisconnect
	ActWipeCache
	numActions
)

var actionNames = [numActions]string{"", "load-cache", "connect", "hello", "fetch-snapshot", "apply", "serve", "backoff", "disconnect", "wipe-cache"}

// String returns the action's name.
func (a Action) String() string {
	if a == ActNone {
		return "none"
	}
	if a < numActions {
		return actionNames[a]
	}
	return fmt.Sprintf("action(%d)", a)
}

// Outcome is how an action ended, or a signal from outside that a stage may react to.
type Outcome uint8

// Outcomes and signals.
const (
	OK Outcome = iota
	Error
	UpToDate
	DeltaOutcome
	SnapshotOutcome
	RetryOutcome
	RejectedOutcome
	// Signals: they can arrive in any stage; a stage that does not name one ignores it.
	Disconnected
	Resync
	Gap
	Quarantine
	Rehello
	NumOutcomes
)

var outcomeNames = [NumOutcomes]string{"ok", "error", "up-to-date", "delta", "snapshot", "retry", "rejected", "disconnected", "resync", "gap", "quarantine", "rehello"}

// String returns the outcome's name.
func (o Outcome) String() string {
	if o < NumOutcomes {
		return outcomeNames[o]
	}
	return fmt.Sprintf("outcome(%d)", o)
}

// Signal reports whether o is a signal rather than an action's outcome.
func (o Outcome) Signal() bool { return o >= Disconnected && o < NumOutcomes }

// actionOutcomes lists the outcomes each action can end with; a stage must map every one.
var actionOutcomes = [numActions][]Outcome{
	ActNone:          nil,
	ActLoadCache:     {OK},
	ActConnect:       {OK, Error},
	ActHello:         {UpToDate, DeltaOutcome, SnapshotOutcome, RetryOutcome, RejectedOutcome, Error},
	ActFetchSnapshot: {OK, Error},
	ActApply:         {OK, Error},
	ActServe:         nil,
	ActBackoff:       {OK},
	ActDisconnect:    {OK},
	ActWipeCache:     {OK},
}

// Delay is a duration with uniform jitter: Base plus or minus Jitter, never below zero. In files
// it is either a duration ("2s") or a mapping {base: 2s, jitter: 1s}.
type Delay struct {
	Base   time.Duration `yaml:"base" json:"base"`
	Jitter time.Duration `yaml:"jitter" json:"jitter"`
}

// Sample returns the delay for u drawn uniformly from [0,1).
func (d Delay) Sample(u float64) time.Duration {
	v := d.Base + time.Duration((2*u-1)*float64(d.Jitter))
	return max(v, 0)
}

// UnmarshalYAMLNode accepts the scalar shorthand.
func (d *Delay) UnmarshalYAMLNode(dec *strictyaml.Decoder, n *yaml.Node, path string) {
	if n.Kind == yaml.ScalarNode {
		var base time.Duration
		dec.Decode(n, path, &base)
		*d = Delay{Base: base}
		return
	}
	type plain Delay
	var p plain
	dec.Decode(n, path, &p)
	*d = Delay(p)
}

// Backoff is jittered exponential back-off: the n-th wait is min(Max, Initial*Factor^n), reduced
// by a random fraction of up to Jitter.
type Backoff struct {
	Initial time.Duration `yaml:"initial" json:"initial"`
	Max     time.Duration `yaml:"max" json:"max"`
	Factor  float64       `yaml:"factor" json:"factor"`
	Jitter  float64       `yaml:"jitter" json:"jitter"`
}

// Wait returns the wait before attempt n (0-based) for u drawn uniformly from [0,1). A
// retry-after hint from the control plane is a floor: the wait is never shorter than it, and
// up to 10% more keeps DSNs told the same hint apart (docs/PROTOCOL.md, rule 3).
func (b Backoff) Wait(attempt int, u float64, hint time.Duration) time.Duration {
	if hint > 0 {
		return hint + time.Duration(u*0.1*float64(hint))
	}
	d := float64(b.Initial)
	for i := 0; i < attempt && d < float64(b.Max); i++ {
		d *= b.Factor
	}
	d = min(d, float64(b.Max))
	return time.Duration(d * (1 - b.Jitter*u))
}

// Transition moves to another stage with a probability, when a stage's delay ends.
type Transition struct {
	To          string  `yaml:"to"`
	Probability float64 `yaml:"probability"`
}

// Stage is one step of a DSN's life, as written in a StageSet file.
//
// On entry the stage's action starts; its outcome picks the next stage through On. Independently,
// if Delay is set, a timer runs: when it ends (and the DSN is still in the stage) one of
// Transitions is taken with its probability, otherwise Next (if set). A stage with neither an
// action outcome nor a Next stays until something from outside moves the DSN.
type Stage struct {
	State       string            `yaml:"state"`
	Action      string            `yaml:"action"`
	Delay       Delay             `yaml:"delay"`
	Timeout     time.Duration     `yaml:"timeout"`
	Backoff     *Backoff          `yaml:"backoff"`
	Next        string            `yaml:"next"`
	Transitions []Transition      `yaml:"transitions"`
	On          map[string]string `yaml:"on"`
}

// ApplyParams shape how a DSN applies config.
type ApplyParams struct {
	Delay                    Delay   `yaml:"delay"`
	ErrorProbability         float64 `yaml:"errorProbability"`
	DropAckProbability       float64 `yaml:"dropAckProbability"`
	WrongRevisionProbability float64 `yaml:"wrongRevisionProbability"`
	// WrongRevisionOffset is added to the true revision in a wrong ack.
	WrongRevisionOffset int64 `yaml:"wrongRevisionOffset"`
}

// Telemetry corruption modes.
const (
	CorruptGarbage    = "garbage"    // bytes that are not JSON
	CorruptImpossible = "impossible" // valid JSON with impossible values
	CorruptWrongDSN   = "wrong-dsn"  // a batch that names another DSN
)

// TelemetryParams shape a DSN's telemetry.
type TelemetryParams struct {
	CorruptProbability float64 `yaml:"corruptProbability"`
	CorruptMode        string  `yaml:"corruptMode"`
}

// HealthParams shape a DSN's simulated hardware health.
type HealthParams struct {
	TemperatureRisePerMinute float64 `yaml:"temperatureRisePerMinute"`
	DiskHealthLossPerHour    float64 `yaml:"diskHealthLossPerHour"`
}

// Set is a StageSet file.
type Set struct {
	APIVersion  string            `yaml:"apiVersion"`
	Kind        string            `yaml:"kind"`
	Name        string            `yaml:"name"`
	Description string            `yaml:"description"`
	Initial     string            `yaml:"initial"`
	Off         string            `yaml:"off"`
	ClockSkew   time.Duration     `yaml:"clockSkew"`
	Apply       ApplyParams       `yaml:"apply"`
	Telemetry   TelemetryParams   `yaml:"telemetry"`
	Health      HealthParams      `yaml:"health"`
	Stages      map[string]*Stage `yaml:"stages"`
}

// Misbehaviour is a Misbehaviour file: an overlay laid over a StageSet while active, and stages
// to move the DSN to when it starts and when it ends.
type Misbehaviour struct {
	APIVersion  string `yaml:"apiVersion"`
	Kind        string `yaml:"kind"`
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	// Goto is the stage a DSN is moved to when the misbehaviour starts ("" stays).
	Goto string `yaml:"goto"`
	// Recover is the stage a DSN is moved to when it ends ("" stays).
	Recover string `yaml:"recover"`
	// Params names settable parameters: parameter name -> dotted path in the overlay.
	Params map[string]string `yaml:"params"`
	// Overlay is laid over the StageSet document (same shape: apply, telemetry, stages, ...).
	Overlay yaml.Node `yaml:"overlay"`
}
